package stack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
)

// Shim is the link endpoint of an autoip NIC: it sits between the gVisor NIC
// and gVisor's Ethernet layer over the raw link. See the package doc for
// what it does to frames. At most one Client owns a Shim at a time. It is
// safe for concurrent use.
type Shim struct {
	nested.Endpoint

	link   gvstack.LinkEndpoint // the raw link under the Ethernet layer
	owner  atomic.Pointer[Client]
	dhcpOn atomic.Bool // the owner runs DHCP: datagrams to port 68 are its
	dead   tombstones  // given-up addresses whose TCP segments get a RST
	// hooked: the link hands every inbound frame to inbound before it
	// makes a PacketBuffer (a tap.Link endpoint does), so ARP is screened
	// there and DeliverNetworkPacket only passes it on.
	hooked  bool
	fastARP atomic.Bool

	arpIn      atomic.Uint64
	bypassed   atomic.Uint64
	notARP     atomic.Uint64
	dropped    atomic.Uint64
	rewritten  atomic.Uint64
	redirected atomic.Uint64
	notRouted  atomic.Uint64
	resets     atomic.Uint64
}

var _ gvstack.LinkEndpoint = (*Shim)(nil)
var _ gvstack.NetworkDispatcher = (*Shim)(nil)

// NewShim puts gVisor's Ethernet layer over link and the Shim over that:
// give the result to CreateNIC. link carries raw Ethernet frames and adds
// no header of its own: a tap.Link's Endpoint, a channel endpoint
// (channel.New(n, 1514, mac)), one end of gVisor's link/pipe, or such an
// endpoint wrapped by sniffer. If link reports its state (LinkStateWatcher,
// as tap.Link's endpoint does), Attach wires that state into the Client. A
// wrapper such as sniffer hides it: then give the TAP's endpoint as
// ClientConfig.LinkState, or the link counts as always up. If link takes an
// inbound hook (InboundHooker, as tap.Link's endpoint does), the Shim
// installs one and screens ARP there, on the link's read buffer, before
// gVisor makes a PacketBuffer for the frame; a frame kept from netstack then
// costs no PacketBuffer at all.
func NewShim(link gvstack.LinkEndpoint) (*Shim, error) {
	if link == nil {
		return nil, errors.New("autoip shim: nil link")
	}
	if _, ok := link.(*ethernet.Endpoint); ok {
		return nil, errors.New("autoip shim: the link is already an ethernet.Endpoint; pass the raw link (NewShim adds the Ethernet layer)")
	}
	if la := link.LinkAddress(); len(la) != header.EthernetAddressSize {
		return nil, fmt.Errorf("autoip shim: link address %q is not a 6-byte MAC", string(la))
	}
	// IPv4 needs 68 bytes of MTU (RFC 791) on top of the Ethernet header.
	if mtu := link.MTU(); mtu < header.EthernetMinimumSize+68 {
		return nil, fmt.Errorf("autoip shim: link MTU %d is below %d (an Ethernet header and IPv4's minimum of 68)", mtu, header.EthernetMinimumSize+68)
	}
	s := &Shim{link: link}
	s.Endpoint.Init(ethernet.New(link), s)
	if h, ok := link.(InboundHooker); ok {
		s.hooked = true
		h.SetInboundHook(s.inbound)
	}
	return s, nil
}

// InboundHooker is implemented by links that can show each inbound frame
// to a hook before making a PacketBuffer for it, such as the endpoint of a
// tap.Link. The hook returns false to consume the frame.
type InboundHooker interface {
	SetInboundHook(h func(frame []byte) (deliver bool))
}

// SetARPFastPath turns the ARP fast path on or off (default off). On, an
// inbound ARP request whose target is none of the NIC's addresses is kept
// from netstack once the engine has seen it: netstack would only count and
// ignore it (gVisor's ARP answers requests for the NIC's own addresses and
// their subnet broadcasts only, and learns nothing from the others), so
// under an ARP flood such frames cost the engine's check and a look at a
// short list, and over a tap.Link not even a PacketBuffer. The NIC's
// addresses are those the owning Client knows of: its own, and those the
// NIC had at Attach or at the last Client.Resync (Stack.AddAddress and
// RemoveAddress call it; an application that changes the NIC's addresses
// straight in gVisor must call Resync anyway, for the coexistence rules):
// requests for an address added without a Resync are kept from netstack
// until the next one. What else changes: netstack's ARP counters no longer
// count those requests, packet endpoints or sniffers attached above the
// Shim do not see them, and a NIC with spoofing on (which answers for any
// address) no longer answers them: leave the fast path off there. It needs
// an owner (Attach); without one every frame goes to netstack.
// Stats.Bypassed counts the requests kept out.
func (s *Shim) SetARPFastPath(on bool) { s.fastARP.Store(on) }

// inbound is the link's inbound hook: ARP frames are screened on the raw
// frame, before any PacketBuffer exists.
func (s *Shim) inbound(frame []byte) bool {
	if len(frame) < header.EthernetMinimumSize || binary.BigEndian.Uint16(frame[12:14]) != uint16(header.ARPProtocolNumber) {
		return true
	}
	return s.screenARP(frame)
}

// screenARP counts an inbound ARP frame (Ethernet header included), hands
// it to the owner and reports whether netstack gets it.
func (s *Shim) screenARP(frame []byte) bool {
	s.arpIn.Add(1)
	c := s.owner.Load()
	if c == nil {
		return true
	}
	if c.handleFrame(frame).Drop() {
		s.dropped.Add(1)
		return false
	}
	if s.fastARP.Load() && c.netstackIgnores(frame) {
		s.bypassed.Add(1)
		return false
	}
	return true
}

// Attach implements gvstack.LinkEndpoint. gVisor attaches nil when it
// removes the NIC (RemoveNIC, Destroy); the owner then stops itself.
func (s *Shim) Attach(d gvstack.NetworkDispatcher) {
	s.Endpoint.Attach(d)
	if d == nil {
		if c := s.owner.Load(); c != nil {
			c.nicRemoved()
		}
	}
}

// claim makes c the Shim's owner; it fails if another Client owns it.
func (s *Shim) claim(c *Client) bool { return s.owner.CompareAndSwap(nil, c) }

// release gives the Shim up if c owns it.
func (s *Shim) release(c *Client) { s.owner.CompareAndSwap(c, nil) }

// DeliverNetworkPacket implements gvstack.NetworkDispatcher: ARP frames go
// to the owner first and are dropped if its verdict says so (or, with the
// fast path, if netstack would ignore them). Over a link with an inbound
// hook that was done before the frame got here.
func (s *Shim) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gvstack.PacketBuffer) {
	if proto == header.ARPProtocolNumber {
		switch {
		case s.hooked: // inbound has screened it already
		case s.owner.Load() == nil:
			s.arpIn.Add(1) // no owner to show it to: no copy of the frame
		default:
			v := gvstack.PayloadSince(pkt.LinkHeader())
			deliver := s.screenARP(v.AsSlice())
			v.Release()
			if !deliver {
				return
			}
		}
	} else {
		s.notARP.Add(1)
		if proto == header.IPv4ProtocolNumber && s.dhcpOn.Load() && s.takeDHCP(pkt) {
			return
		}
		if proto == header.IPv4ProtocolNumber && s.dead.n.Load() > 0 {
			v := gvstack.PayloadSince(pkt.LinkHeader())
			answered := s.resetDead(v.AsSlice())
			v.Release()
			if answered {
				return
			}
		}
	}
	s.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// takeDHCP hands a datagram to port 68 to the owner's DHCP client and
// reports whether it did; netstack never sees it (it would answer with ICMP
// port unreachable).
func (s *Shim) takeDHCP(pkt *gvstack.PacketBuffer) bool {
	c := s.owner.Load()
	if c == nil {
		return false
	}
	v := gvstack.PayloadSince(pkt.LinkHeader())
	defer v.Release()
	frame := v.AsSlice()
	if len(frame) < header.EthernetMinimumSize || !isDHCPToClient(frame[header.EthernetMinimumSize:]) {
		return false
	}
	payload, ok := dhcpReply(frame)
	if !ok {
		return true // to port 68 but damaged: nobody else's either
	}
	c.handleDHCP(append([]byte(nil), payload...), [6]byte(frame[6:12]))
	return true
}

// WritePackets implements gvstack.LinkEndpoint. The NIC has already added
// the Ethernet header. Outgoing ARP whose sender IP is link-local is made
// link-layer broadcast in place (RFC 3927 §2.5, R14). An IPv4 packet with a
// link-local source or destination that netstack routed through a gateway
// never reaches the gateway (RFC 3927 §2.6.2, §2.7; R27, R28): it is handed
// to the owner, which sends it straight to its destination on the link
// after ARP, as the RFC requires.
func (s *Shim) WritePackets(pkts gvstack.PacketBufferList) (int, tcpip.Error) {
	var keep gvstack.PacketBufferList
	diverted := 0
	for i, pkt := range pkts.AsSlice() {
		switch pkt.NetworkProtocolNumber {
		case header.ARPProtocolNumber:
			if broadcastLinkLocalARP(pkt) {
				s.rewritten.Add(1)
			}
		case header.IPv4ProtocolNumber:
			if !linkLocalViaGateway(pkt) {
				break
			}
			if diverted == 0 {
				for _, p := range pkts.AsSlice()[:i] {
					keep.PushBack(p)
				}
			}
			diverted++
			s.divert(pkt)
			continue
		}
		if diverted > 0 {
			keep.PushBack(pkt)
		}
	}
	if diverted == 0 {
		return s.Endpoint.WritePackets(pkts)
	}
	if keep.Len() == 0 {
		return diverted, nil
	}
	n, err := s.Endpoint.WritePackets(keep)
	return n + diverted, err
}

// divert hands a copy of pkt (Ethernet header included) to the owner for
// direct delivery, or counts it as not routed.
func (s *Shim) divert(pkt *gvstack.PacketBuffer) {
	c := s.owner.Load()
	if c == nil {
		s.notRouted.Add(1)
		return
	}
	v := pkt.ToView()
	frame := append([]byte(nil), v.AsSlice()...)
	v.Release()
	s.redirected.Add(1)
	c.direct.send(frame)
}

// linkLocalViaGateway reports whether pkt, an outgoing IPv4 packet, has a
// link-local source or destination and a next hop that is not its
// destination: a router.
func linkLocalViaGateway(pkt *gvstack.PacketBuffer) bool {
	r := &pkt.EgressRoute
	if r.NextHop.BitLen() == 0 || r.NextHop == r.RemoteAddress {
		return false
	}
	ip := header.IPv4(pkt.NetworkHeader().Slice())
	if len(ip) < header.IPv4MinimumSize {
		return false
	}
	return isLinkLocal4(ip.SourceAddressSlice()) || isLinkLocal4(ip.DestinationAddressSlice())
}

func isLinkLocal4(a []byte) bool { return len(a) == 4 && a[0] == 169 && a[1] == 254 }

// broadcastLinkLocalARP rewrites pkt's Ethernet destination to broadcast if
// its ARP sender IP is in 169.254.0.0/16 and reports whether it changed it.
func broadcastLinkLocalARP(pkt *gvstack.PacketBuffer) bool {
	arp := header.ARP(pkt.NetworkHeader().Slice())
	if len(arp) < header.ARPSize || !isLinkLocal4(arp.ProtocolAddressSender()) {
		return false
	}
	eth := pkt.LinkHeader().Slice()
	if len(eth) < header.EthernetMinimumSize {
		return false
	}
	dst := tcpip.LinkAddress(eth[:header.EthernetAddressSize])
	if dst == header.EthernetBroadcastAddress {
		return false
	}
	copy(eth[:header.EthernetAddressSize], acd.BroadcastMAC[:])
	return true
}

// InjectOutbound writes a complete Ethernet frame to the link underneath
// netstack; netstack never sees it. It reports why the link refused it.
func (s *Shim) InjectOutbound(frame []byte) error {
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber = header.ARPProtocolNumber
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	n, err := s.Endpoint.WritePackets(l)
	pkt.DecRef()
	if err == nil && n == 0 {
		// The channel endpoint reports a full queue as (0, nil).
		err = &tcpip.ErrNoBufferSpace{}
	}
	return tcpipErr("inject frame", err)
}

// ShimStats counts what a Shim did.
type ShimStats struct {
	ARPIn   uint64 `json:"arp_in"`  // inbound ARP frames seen
	NotARP  uint64 `json:"not_arp"` // inbound frames of other EtherTypes, passed on
	Dropped uint64 `json:"dropped"` // inbound ARP frames kept from netstack: the engine's verdict (conflicts, own echoes, malformed, ...)
	// Bypassed counts inbound ARP requests for none of the NIC's addresses
	// kept from netstack by the fast path (SetARPFastPath) after the
	// engine saw them.
	Bypassed  uint64 `json:"bypassed"`
	Rewritten uint64 `json:"rewritten"` // outgoing ARP made broadcast
	// Redirected counts IPv4 packets with a link-local source or
	// destination that netstack routed to a gateway and that were sent
	// straight to their destination instead (R28).
	Redirected uint64 `json:"redirected"`
	// NotRouted counts such packets dropped because no client owned the
	// Shim to deliver them.
	NotRouted uint64 `json:"not_routed"`
	// Resets counts RSTs sent for TCP segments to an address given up
	// moments before (connections netstack had not finished opening).
	Resets uint64 `json:"resets"`
}

// Stats returns the counters.
func (s *Shim) Stats() ShimStats {
	return ShimStats{
		ARPIn: s.arpIn.Load(), NotARP: s.notARP.Load(), Dropped: s.dropped.Load(), Bypassed: s.bypassed.Load(), Rewritten: s.rewritten.Load(),
		Redirected: s.redirected.Load(), NotRouted: s.notRouted.Load(), Resets: s.resets.Load(),
	}
}
