package stack

import (
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
)

// FrameHook sees one inbound ARP frame (Ethernet header included) and says
// what it is. It runs on the link's delivery goroutines and must not keep
// the slice.
type FrameHook func(frame []byte) acd.Verdict

// Shim is a link endpoint between a gVisor NIC and its Ethernet layer. See
// the package doc. It is safe for concurrent use.
type Shim struct {
	nested.Endpoint

	hook atomic.Pointer[FrameHook]

	arpIn     atomic.Uint64
	notARP    atomic.Uint64
	dropped   atomic.Uint64
	rewritten atomic.Uint64
}

var _ gvstack.LinkEndpoint = (*Shim)(nil)
var _ gvstack.NetworkDispatcher = (*Shim)(nil)

// NewShim wraps lower, which must deliver and accept Ethernet frames with
// the link header parsed: ethernet.New(channel or TAP endpoint).
func NewShim(lower gvstack.LinkEndpoint) *Shim {
	s := &Shim{}
	s.Endpoint.Init(lower, s)
	return s
}

// SetHook installs h (nil removes it). Without a hook every frame passes.
func (s *Shim) SetHook(h FrameHook) {
	if h == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&h)
}

// DeliverNetworkPacket implements gvstack.NetworkDispatcher: ARP frames go
// to the hook first and are dropped if its verdict says so.
func (s *Shim) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gvstack.PacketBuffer) {
	if proto == header.ARPProtocolNumber {
		s.arpIn.Add(1)
		if h := s.hook.Load(); h != nil {
			v := gvstack.PayloadSince(pkt.LinkHeader())
			verdict := (*h)(v.AsSlice())
			v.Release()
			if verdict.Drop() {
				s.dropped.Add(1)
				return
			}
		}
	} else {
		s.notARP.Add(1)
	}
	s.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements gvstack.LinkEndpoint. Outgoing ARP whose sender
// IP is link-local is made link-layer broadcast (RFC 3927 §2.5, R14). The
// NIC has already added the Ethernet header, so the destination is patched
// in place.
func (s *Shim) WritePackets(pkts gvstack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		if pkt.NetworkProtocolNumber == header.ARPProtocolNumber && broadcastLinkLocalARP(pkt) {
			s.rewritten.Add(1)
		}
	}
	return s.Endpoint.WritePackets(pkts)
}

// broadcastLinkLocalARP rewrites pkt's Ethernet destination to broadcast if
// its ARP sender IP is in 169.254.0.0/16 and reports whether it changed it.
func broadcastLinkLocalARP(pkt *gvstack.PacketBuffer) bool {
	arp := header.ARP(pkt.NetworkHeader().Slice())
	if len(arp) < header.ARPSize {
		return false
	}
	spa := arp.ProtocolAddressSender()
	if spa[0] != 169 || spa[1] != 254 {
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
// netstack; netstack never sees it.
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
	return tcpipErr("inject ARP frame", err)
}

// ShimStats counts what a Shim did.
type ShimStats struct {
	ARPIn     uint64 `json:"arp_in"`    // inbound ARP frames seen
	NotARP    uint64 `json:"not_arp"`   // inbound frames of other EtherTypes, passed on
	Dropped   uint64 `json:"dropped"`   // inbound ARP frames kept from netstack
	Rewritten uint64 `json:"rewritten"` // outgoing ARP made broadcast
}

// Stats returns the counters.
func (s *Shim) Stats() ShimStats {
	return ShimStats{ARPIn: s.arpIn.Load(), NotARP: s.notARP.Load(), Dropped: s.dropped.Load(), Rewritten: s.rewritten.Load()}
}
