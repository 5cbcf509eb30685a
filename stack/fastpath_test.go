package stack

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// hookLink is a link with an inbound hook, as a tap.Link's endpoint is: it
// shows each inbound frame to the hook and passes on only what the hook
// lets through.
type hookLink struct {
	nested.Endpoint
	hook     atomic.Pointer[func([]byte) bool]
	consumed atomic.Uint64
}

var _ InboundHooker = (*hookLink)(nil)

func newHookLink(lower gvstack.LinkEndpoint) gvstack.LinkEndpoint {
	l := &hookLink{}
	l.Endpoint.Init(lower, l)
	return l
}

func (l *hookLink) SetInboundHook(h func([]byte) bool) {
	if h == nil {
		l.hook.Store(nil)
		return
	}
	l.hook.Store(&h)
}

func (l *hookLink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gvstack.PacketBuffer) {
	if h := l.hook.Load(); h != nil {
		v := pkt.ToView()
		deliver := (*h)(v.AsSlice())
		v.Release()
		if !deliver {
			l.consumed.Add(1)
			return
		}
	}
	l.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// arpCounters are netstack's own ARP counters of host ho.
func arpCounters(ho *host) (requests, unknownTarget, replies uint64) {
	st := ho.s.GVisor().Stats().ARP
	return st.RequestsReceived.Value(), st.RequestsReceivedUnknownTargetAddress.Value(), st.OutgoingRepliesSent.Value()
}

// TestARPFastPath: with the fast path on, an ARP request for none of the
// NIC's addresses reaches the engine but not netstack (netstack's counters
// stay put, Bypassed counts it); requests for the bound address, for a
// static address added with Stack.AddAddress (once probed) and for the broadcast address
// of its subnet are still answered by netstack, and so are requests for an
// address added straight to gVisor once Resync has told the client (before
// that they are kept out, as documented); a conflict is still detected and
// dropped. Off (the default), netstack sees every request. The same over a
// link with an inbound hook (as tap.Link) and over a plain channel
// endpoint.
func TestARPFastPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fast   bool
		hooked bool
	}{
		{"on/hooked", true, true},
		{"on/channel", true, false},
		{"off/hooked", false, true},
		{"off/channel", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t)
			hc := hostCfg{fastARP: tc.fast, cfg: ClientConfig{Engine: autoip.Config{Initial: ip("169.254.30.30")}}}
			if tc.hooked {
				hc.wrap = newHookLink
			}
			ho := h.addHost(hc)
			h.runUntilBound(time.Minute)
			ours := ho.bound()
			_, isHooked := ho.s.Shim().link.(*hookLink)
			if ho.s.Shim().hooked != tc.hooked || isHooked != tc.hooked {
				t.Fatalf("shim hooked %v, want %v", ho.s.Shim().hooked, tc.hooked)
			}
			static := netip.MustParsePrefix("198.51.100.7/24")
			if err := ho.s.AddAddress(static); err != nil {
				t.Fatal(err)
			}
			// It is probed first (R31), then configured.
			h.runUntil(h.clk.Now().Add(time.Minute), func() bool {
				for _, a := range ho.client().Addresses() {
					if a.Prefix == static && a.State == AddrConfigured {
						return true
					}
				}
				return false
			})
			peerIP := ip("169.254.99.1")
			request := func(target netip.Addr) []byte {
				return peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: target})
			}

			st0, eng0 := ho.s.Shim().Stats(), ho.status().Stats.Frames
			req0, unk0, rep0 := arpCounters(ho)
			h.peerSend(ho, request(ip("169.254.201.9")))
			h.runFor(time.Millisecond)
			st1, eng1 := ho.s.Shim().Stats(), ho.status().Stats.Frames
			req1, unk1, rep1 := arpCounters(ho)
			if eng1-eng0 != 1 || st1.ARPIn-st0.ARPIn != 1 {
				t.Errorf("the engine saw %d frames, the shim %d; want 1 and 1", eng1-eng0, st1.ARPIn-st0.ARPIn)
			}
			if tc.fast {
				if st1.Bypassed-st0.Bypassed != 1 || req1 != req0 || unk1 != unk0 {
					t.Errorf("request for no address of ours: bypassed +%d, netstack requests +%d (unknown target +%d); want 1, 0, 0",
						st1.Bypassed-st0.Bypassed, req1-req0, unk1-unk0)
				}
			} else if st1.Bypassed != 0 || req1-req0 != 1 || unk1-unk0 != 1 {
				t.Errorf("fast path off: bypassed %d, netstack requests +%d (unknown target +%d); want 0, 1, 1",
					st1.Bypassed, req1-req0, unk1-unk0)
			}
			if rep1 != rep0 {
				t.Errorf("netstack answered a request for an address it does not have")
			}

			answered := func(target netip.Addr) bool {
				t.Helper()
				_, _, rep0 := arpCounters(ho)
				mark := len(h.trace)
				h.peerSend(ho, request(target))
				h.runFor(time.Millisecond)
				_, _, rep1 := arpCounters(ho)
				replies := h.arpFrom(mark, ho.idx, func(f acd.Frame) bool { return f.Op == acd.OpReply && f.SenderIP == target })
				if rep1-rep0 != uint64(len(replies)) {
					t.Errorf("request for %v: netstack counts %d replies, %d on the wire", target, rep1-rep0, len(replies))
				}
				return len(replies) == 1
			}
			for _, target := range []netip.Addr{ours, static.Addr(), ip("198.51.100.255")} {
				if !answered(target) {
					t.Errorf("request for %v: not answered", target)
				}
			}
			if b := ho.s.Shim().Stats().Bypassed; b != st1.Bypassed {
				t.Errorf("requests for our addresses bypassed netstack (%d -> %d)", st1.Bypassed, b)
			}
			// Behind the client's back: straight into gVisor.
			behind := ip("192.0.2.7")
			if err := ho.s.GVisor().AddProtocolAddress(ho.s.NIC(), tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
				AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(behind), PrefixLen: 24}}, gvstack.AddressProperties{}); err != nil {
				t.Fatal(err)
			}
			if got := answered(behind); got == tc.fast {
				t.Errorf("request for an address added behind the client's back, before Resync: answered %v, want %v", got, !tc.fast)
			}
			ho.client().Resync()
			if !answered(behind) {
				t.Errorf("request for %v after Resync: not answered", behind)
			}

			d0 := ho.s.Shim().Stats().Dropped
			h.peerSend(ho, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, ours)))
			h.runFor(time.Millisecond)
			if len(ho.eventsOf(autoip.EventDefend)) != 1 || ho.s.Shim().Stats().Dropped != d0+1 {
				t.Errorf("conflict: %d DEFEND events, dropped %d -> %d; want 1 and +1", len(ho.eventsOf(autoip.EventDefend)), d0, ho.s.Shim().Stats().Dropped)
			}
			if tc.hooked {
				l := ho.s.Shim().link.(*hookLink)
				want := uint64(1) // the conflict
				if tc.fast {
					want += 2 // and the two bypassed requests
				}
				if got := l.consumed.Load(); got != want {
					t.Errorf("the link's hook consumed %d frames, want %d", got, want)
				}
			}
		})
	}
}

// BenchmarkShimARPUnrelated: what one ARP request between two other hosts
// costs a bound client on a real clock, from the link's raw frame on:
//   - hooked-fast: the inbound hook with the fast path (autoipd over a
//     tap.Link): engine + netstack's address test, no PacketBuffer;
//   - channel: the default path over a channel endpoint (PacketBuffer,
//     Ethernet, Shim, engine, netstack's ARP).
func BenchmarkShimARPUnrelated(b *testing.B) {
	other := acd.MAC{0x02, 0x00, 0x5e, 0x77, 0, 1}
	frame := acd.Frame{Dst: acd.BroadcastMAC, Src: other, Packet: acd.Packet{Op: acd.OpRequest, SenderHW: other,
		SenderIP: ip("169.254.200.1"), TargetIP: ip("169.254.201.1")}}.AppendBinary(nil)
	for _, mode := range []string{"hooked-fast", "channel"} {
		b.Run(mode, func(b *testing.B) {
			mac := hostMAC(0)
			ep := channel.New(1024, 1514, tcpip.LinkAddress(mac[:]))
			var link gvstack.LinkEndpoint = ep
			if mode == "hooked-fast" {
				link = newHookLink(ep)
			}
			tm := acd.Timing{ProbeWait: time.Millisecond, ProbeMin: time.Millisecond, ProbeMax: 2 * time.Millisecond,
				AnnounceWait: time.Millisecond, AnnounceInterval: time.Millisecond}
			s, err := New(Options{Link: link, NoTCP: true, ARPFastPath: mode == "hooked-fast",
				AutoIP: &ClientConfig{Engine: autoip.Config{Initial: ip("169.254.30.30"), Timing: tm}}})
			if err != nil {
				b.Fatal(err)
			}
			defer ep.Close()
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.Client().WaitBound(ctx); err != nil {
				b.Fatal(err)
			}
			if mode == "hooked-fast" {
				hook := *link.(*hookLink).hook.Load()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if hook(frame) {
						b.Fatal("an unrelated request reached netstack")
					}
				}
				return
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// What the link does with each frame it reads: a copy in
				// a new PacketBuffer.
				pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(slices.Clone(frame))})
				ep.InjectInbound(0, pkt)
				pkt.DecRef()
			}
		})
	}
}
