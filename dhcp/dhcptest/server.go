// Package dhcptest provides a small DHCPv4 server for tests and
// simulations: deterministic, no I/O, no clock. It answers messages from a
// pool of addresses, remembers declined ones, and can be told to fall
// silent, refuse, or say "do not auto-configure" (RFC 2563).
package dhcptest

import (
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/dhcp"
)

// Server is a DHCP server. The zero value needs at least Addr and Pool.
// It is not safe for concurrent use.
type Server struct {
	Addr   netip.Addr   // server identifier
	Pool   []netip.Addr // offered in order, first free one
	Mask   netip.Prefix // its Bits() is the subnet mask sent; zero: /24
	Router netip.Addr   // option 3 if valid
	DNS    []netip.Addr // option 6
	Lease  time.Duration
	// Silent makes the server ignore everything; Nak refuses every
	// request; NoAutoConfigure sends option 116 = 0.
	Silent, Nak, NoAutoConfigure bool

	leases   map[[6]byte]netip.Addr
	declined map[netip.Addr]bool
	// Seen counts the messages received, by type.
	Seen map[dhcp.MessageType]int
}

// Declined reports whether a was declined by a client.
func (s *Server) Declined(a netip.Addr) bool { return s.declined[a] }

// Leased returns the address leased to hw, if any.
func (s *Server) Leased(hw [6]byte) (netip.Addr, bool) {
	a, ok := s.leases[hw]
	return a, ok
}

// Handle answers m, if it calls for an answer.
func (s *Server) Handle(m dhcp.Message) (dhcp.Message, bool) {
	if s.leases == nil {
		s.leases, s.declined, s.Seen = map[[6]byte]netip.Addr{}, map[netip.Addr]bool{}, map[dhcp.MessageType]int{}
	}
	if m.Op != dhcp.OpRequest {
		return dhcp.Message{}, false
	}
	s.Seen[m.Type]++
	switch m.Type {
	case dhcp.Decline:
		if a, ok := m.Addr4(dhcp.OptRequestedIP); ok {
			s.declined[a] = true
			if s.leases[m.CHAddr] == a {
				delete(s.leases, m.CHAddr)
			}
		}
		return dhcp.Message{}, false
	case dhcp.Release:
		delete(s.leases, m.CHAddr)
		return dhcp.Message{}, false
	}
	if s.Silent {
		return dhcp.Message{}, false
	}
	r := dhcp.Message{Op: dhcp.OpReply, XID: m.XID, CHAddr: m.CHAddr, Flags: m.Flags, SIAddr: s.Addr}
	r.SetOption(dhcp.OptServerID, s.Addr.AsSlice())
	if s.NoAutoConfigure {
		r.SetOption(dhcp.OptAutoConfigure, []byte{0})
	}
	switch m.Type {
	case dhcp.Discover:
		a := s.pick(m.CHAddr)
		if !a.IsValid() {
			return dhcp.Message{}, false // pool exhausted
		}
		r.Type = dhcp.Offer
		s.grant(&r, a)
	case dhcp.Request:
		if sid, ok := m.Addr4(dhcp.OptServerID); ok && sid != s.Addr {
			delete(s.leases, m.CHAddr) // the client chose another server
			return dhcp.Message{}, false
		}
		want, ok := m.Addr4(dhcp.OptRequestedIP)
		if !ok {
			want = m.CIAddr
		}
		if s.Nak || !s.inPool(want) || s.declined[want] || s.holder(want) != m.CHAddr && s.holder(want) != ([6]byte{}) {
			r.Type = dhcp.Nak
			return r, true
		}
		s.leases[m.CHAddr] = want
		r.Type = dhcp.Ack
		s.grant(&r, want)
	default:
		return dhcp.Message{}, false
	}
	return r, true
}

func (s *Server) grant(r *dhcp.Message, a netip.Addr) {
	r.YIAddr = a
	bits := 24
	if s.Mask.IsValid() {
		bits = s.Mask.Bits()
	}
	m := ^uint32(0) << (32 - bits)
	r.SetOption(dhcp.OptSubnetMask, []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
	if s.Router.IsValid() {
		r.SetOption(dhcp.OptRouter, s.Router.AsSlice())
	}
	var dns []byte
	for _, d := range s.DNS {
		dns = append(dns, d.AsSlice()...)
	}
	if len(dns) > 0 {
		r.SetOption(dhcp.OptDNS, dns)
	}
	r.SetOption(dhcp.OptLeaseTime, dhcp.Uint32(uint32(s.Lease/time.Second)))
}

func (s *Server) inPool(a netip.Addr) bool {
	for _, p := range s.Pool {
		if p == a {
			return true
		}
	}
	return false
}

func (s *Server) holder(a netip.Addr) [6]byte {
	for hw, x := range s.leases {
		if x == a {
			return hw
		}
	}
	return [6]byte{}
}

// pick returns hw's address, or the first free one.
func (s *Server) pick(hw [6]byte) netip.Addr {
	if a, ok := s.leases[hw]; ok {
		return a
	}
	for _, a := range s.Pool {
		if !s.declined[a] && s.holder(a) == ([6]byte{}) {
			return a
		}
	}
	return netip.Addr{}
}
