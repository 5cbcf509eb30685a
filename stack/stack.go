package stack

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Options configures New.
type Options struct {
	// Link carries raw Ethernet frames: a TAP (tap.Link.Endpoint()), a
	// channel endpoint (channel.New(n, 1514, mac)) or one end of gVisor's
	// link/pipe. Its link address is the netstack's MAC, which must not be
	// the kernel TAP's. New wraps it as NIC -> Shim -> ethernet.New(Link).
	// A link that reports its state (a TAP does) starts the client in that
	// state: nothing is probed, let alone claimed, until it is up.
	Link gvstack.LinkEndpoint
	// NICName names the NIC (informational).
	NICName string
	// Clock is the stack's clock; nil is the real clock. A *DetClock makes
	// the stack deterministic.
	Clock tcpip.Clock
	// RandSource and SecureRNG seed netstack's own randomness (NUD jitter,
	// IP IDs); set both for byte-identical runs. Nil: netstack's defaults.
	RandSource rand.Source
	SecureRNG  io.Reader
	// NoTCP leaves TCP out. TCP starts processor goroutines per stack
	// whose timing no clock controls; simulations leave it out.
	NoTCP bool
	// AutoIP configures the client. Nil: no AutoIP, static addresses only.
	AutoIP *ClientConfig
	// ARPFastPath keeps inbound ARP requests for none of the NIC's
	// addresses from netstack once the client's engine has seen them (see
	// Shim.SetARPFastPath for what that changes). For programs that own
	// the stack, such as autoipd; off by default.
	ARPFastPath bool
}

// Stack is a gVisor stack with one Ethernet NIC, its Shim and, optionally,
// an AutoIP Client. It is safe for concurrent use.
type Stack struct {
	gv     *gvstack.Stack
	nic    tcpip.NICID
	shim   *Shim
	client *Client
}

// NICID is the ID of the NIC that New creates.
const NICID tcpip.NICID = 1

// New builds the stack and, if opts.AutoIP is set, attaches (and so
// starts) the client.
func New(opts Options) (*Stack, error) {
	if opts.Link == nil {
		return nil, errors.New("stack: Options.Link is nil")
	}
	shim, err := NewShim(opts.Link)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	shim.SetARPFastPath(opts.ARPFastPath)
	tps := []gvstack.TransportProtocolFactory{icmp.NewProtocol4, udp.NewProtocol}
	if !opts.NoTCP {
		tps = append(tps, tcp.NewProtocol)
	}
	gv := gvstack.New(gvstack.Options{
		// arp.NewProtocol leaves gVisor's IPv4 DAD disabled, as it must be.
		NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: tps,
		Clock:              opts.Clock,
		RandSource:         opts.RandSource,
		SecureRNG:          opts.SecureRNG,
	})
	if err := gv.CreateNICWithOptions(NICID, shim, gvstack.NICOptions{Name: opts.NICName}); err != nil {
		gv.Destroy()
		return nil, tcpipErr("stack: create NIC", err)
	}
	st := &Stack{gv: gv, nic: NICID, shim: shim}
	if opts.AutoIP != nil {
		c, err := Attach(gv, NICID, shim, *opts.AutoIP)
		if err != nil {
			gv.Destroy()
			return nil, err
		}
		st.client = c
	}
	return st, nil
}

// GVisor returns the underlying gVisor stack.
func (s *Stack) GVisor() *gvstack.Stack { return s.gv }

// NIC returns the NIC's ID.
func (s *Stack) NIC() tcpip.NICID { return s.nic }

// Shim returns the NIC's ARP shim.
func (s *Stack) Shim() *Shim { return s.shim }

// Client returns the AutoIP client, or nil.
func (s *Stack) Client() *Client { return s.client }

// AddAddress adds a static address (for example a routable one) to the NIC
// with an on-link route for its subnet. With an AutoIP client the address
// goes through RFC 5227 conflict detection first (Client.AddAddress, R31):
// AddAddress then returns at once and the address is on the NIC once it was
// probed. Without a client it is added at once.
func (s *Stack) AddAddress(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("add address %v: not an IPv4 prefix", p)
	}
	if s.client != nil {
		return s.client.AddAddress(p, SourceStatic)
	}
	if err := CheckHostPrefix(p); err != nil {
		return fmt.Errorf("add address %v: %w", p, err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(p.Addr().As4()), PrefixLen: p.Bits()}}
	if err := s.gv.AddProtocolAddress(s.nic, pa, gvstack.AddressProperties{PEB: gvstack.FirstPrimaryEndpoint}); err != nil {
		return tcpipErr(fmt.Sprintf("add address %v", p), err)
	}
	s.gv.AddRoute(tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: s.nic})
	return nil
}

// RemoveAddress removes a static address and its subnet route, and tells
// the client (Resync).
func (s *Stack) RemoveAddress(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("remove address %v: not an IPv4 prefix", p)
	}
	if s.client != nil {
		err := s.client.RemoveAddress(p.Addr())
		if !errors.Is(err, ErrNoSuchAddress) {
			return err
		}
		// Added before the client was attached: not the client's.
	}
	a := tcpip.AddrFrom4(p.Addr().As4())
	if err := s.gv.RemoveAddress(s.nic, a); err != nil {
		return tcpipErr(fmt.Sprintf("remove address %v", p), err)
	}
	sub := tcpip.AddressWithPrefix{Address: a, PrefixLen: p.Bits()}.Subnet()
	s.gv.RemoveRoutes(func(r tcpip.Route) bool {
		return r.NIC == s.nic && r.Destination == sub && r.Gateway == (tcpip.Address{})
	})
	if s.client != nil {
		s.client.Resync()
	}
	return nil
}

// Close stops the client (withdrawing its address) and destroys the stack.
func (s *Stack) Close() error {
	var err error
	if s.client != nil {
		err = s.client.Close()
	}
	s.gv.Destroy()
	return err
}
