package stack

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// boundHost returns a hub with one host bound (done announcing) and the
// host.
func boundHost(t *testing.T, cfg ClientConfig) (*hub, *host) {
	t.Helper()
	h := newHub(t)
	a := h.addHost(hostCfg{cfg: cfg})
	h.runUntilBound(time.Minute)
	return h, a
}

// TestR14_StackRepliesAreBroadcast: netstack answers ARP for our
// link-local address itself; the Shim makes every such answer link-layer
// broadcast, whether the question was unicast, broadcast or a probe.
func TestR14_StackRepliesAreBroadcast(t *testing.T) {
	peerIP := ip("169.254.99.99")
	tests := []struct {
		name    string
		dst     func(a *host) acd.MAC
		pkt     func(x netip.Addr) acd.Packet
		wantTPA netip.Addr
	}{
		{"unicast request", func(a *host) acd.MAC { return a.mac },
			func(x netip.Addr) acd.Packet {
				return acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: x}
			}, peerIP},
		{"broadcast request", func(*host) acd.MAC { return acd.BroadcastMAC },
			func(x netip.Addr) acd.Packet {
				return acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: x}
			}, peerIP},
		{"request from a routable sender", func(a *host) acd.MAC { return a.mac },
			func(x netip.Addr) acd.Packet {
				return acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: ip("10.1.2.3"), TargetIP: x}
			}, ip("10.1.2.3")},
		{"probe", func(*host) acd.MAC { return acd.BroadcastMAC },
			func(x netip.Addr) acd.Packet { return acd.Probe(peerMAC, x) }, ip("0.0.0.0")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, a := boundHost(t, ClientConfig{})
			x := a.bound()
			before := a.s.Shim().Stats()
			mark := len(h.trace)
			h.peerSend(a, peerARP(tc.dst(a), tc.pkt(x)))
			h.pump()
			out := h.framesFrom(mark, a.idx)
			if len(out) != 1 {
				t.Fatalf("want exactly one answer, got:\n%s", h.dump(mark))
			}
			r, ok := out[0].arp()
			if !ok || r.Op != acd.OpReply || r.SenderIP != x || r.SenderHW != a.mac || r.TargetHW != peerMAC || r.TargetIP != tc.wantTPA {
				t.Fatalf("answer %v; want a reply from %v/%v to %v/%v", out[0], a.mac, x, peerMAC, tc.wantTPA)
			}
			if r.Dst != acd.BroadcastMAC {
				t.Errorf("reply sent to %v, want broadcast (R14)", r.Dst)
			}
			after := a.s.Shim().Stats()
			if after.Rewritten != before.Rewritten+1 {
				t.Errorf("Shim rewrote %d frames, want 1", after.Rewritten-before.Rewritten)
			}
			if after.Dropped != before.Dropped || after.ARPIn != before.ARPIn+1 {
				t.Errorf("Shim stats %+v -> %+v; want one more ARP in, none dropped", before, after)
			}
			if evs := a.eventsOf(autoip.EventConflict); len(evs) != 0 {
				t.Errorf("a question was taken for a conflict: %v", a.eventStrings())
			}
		})
	}
}

// TestShimLeavesRoutableARPUnicast: only ARP whose sender IP is link-local
// is made broadcast; netstack's reply for a routable address stays unicast.
func TestShimLeavesRoutableARPUnicast(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{noAutoIP: true})
	if err := a.s.AddAddress(netip.MustParsePrefix("10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	mark := len(h.trace)
	h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: ip("10.0.0.2"), TargetIP: ip("10.0.0.1")}))
	h.pump()
	out := h.arpFrom(mark, a.idx, nil)
	if len(out) != 1 || out[0].Op != acd.OpReply || out[0].Dst != peerMAC {
		t.Fatalf("want one unicast reply to %v:\n%s", peerMAC, h.dump(mark))
	}
	if n := a.s.Shim().Stats().Rewritten; n != 0 {
		t.Errorf("Shim rewrote %d frames", n)
	}
}

// TestR15_R16_R18_DefenceThroughTheStack: a peer announces our bound
// address. Default policy: one defence (an announcement on the wire), the
// address stays; a second conflict within DEFEND_INTERVAL removes it from
// the NIC in the same hub step, with its route, and OnEvent saw DEFEND then
// CONFLICT from the peer. After DEFEND_INTERVAL a conflict is defended
// again. Abandon: removed at the first.
func TestR15_R16_R18_DefenceThroughTheStack(t *testing.T) {
	tests := []struct {
		name   string
		policy acd.DefendPolicy
		gaps   []time.Duration // virtual time before each peer announcement
		// want, per announcement: true = defended, false = lost
		want []bool
	}{
		{"R15 defend once then lose", acd.DefendOnce, []time.Duration{0, 3 * time.Second}, []bool{true, false}},
		{"R15 defend again after DEFEND_INTERVAL", acd.DefendOnce, []time.Duration{0, 11 * time.Second}, []bool{true, true}},
		{"R16 abandon", acd.Abandon, []time.Duration{0}, []bool{false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, a := boundHost(t, ClientConfig{Engine: autoip.Config{Defend: tc.policy}})
			x := a.bound()
			var wantEvents []autoip.EventKind
			for i, gap := range tc.gaps {
				h.runFor(gap)
				mark := len(h.trace)
				h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, x)))
				// Same hub step: nothing else has run yet.
				if got := a.has(x); got != tc.want[i] {
					t.Fatalf("conflict %d: address on NIC = %v, want %v", i+1, got, tc.want[i])
				}
				if _, ok := a.neighbor(x); ok {
					t.Errorf("conflict %d reached netstack: neighbour entry for our own %v", i+1, x)
				}
				hinted := false
				for _, r := range a.llRoutes() {
					hinted = hinted || r.SourceHint == tcpipAddr(x)
				}
				if hinted != tc.want[i] {
					t.Errorf("conflict %d: 169.254/16 route with hint %v present = %v, want %v (routes %v)", i+1, x, hinted, tc.want[i], a.llRoutes())
				}
				h.pump()
				defences := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return isAnnouncementOf(f, a.mac, x) })
				if tc.want[i] {
					wantEvents = append(wantEvents, autoip.EventDefend)
					if len(defences) != 1 || defences[0].Dst != acd.BroadcastMAC {
						t.Errorf("conflict %d: want one broadcast defensive announcement:\n%s", i+1, h.dump(mark))
					}
				} else {
					wantEvents = append(wantEvents, autoip.EventConflict)
					if len(defences) != 0 {
						t.Errorf("conflict %d lost the address but announced it:\n%s", i+1, h.dump(mark))
					}
					if st := a.status(); st.Configured.IsValid() || st.State.IsBound() {
						t.Errorf("after the loss: configured %v, state %v", st.Configured, st.State)
					}
				}
			}
			var got []autoip.EventKind
			for _, ev := range a.eventsCopy() {
				if ev.Kind == autoip.EventDefend || ev.Kind == autoip.EventConflict {
					got = append(got, ev.Kind)
					if ev.From != peerMAC || ev.Addr != x || ev.Phase != acd.PhaseBound {
						t.Errorf("%v from %v addr %v phase %v; want from %v, %v, bound", ev.Kind, ev.From, ev.Addr, ev.Phase, peerMAC, x)
					}
				}
			}
			if len(got) != len(wantEvents) {
				t.Fatalf("events %v, want %v", got, wantEvents)
			}
			for i := range got {
				if got[i] != wantEvents[i] {
					t.Fatalf("events %v, want %v", got, wantEvents)
				}
			}
			if st := a.status(); st.Shim.Dropped != uint64(len(tc.gaps)) {
				t.Errorf("Shim dropped %d frames, want the %d conflicting ones", st.Shim.Dropped, len(tc.gaps))
			}
			if !tc.want[len(tc.want)-1] {
				// R18 done; selection restarts and a new address is claimed.
				h.runUntilBound(time.Minute)
				if y := a.bound(); y == x || !a.has(y) || a.has(x) {
					t.Errorf("after losing %v: bound %v, NIC %v", x, y, a.addrs())
				}
			}
		})
	}
}

// TestConflictingFramesNeverReachNetstack: a conflicting ARP for our
// address (announcement, request or reply from another MAC) is kept from
// netstack, which would otherwise record "our address -> the other MAC".
// The control shows netstack does that when nothing filters.
func TestConflictingFramesNeverReachNetstack(t *testing.T) {
	peerIP := ip("169.254.99.99")
	frames := []struct {
		name  string
		frame func(x netip.Addr) []byte
	}{
		{"announcement", func(x netip.Addr) []byte { return peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, x)) }},
		{"request", func(x netip.Addr) []byte {
			return peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: x, TargetIP: peerIP})
		}},
		{"request for us", func(x netip.Addr) []byte {
			return peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: x, TargetIP: x})
		}},
		{"gratuitous reply", func(x netip.Addr) []byte {
			return peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpReply, SenderHW: peerMAC, SenderIP: x, TargetIP: x})
		}},
		{"unicast reply", func(x netip.Addr) []byte {
			return peerARP(hostMAC(0), acd.Packet{Op: acd.OpReply, SenderHW: peerMAC, SenderIP: x, TargetHW: hostMAC(0), TargetIP: x})
		}},
	}
	for _, tc := range frames {
		t.Run(tc.name, func(t *testing.T) {
			// With a DEFEND_INTERVAL shorter than the gaps, every
			// conflict is defended, so every frame meets a bound address.
			h, a := boundHost(t, ClientConfig{Engine: autoip.Config{Timing: acd.Timing{DefendInterval: time.Millisecond}}})
			x := a.bound()
			for range 3 {
				h.peerSend(a, tc.frame(x))
				h.runFor(time.Second)
			}
			if !a.has(x) {
				t.Fatalf("address lost although every conflict was DEFEND_INTERVAL apart")
			}
			if n, ok := a.neighbor(x); ok {
				t.Errorf("netstack has neighbour entry %v -> %v for our own address", x, n.LinkAddr)
			}
			if d := a.s.Shim().Stats().Dropped; d != 3 {
				t.Errorf("Shim dropped %d frames, want 3", d)
			}
		})
	}
	t.Run("control: without the hook netstack is poisoned", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{noAutoIP: true})
		x := ip("169.254.5.5")
		if err := a.s.GVisor().AddProtocolAddress(a.s.NIC(), tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpipAddr(x), PrefixLen: 16},
		}, gvstack.AddressProperties{}); err != nil {
			t.Fatal(err)
		}
		h.peerSend(a, frames[0].frame(x))
		n, ok := a.neighbor(x)
		if !ok || n.LinkAddr != tcpip.LinkAddress(peerMAC[:]) {
			t.Errorf("control: neighbour entry %v, %v; want %v -> %v (the gVisor behaviour the Shim guards against)", n, ok, x, peerMAC)
		}
	})
}

// TestReclaimAfterExternalRemoval: if the embedding application removes
// our address from the NIC, the client notices (address dispatcher), puts
// it back and announces it again.
func TestReclaimAfterExternalRemoval(t *testing.T) {
	h, a := boundHost(t, ClientConfig{})
	x := a.bound()
	mark, removedAt := len(h.trace), h.now()
	if err := a.s.GVisor().RemoveAddress(a.s.NIC(), tcpipAddr(x)); err != nil {
		t.Fatal(err)
	}
	if a.has(x) {
		t.Fatal("RemoveAddress did not remove it")
	}
	h.runFor(time.Second)
	if !a.has(x) {
		t.Fatalf("address not put back; NIC %v, events %v", a.addrs(), a.eventStrings())
	}
	st := a.status()
	if st.Reclaims != 1 || st.Configured != x || st.StackErrors != 0 {
		t.Errorf("Reclaims %d, Configured %v, StackErrors %d; want 1, %v, 0", st.Reclaims, st.Configured, st.StackErrors, x)
	}
	if out := h.framesFrom(mark, a.idx); len(out) == 0 || out[0].At != removedAt {
		t.Errorf("no frame at once after the reclaim:\n%s", h.dump(mark))
	} else if f, _ := out[0].arp(); !isAnnouncementOf(f, a.mac, x) {
		t.Errorf("first frame after the reclaim is %v, want an announcement of %v", out[0], x)
	}
	h.runFor(time.Minute)
	if anns := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return isAnnouncementOf(f, a.mac, x) }); len(anns) != 2 {
		t.Errorf("%d announcements after the reclaim, want ANNOUNCE_NUM (2):\n%s", len(anns), h.dump(mark))
	}
	if got := a.mustSource(t, ip("169.254.9.9")); got != x {
		t.Errorf("source towards 169.254.9.9 is %v, want %v", got, x)
	}
	// The put-back address is watched too.
	if err := a.s.GVisor().RemoveAddress(a.s.NIC(), tcpipAddr(x)); err != nil {
		t.Fatal(err)
	}
	h.runFor(time.Second)
	if st := a.status(); !a.has(x) || st.Reclaims != 2 {
		t.Errorf("second removal: on NIC %v, Reclaims %d", a.has(x), st.Reclaims)
	}
	// Our own removals are not reclaimed.
	a.client().SetLink(false)
	h.runFor(time.Minute)
	if st := a.status(); a.has(x) || st.Reclaims != 2 {
		t.Errorf("after link down: on NIC %v, Reclaims %d", a.has(x), st.Reclaims)
	}
}

// TestR18_ConflictIsLogged: losing the address is reported through the
// logger too (Warn, with the other host's MAC).
func TestR18_ConflictIsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h, a := boundHost(t, ClientConfig{Logger: log, Engine: autoip.Config{Defend: acd.Abandon}})
	x := a.bound()
	h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, x)))
	out := buf.String()
	for _, want := range []string{"level=WARN msg=CONFLICT addr=" + x.String(), "from=" + peerMAC.String(), "level=INFO msg=BIND"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
