package stack

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// TestR10_NoAddressBeforeProbingCompletes: the candidate is configured on
// the NIC only at the engine's bind, never while probing, and nothing on
// the wire carries it as a source before the first announcement. Three
// hosts, two of them forced onto the same first candidate so that one
// probes twice, are checked after every hub step.
func TestR10_NoAddressBeforeProbingCompletes(t *testing.T) {
	h := newHub(t)
	same := ip("169.254.10.10")
	hosts := []*host{
		h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: same}}}),
		h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: same}}}),
		h.addHost(hostCfg{}),
	}
	checks := 0
	probing := map[netip.Addr]bool{} // every candidate seen while probing
	h.check = func() {
		checks++
		for _, ho := range hosts {
			st := ho.status()
			ev := ho.eventsCopy()
			boundNow := len(ev) > 0 && ev[len(ev)-1].Kind == autoip.EventBind
			if st.State.IsBound() != st.Configured.IsValid() {
				t.Fatalf("h%d at %v: state %v but configured %v", ho.idx, h.now(), st.State, st.Configured)
			}
			if st.State.IsBound() {
				if !boundNow || !ho.has(st.Addr) {
					t.Fatalf("h%d at %v: bound to %v, last event %v, on NIC %v", ho.idx, h.now(), st.Addr, ho.eventStrings(), ho.addrs())
				}
				continue
			}
			if !st.Addr.IsValid() {
				continue
			}
			probing[st.Addr] = true
			if ho.has(st.Addr) {
				t.Fatalf("h%d at %v: candidate %v is on the NIC while %v (R10)", ho.idx, h.now(), st.Addr, st.State)
			}
			for _, p := range ho.addrs() {
				if autoip.LinkLocalPrefix.Contains(p.Addr()) {
					t.Fatalf("h%d at %v: link-local %v on the NIC while %v", ho.idx, h.now(), p, st.State)
				}
			}
			// No route, so no socket could use it as a source either.
			if a, err := ho.source(ip("169.254.9.9")); err == nil {
				t.Fatalf("h%d at %v: route to 169.254.9.9 with source %v while %v", ho.idx, h.now(), a, st.State)
			}
		}
	}
	h.runUntilBound(2 * time.Minute)
	h.runFor(10 * time.Second)
	if checks < 20 {
		t.Fatalf("only %d hub steps checked", checks)
	}
	if !probing[same] {
		t.Errorf("the shared candidate %v was never seen probing", same)
	}

	var moved int
	for _, ho := range hosts {
		if len(ho.eventsOf(autoip.EventConflict)) > 0 {
			moved++
		}
		// Before the host's first announcement of an address it ends up
		// holding or lost, no frame of its own has that address as its
		// source: not as ARP sender, not as IPv4 source.
		for _, ev := range ho.eventsCopy() {
			if ev.Kind != autoip.EventProbe {
				continue
			}
			cand := ev.Addr
			for _, f := range h.framesFrom(0, ho.idx) {
				if af, ok := f.arp(); ok {
					if isAnnouncementOf(af, ho.mac, cand) {
						break
					}
					if af.SenderIP == cand {
						t.Errorf("h%d sent %v before announcing %v", ho.idx, f, cand)
					}
					continue
				}
				if e := header.Ethernet(f.B); e.Type() == header.IPv4ProtocolNumber {
					if src := header.IPv4(f.B[header.EthernetMinimumSize:]).SourceAddress(); src == tcpipAddr(cand) {
						t.Errorf("h%d sent IPv4 from %v before announcing it: %v", ho.idx, cand, f)
					}
				}
			}
		}
	}
	if moved == 0 {
		t.Errorf("no host had to move off %v; the test did not exercise a lost candidate", same)
	}
}

// TestR13_AliasLeavesStaticAddress: the claimed address is an extra
// address; the routable one and its route stay, and removing ours (at
// Close, or after losing a conflict) removes only ours.
func TestR13_AliasLeavesStaticAddress(t *testing.T) {
	static := netip.MustParsePrefix("10.0.0.1/24")
	for _, how := range []string{"close", "conflict"} {
		t.Run(how, func(t *testing.T) {
			h := newHub(t)
			a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Defend: acd.Abandon}}})
			a.addStatic(static)
			h.runUntilBound(time.Minute)
			ll := a.bound()
			want := []netip.Prefix{static, netip.PrefixFrom(ll, 16)}
			if got := a.addrs(); !slices.Equal(got, want) {
				t.Fatalf("addresses after the claim %v, want %v", got, want)
			}
			switch how {
			case "close":
				if err := a.client().Close(); err != nil {
					t.Fatal(err)
				}
				if ev := a.eventsOf(autoip.EventStop); len(ev) != 1 || ev[0].Addr != ll {
					t.Errorf("STOP events %+v, want one for %v", ev, ll)
				}
			case "conflict":
				h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, ll)))
			}
			if got := a.addrs(); !slices.Equal(got, []netip.Prefix{static}) {
				t.Errorf("addresses after %s %v, want just %v", how, got, static)
			}
			if got := a.mustSource(t, ip("10.0.0.9")); got != static.Addr() {
				t.Errorf("source towards 10.0.0.9 is %v, want %v", got, static.Addr())
			}
			for _, r := range a.llRoutes() {
				if r.SourceHint == tcpipAddr(ll) {
					t.Errorf("route %v with the withdrawn address as hint survived", r)
				}
			}
		})
	}
}

// TestR07_R08_SameInitialAddressThroughTheStack: two netstack hosts forced
// to the same first candidate. Exactly one keeps it, the other moves on
// (R08: it saw the other's simultaneous probe, or R07: its ARP), and both
// end bound with distinct addresses, each on its own NIC only.
func TestR07_R08_SameInitialAddressThroughTheStack(t *testing.T) {
	same := ip("169.254.20.20")
	h := newHub(t)
	a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: same}}})
	b := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: same}}})
	h.runUntilBound(2 * time.Minute)
	winner, loser := a, b
	if b.bound() == same {
		winner, loser = b, a
	}
	if winner.bound() != same || loser.bound() == same || !loser.bound().IsValid() {
		t.Fatalf("bound %v and %v; want exactly one on %v", a.bound(), b.bound(), same)
	}
	if !winner.has(same) || loser.has(same) || winner.has(loser.bound()) || !loser.has(loser.bound()) {
		t.Errorf("NIC addresses: winner %v, loser %v", winner.addrs(), loser.addrs())
	}
	if n := len(winner.eventsOf(autoip.EventConflict)); n != 0 {
		t.Errorf("winner saw %d conflicts: %v", n, winner.eventStrings())
	}
	cs := loser.eventsOf(autoip.EventConflict)
	if len(cs) != 1 {
		t.Fatalf("loser conflicts %v, want 1", loser.eventStrings())
	}
	c := cs[0]
	if c.Addr != same || c.Phase != acd.PhaseProbing || c.From != winner.mac {
		t.Errorf("conflict %v addr %v phase %v from %v; want %v probing from %v", c.Kind, c.Addr, c.Phase, c.From, same, winner.mac)
	}
	if !(c.Frame.IsProbe() && c.Frame.TargetIP == same) && c.Frame.SenderIP != same {
		t.Errorf("conflicting frame %+v is neither a probe for nor ARP from %v", c.Frame.Packet, same)
	}
	// Each host can reach the other's address: the neighbour caches were
	// not poisoned along the way.
	if got := winner.mustSource(t, loser.bound()); got != same {
		t.Errorf("winner's source towards the loser is %v", got)
	}
}

// TestR07_LateJoinerLosesToDefenderReply: host A holds X; B starts later
// with X as its initial address. B's probe reaches A's netstack, which
// answers (broadcast, thanks to the Shim); B sees an ARP reply whose sender
// IP is its candidate: a conflict (R07), so B moves on. A is not disturbed:
// a probe for a held address is a query, not a conflict.
func TestR07_LateJoinerLosesToDefenderReply(t *testing.T) {
	x := ip("169.254.30.30")
	h := newHub(t)
	a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: x}}})
	h.runUntilBound(time.Minute)
	mark := len(h.trace)
	b := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{Initial: x}}})
	h.runUntilBound(2*time.Minute, b)
	if a.bound() != x || b.bound() == x || !b.bound().IsValid() {
		t.Fatalf("a bound %v, b bound %v; want a on %v and b elsewhere", a.bound(), b.bound(), x)
	}
	cs := b.eventsOf(autoip.EventConflict)
	if len(cs) != 1 {
		t.Fatalf("b events %v, want one conflict", b.eventStrings())
	}
	c := cs[0]
	if c.Phase != acd.PhaseProbing || c.From != a.mac || c.Frame.Op != acd.OpReply || c.Frame.SenderIP != x {
		t.Errorf("conflict phase %v from %v frame %+v; want probing, an ARP reply from %v with sender %v", c.Phase, c.From, c.Frame.Packet, a.mac, x)
	}
	replies := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return f.Op == acd.OpReply && f.SenderIP == x })
	if len(replies) == 0 {
		t.Fatalf("a never answered b's probe:\n%s", h.dump(mark))
	}
	if replies[0].Dst != acd.BroadcastMAC || replies[0].TargetIP != ip("0.0.0.0") {
		t.Errorf("a's answer to the probe: %+v to %v; want broadcast, target IP 0.0.0.0", replies[0].Packet, replies[0].Dst)
	}
	if evs := a.eventStrings(); len(evs) != 2 || evs[1] != "BIND "+x.String() {
		t.Errorf("a's events %v, want PROBE and BIND only", evs)
	}
}

// TestR09_OwnFramesLoopedBack: with the hub echoing every frame to its
// sender too, the host binds its first candidate without any conflict,
// and the Shim keeps the echoes from netstack.
func TestR09_OwnFramesLoopedBack(t *testing.T) {
	h := newHub(t)
	h.echo = true
	a := h.addHost(hostCfg{})
	b := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	h.runFor(time.Millisecond) // the segment echoes a nanosecond later: the last echo arrives
	for _, ho := range []*host{a, b} {
		first := autoip.Candidate(autoip.SeedFromMAC(ho.mac), 0)
		if ho.bound() != first {
			t.Errorf("h%d bound %v, want its first candidate %v; events %v", ho.idx, ho.bound(), first, ho.eventStrings())
		}
		if n := len(ho.eventsOf(autoip.EventConflict)) + len(ho.eventsOf(autoip.EventDefend)); n != 0 {
			t.Errorf("h%d: %d conflicts/defences from its own frames: %v", ho.idx, n, ho.eventStrings())
		}
		st := ho.status()
		sent := len(h.framesFrom(0, ho.idx))
		if st.Stats.Own != uint64(sent) || st.Shim.Dropped < uint64(sent) {
			t.Errorf("h%d: sent %d frames, engine saw %d own, shim dropped %d", ho.idx, sent, st.Stats.Own, st.Shim.Dropped)
		}
		if _, ok := ho.neighbor(ho.bound()); ok {
			t.Errorf("h%d has a neighbour entry for its own address", ho.idx)
		}
	}
}

// runFourHosts runs four hosts that all start on one address and returns
// the trace digest, the frame count and the addresses they end with.
func runFourHosts(t *testing.T, seed int64) ([32]byte, int, []netip.Addr) {
	h := newHub(t)
	var hosts []*host
	for range 4 {
		hosts = append(hosts, h.addHost(hostCfg{seed: seed, cfg: ClientConfig{Engine: autoip.Config{Initial: ip("169.254.40.40")}}}))
	}
	h.runUntilBound(5 * time.Minute)
	// Some unicast traffic too, so that netstack's own timers (NUD) and
	// randomness (IP IDs) are part of the trace.
	h.peerSend(hosts[0], peerARP(hosts[0].mac, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: ip("169.254.99.99"), TargetIP: hosts[0].bound()}))
	for i, ho := range hosts {
		if _, ok := ping(t, h, ho, hosts[(i+1)%len(hosts)].bound(), []byte{byte(i)}, time.Second); !ok {
			t.Fatalf("h%d: no echo reply", i)
		}
	}
	h.runFor(time.Minute)
	var addrs []netip.Addr
	for _, ho := range hosts {
		addrs = append(addrs, ho.bound())
	}
	return h.hash(), len(h.trace), addrs
}

// TestDeterministicTrace: the same four-host run twice gives the same
// frames, byte for byte, at the same virtual times.
func TestDeterministicTrace(t *testing.T) {
	h1, n1, a1 := runFourHosts(t, 0)
	h2, n2, a2 := runFourHosts(t, 0)
	if h1 != h2 || n1 != n2 || !slices.Equal(a1, a2) {
		t.Fatalf("runs differ: %x (%d frames, %v) vs %x (%d frames, %v)", h1, n1, a1, h2, n2, a2)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range a1 {
		if seen[a] || !autoip.InRange(a) {
			t.Errorf("addresses %v are not distinct usable link-local addresses", a1)
		}
		seen[a] = true
	}
	if n1 < 4*5+4*4 {
		t.Errorf("only %d frames: the run did not do much", n1)
	}
	// The digest covers netstack's seeded randomness (IP IDs): other
	// netstack seeds, same engine seeds, give another trace.
	if h3, _, a3 := runFourHosts(t, 7); h3 == h1 || !slices.Equal(a3, a1) {
		t.Errorf("other netstack seeds: digest equal %v, addresses %v (want %v)", h3 == h1, a3, a1)
	}
	t.Logf("trace %x: %d frames, %v", h1[:8], n1, a1)
}
