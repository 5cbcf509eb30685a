package interop

import (
	"net/netip"
	"syscall"
	"testing"
	"time"
)

type interopCase struct {
	name string
	run  func(t *testing.T, kind string)
}

// TestInterop runs every case against every peer, all in parallel (each
// case has its own namespaces). Case names carry the conformance rule they
// serve: R07 (a reply from the holder of our candidate is a conflict), R08
// (a probe from another host for our candidate is a conflict), R14 (our
// ARP with a link-local sender is broadcast, checked on every capture),
// R15 (defend once, yield on a second conflict within DEFEND_INTERVAL), R16
// (-d: yield at the first conflict), R23 (real peers reach the claimed
// address, on-link).
func TestInterop(t *testing.T) {
	requireBase(t)
	t.Logf("autoipd %s (race detector: %v)", daemonBin, raceBuild)
	timings.mu.Lock()
	timings.rows = nil // -count=N: one table per run
	timings.mu.Unlock()
	t.Cleanup(func() { logTimings(t) })
	common := []interopCase{
		{"R23_CoexistRFCTiming", caseCoexist},
		{"R07_PeerHoldsOurFirstAddress", caseHoldsOurFirst},
	}
	acd := []interopCase{
		{"PeerMovesOffOurAddress", casePeerMoves},
		{"SimultaneousStart", caseSimultaneous},
		{"R08_PeerProbesDuringOurWait", caseR08},
	}
	peers := []struct {
		kind, bin, pkg string
		cases          []interopCase
	}{
		{"avahi", "avahi-autoipd", "avahi-autoipd", append(append(common[:len(common):len(common)], acd...),
			interopCase{"R15_MergeWeDefendAvahiYields", func(t *testing.T, _ string) { caseAvahiMerge(t, false) }},
			interopCase{"R16_MergeAbandonWeYield", func(t *testing.T, _ string) { caseAvahiMerge(t, true) }})},
		{"dhcpcd", "dhcpcd", "dhcpcd-base", append(append(common[:len(common):len(common)], acd...),
			interopCase{"R15_PeerClaimsOurs_WeDefendPeerYields", func(t *testing.T, _ string) { caseDhcpcdClaims(t, false) }},
			interopCase{"R16_PeerClaimsOurs_AbandonWeYield", func(t *testing.T, _ string) { caseDhcpcdClaims(t, true) }})},
		{"kernel", "", "", append(common[:len(common):len(common)],
			interopCase{"R15_ArpingClaims_DefendOnceThenYield", func(t *testing.T, _ string) { caseKernelClaims(t, false) }},
			interopCase{"R16_ArpingReply_Abandon", func(t *testing.T, _ string) { caseKernelClaims(t, true) }})},
	}
	for _, p := range peers {
		t.Run(p.kind, func(t *testing.T) {
			t.Parallel()
			if p.bin != "" {
				requireTool(t, p.bin, p.pkg)
			}
			for _, c := range p.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, p.kind)
				})
			}
		})
	}
}

// find fails the case unless the capture holds a frame match accepts at or
// after `after`.
func find(t *testing.T, w *wire, after time.Time, what string, match func(arpFrame) bool) arpFrame {
	t.Helper()
	f, ok := w.find(after, match)
	if !ok {
		t.Fatalf("the bridge capture has no %s after %s", what, after.Format("15:04:05.000"))
	}
	return f
}

// caseCoexist (R23, R14; cases 1 and 6): autoipd at RFC timing and the peer
// start together, end on distinct addresses, the peer pings us (our stack
// answers, reaching the peer by ARP), and arping -D from the peer finds our
// address in use.
func caseCoexist(t *testing.T, kind string) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer(kind, true)
	p.start(p.firstChoice())
	o.start() // RFC timing, the MAC-seeded first candidate
	ourAddr := o.waitBound(30*time.Second, netip.Addr{})
	peerAddr := p.waitHolds(30*time.Second, netip.Addr{})
	if ourAddr == peerAddr {
		t.Fatalf("both hold %v", ourAddr)
	}
	p.ping(ourAddr, 3)
	dadAt := time.Now()
	t.Run("R14_ArpingDADFindsUs", func(t *testing.T) {
		// arping -D exits 1 when someone answers (iputils): our stack's
		// answer, which R14 makes a broadcast reply, must count.
		if code, out := p.arping("-D", "-c", "2", "-w", "3", ourAddr.String()); code != 1 {
			t.Errorf("arping -D %v from the %s peer: exit %d, want 1 (address in use)\n%s", ourAddr, kind, code, out)
		}
		free := randomLL(ourAddr, peerAddr)
		if code, out := p.arping("-D", "-c", "1", "-w", "1", free.String()); code != 0 {
			t.Errorf("arping -D %v (unused) from the %s peer: exit %d, want 0\n%s", free, kind, code, out)
		}
		// The capture so far (tcpdump writes every packet at once): our
		// answers to the peer's kernel and to arping were all broadcast.
		time.Sleep(200 * time.Millisecond)
		w, err := loadWire(s.pcap)
		if err != nil {
			t.Fatal(err)
		}
		replies := 0
		for _, f := range w.arps {
			if f.sha == o.mac && f.op == 2 && f.spa == ourAddr && f.at.After(dadAt) {
				replies++
			}
		}
		if replies == 0 {
			t.Errorf("R14: no ARP reply from autoipd to arping -D on the bridge:\n%s", w.dump())
		}
		if bad := w.r14Violations(o.mac); len(bad) > 0 {
			t.Errorf("R14: ARP from autoipd with a link-local sender IP not sent to broadcast: %v", bad)
		}
	})
	if n := countEvents(o.events(), "CONFLICT", netip.Addr{}); n != 0 {
		t.Errorf("autoipd saw %d conflicts: %v", n, o.events())
	}
	w := s.stopCapture()
	// Our side reached the peer: the echo replies went from our MAC to the
	// peer's, resolved on-link by ARP.
	if n := w.icmpCount(0, o.mac, p.mac, ourAddr, peerAddr); n < 3 {
		t.Errorf("R23: %d ICMP echo replies from autoipd (%s %v) to the peer (%s %v) on the bridge, want 3", n, o.mac, ourAddr, p.mac, peerAddr)
	}
	ourClaim := find(t, w, o.p.start, "announcement of our address", announceBy(o.mac, ourAddr))
	record(t, kind, "autoipd", "start → claim (RFC timing)", o.p.start, ourClaim.at)
	if kind != "kernel" {
		peerClaim := find(t, w, p.started, "announcement of the peer's address", announceBy(p.mac, peerAddr))
		record(t, kind, kind, "start → claim", p.started, peerClaim.at)
	}
	if kind == "dhcpcd" {
		first := find(t, w, p.started, "probe from dhcpcd", probeBy(p.mac, netip.Addr{}))
		if want := dhcpcdPicks(p.hwaddr(), 1)[0]; first.tpa != want {
			t.Errorf("dhcpcd (MAC %s) probed %v first; the MAC-derived prediction the other cases rely on is %v", p.mac, first.tpa, want)
		}
	}
}

// caseHoldsOurFirst (R07; case 2): the peer already holds X when autoipd
// starts with -s X; the holder's ARP reply to our probe is a conflict, and
// we move without ever using X.
func caseHoldsOurFirst(t *testing.T, kind string) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer(kind, true)
	x := p.firstChoice()
	p.start(x)
	if a := p.waitHolds(30*time.Second, netip.Addr{}); a != x {
		t.Fatalf("%s took %v, want %v", kind, a, x)
	}
	o.start(append([]string{"-s", x.String()}, fast...)...)
	got := o.waitBound(15*time.Second, x)
	time.Sleep(1500 * time.Millisecond) // our announcements, and any late reaction
	if n := countEvents(o.events(), "BIND", x); n != 0 {
		t.Errorf("R07: autoipd bound %v, which the %s peer holds", x, kind)
	}
	if a := p.holding(); a != x {
		t.Errorf("the %s peer lost %v (holds %v)", kind, x, p.held())
	}
	checkPeerUndisturbed(t, p, x)
	p.ping(got, 2)
	w := s.stopCapture()
	probe := find(t, w, o.p.start, "probe from autoipd for its -s address", probeBy(o.mac, x))
	conflict := find(t, w, probe.at, "conflicting frame from the peer", conflictFor(o.mac, x))
	if conflict.sha != p.mac || conflict.spa != x {
		t.Errorf("R07: the conflict was %v, want the peer's answer with sender IP %v", conflict, x)
	}
	if f, ok := w.find(time.Time{}, claimBy(o.mac, x)); ok {
		t.Errorf("R10: autoipd used %v as a sender address: %v", x, f)
	}
	reprobe := find(t, w, conflict.at, "autoipd's next probe", probeOtherThan(o.mac, x))
	claim := find(t, w, conflict.at, "autoipd's new claim", announceBy(o.mac, got))
	record(t, kind, "autoipd", "first probe → conflict (peer's reply)", probe.at, conflict.at)
	record(t, kind, "autoipd", "conflict → next probe", conflict.at, reprobe.at)
	record(t, kind, "autoipd", "conflict → new claim (move-off)", conflict.at, claim.at)
}

// checkPeerUndisturbed fails if the peer's own log shows it lost or gave up
// x.
func checkPeerUndisturbed(t *testing.T, p *peerHost, x netip.Addr) {
	t.Helper()
	switch p.kind {
	case "avahi":
		if n := countEvents(p.events(), "CONFLICT", x); n != 0 {
			t.Errorf("avahi-autoipd reported a conflict for %v: %v", x, p.events())
		}
	case "dhcpcd":
		binds := 0
		for _, e := range p.events() {
			if e.ev == "IPV4LL" && e.addr.IsValid() {
				binds++
			}
		}
		if binds != 1 {
			t.Errorf("dhcpcd configured %d IPv4LL addresses, want 1 (%v): %v", binds, x, p.events())
		}
	}
}

// casePeerMoves (case 3): autoipd holds X; the peer starts on X (avahi
// --start; dhcpcd: X is its MAC-derived first pick), our stack answers its
// probe with a broadcast reply, and the peer moves. We keep X.
func casePeerMoves(t *testing.T, kind string) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer(kind, true)
	x := p.firstChoice()
	o.start(append([]string{"-s", x.String()}, fast...)...)
	if a := o.waitBound(15*time.Second, netip.Addr{}); a != x {
		t.Fatalf("autoipd bound %v, want its -s address %v", a, x)
	}
	time.Sleep(1200 * time.Millisecond) // our announcements are over
	p.start(x)
	pa := p.waitHolds(45*time.Second, x)
	time.Sleep(time.Second)
	if a := o.current(); a != x {
		t.Errorf("autoipd holds %v, want %v: %v", a, x, o.events())
	}
	if n := countEvents(o.events(), "CONFLICT", netip.Addr{}); n != 0 {
		t.Errorf("a probe for our bound address is no conflict, but autoipd reported %d: %v", n, o.events())
	}
	if kind == "dhcpcd" {
		if want := dhcpcdPicks(p.hwaddr(), 2)[1]; pa != want {
			t.Logf("note: dhcpcd moved to %v, not to its predicted second pick %v", pa, want)
		}
	}
	p.ping(x, 2)
	w := s.stopCapture()
	pprobe := find(t, w, p.started, "the peer's probe for our address", probeBy(p.mac, x))
	answer := find(t, w, pprobe.at, "autoipd's answer to the peer's probe", claimBy(o.mac, x))
	if f, ok := w.find(p.started, announceBy(p.mac, x)); ok {
		t.Errorf("the %s peer announced our address %v: %v", kind, x, f)
	}
	pclaim := find(t, w, answer.at, "the peer's new claim", announceBy(p.mac, pa))
	ourClaim := find(t, w, o.p.start, "our claim", announceBy(o.mac, x))
	record(t, kind, "autoipd", "start → claim", o.p.start, ourClaim.at)
	record(t, kind, kind, "probe of our address → our answer", pprobe.at, answer.at)
	record(t, kind, kind, "our answer → new claim (move-off)", answer.at, pclaim.at)
}

// caseSimultaneous (case 4): autoipd (RFC timing, -s X) and the peer start
// together on X: exactly one keeps it, the other moves.
func caseSimultaneous(t *testing.T, kind string) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer(kind, true)
	x := p.firstChoice()
	p.start(x)
	o.start("-s", x.String())
	var ours, theirs netip.Addr
	settled := func() bool {
		ours, theirs = o.current(), p.holding()
		return ours.IsValid() && theirs.IsValid() && ours != theirs
	}
	if !waitFor(60*time.Second, settled) {
		t.Fatalf("not settled after 60 s: autoipd holds %v, %s holds %v", ours, kind, p.held())
	}
	time.Sleep(2500 * time.Millisecond) // announcements and any late conflict
	if !settled() {
		t.Fatalf("unsettled: autoipd holds %v, %s holds %v", ours, kind, p.held())
	}
	p.ping(ours, 2)
	w := s.stopCapture()
	var winner, loser, loserMAC string
	var loserStart time.Time
	switch {
	case ours == x && theirs != x:
		winner, loser, loserMAC, loserStart = "autoipd", kind, p.mac, p.started
	case theirs == x && ours != x:
		winner, loser, loserMAC, loserStart = kind, "autoipd", o.mac, o.p.start
	default:
		t.Fatalf("neither side kept %v (autoipd %v, %s %v): both moved", x, ours, kind, theirs)
	}
	t.Logf("%s kept %v; %s moved", winner, x, loser)
	conflict := find(t, w, loserStart, "the frame that made "+loser+" give "+x.String()+" up", conflictFor(loserMAC, x))
	newClaim := find(t, w, conflict.at, loser+"'s new claim", announceOtherThan(loserMAC, x))
	if f, ok := w.find(time.Time{}, announceBy(loserMAC, x)); ok {
		t.Errorf("%s announced %v although it lost it: %v", loser, x, f)
	}
	winnerMAC, winnerStart := o.mac, o.p.start
	if winner != "autoipd" {
		winnerMAC, winnerStart = p.mac, p.started
	}
	winClaim := find(t, w, winnerStart, winner+"'s claim", announceBy(winnerMAC, x))
	if loser == "autoipd" {
		t.Logf("the conflict that moved autoipd: %v", conflict)
	}
	record(t, kind, winner+" (kept)", "start → claim", winnerStart, winClaim.at)
	record(t, kind, loser+" (moved)", "conflict → new claim (move-off)", conflict.at, newClaim.at)
}

// caseR08 (R08): autoipd starts first with -s X and -t 4, so it listens on
// X for four seconds before its first probe; the peer starts on X and
// probes it in that time. The peer's probe is a conflict: autoipd moves
// without ever probing X, and the peer keeps X.
func caseR08(t *testing.T, kind string) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer(kind, true)
	x := p.firstChoice()
	o.start(append([]string{"-s", x.String(), "-t", "4"}, fast...)...)
	o.waitCarrier()
	time.Sleep(300 * time.Millisecond)
	p.start(x)
	got := o.waitBound(20*time.Second, x)
	if a := p.waitHolds(40*time.Second, netip.Addr{}); a != x {
		t.Errorf("the %s peer holds %v, want %v", kind, a, x)
	}
	if n := countEvents(o.events(), "BIND", x); n != 0 {
		t.Errorf("R08: autoipd bound %v", x)
	}
	p.ping(got, 2)
	w := s.stopCapture()
	pprobe := find(t, w, p.started, "the peer's probe for "+x.String(), probeBy(p.mac, x))
	if f, ok := w.find(time.Time{}, probeBy(o.mac, x)); ok {
		t.Errorf("R08: autoipd probed %v after the peer's probe for it at %s: %v", x, pprobe.at.Format("15:04:05.000"), f)
	}
	reprobe := find(t, w, pprobe.at, "autoipd's next probe", probeOtherThan(o.mac, x))
	claim := find(t, w, pprobe.at, "autoipd's new claim", announceBy(o.mac, got))
	peerClaim := find(t, w, p.started, "the peer's claim", announceBy(p.mac, x))
	record(t, kind, "autoipd", "peer's probe → next probe", pprobe.at, reprobe.at)
	record(t, kind, "autoipd", "peer's probe → new claim (move-off)", pprobe.at, claim.at)
	record(t, kind, kind, "start → claim", p.started, peerClaim.at)
}

// caseAvahiMerge (R15 / R16; case 5 with a real peer): autoipd and
// avahi-autoipd claim X on the two sides of a partition; the partition
// heals and avahi re-announces X (SIGHUP). By default autoipd defends once
// and avahi, which never defends, gives X up; with -d autoipd yields at
// once and avahi keeps X.
func caseAvahiMerge(t *testing.T, abandon bool) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer("avahi", false)
	x := randomLL()
	args := append([]string{"-s", x.String()}, fast...)
	if abandon {
		args = append(args, "-d")
	}
	o.start(args...)
	if a := o.waitBound(15*time.Second, netip.Addr{}); a != x {
		t.Fatalf("autoipd bound %v, want %v", a, x)
	}
	p.start(x)
	if _, ok := p.p.waitLine("Successfully claimed", 30*time.Second); !ok {
		t.Fatalf("avahi-autoipd did not claim %v behind the partition", x)
	}
	if a := p.holding(); a != x {
		t.Fatalf("avahi holds %v, want %v", p.held(), x)
	}
	p.attach()
	time.Sleep(500 * time.Millisecond)
	healed := time.Now()
	if err := p.p.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !abandon {
		pa := p.waitHolds(40*time.Second, x)
		time.Sleep(time.Second)
		if a := o.current(); a != x {
			t.Errorf("R15: autoipd holds %v, want %v (defended): %v", a, x, o.events())
		}
		if n := countEvents(o.events(), "CONFLICT", netip.Addr{}); n != 0 {
			t.Errorf("R15: autoipd gave up on a single conflict: %v", o.events())
		}
		if n := countEvents(p.events(), "CONFLICT", x); n != 1 {
			t.Errorf("avahi-autoipd reported %d conflicts for %v, want 1: %v", n, x, p.events())
		}
		p.ping(x, 2)
		w := s.stopCapture()
		claim := find(t, w, healed, "avahi's re-announcement of "+x.String(), announceBy(p.mac, x))
		def := find(t, w, claim.at, "autoipd's defence", announceBy(o.mac, x))
		if n := w.count(claim.at, time.Time{}, announceBy(o.mac, x)); n != 1 {
			t.Errorf("R15: autoipd sent %d defensive announcements, want exactly 1", n)
		}
		pclaim := find(t, w, def.at, "avahi's new claim", announceBy(p.mac, pa))
		record(t, "avahi", "autoipd", "peer's claim → our defence", claim.at, def.at)
		record(t, "avahi", "avahi (moved)", "our defence → new claim (move-off)", def.at, pclaim.at)
		return
	}
	conflict := o.waitEvent(10*time.Second, "CONFLICT", x)
	if conflict.phase != "bound" {
		t.Errorf("R16: CONFLICT phase %q, want bound", conflict.phase)
	}
	got := o.waitBound(15*time.Second, x)
	time.Sleep(2500 * time.Millisecond) // avahi's second announcement
	if a := p.holding(); a != x {
		t.Errorf("avahi holds %v, want %v", p.held(), x)
	}
	if n := countEvents(p.events(), "CONFLICT", netip.Addr{}); n != 0 {
		t.Errorf("avahi-autoipd saw a conflict although autoipd (-d) yielded: %v", p.events())
	}
	p.ping(got, 2)
	w := s.stopCapture()
	claim := find(t, w, healed, "avahi's re-announcement of "+x.String(), announceBy(p.mac, x))
	if f, ok := w.find(claim.at, claimBy(o.mac, x)); ok {
		t.Errorf("R16: autoipd -d defended %v: %v", x, f)
	}
	newClaim := find(t, w, claim.at, "autoipd's new claim", announceBy(o.mac, got))
	record(t, "avahi", "autoipd -d", "peer's claim → yield (CONFLICT hook)", claim.at, conflict.at)
	record(t, "avahi", "autoipd -d", "peer's claim → new claim (move-off)", claim.at, newClaim.at)
}

// caseDhcpcdClaims (R15 / R16; case 5 with a real peer): autoipd holds X;
// dhcpcd starts on an interface that already carries X (as after a reboot
// that kept it). dhcpcd 9 probes X anyway, takes our stack's answer as a
// conflict and, since X is on its interface, defends it with an
// announcement: a real peer claiming our address. By default autoipd
// defends once; dhcpcd, whose one defence is then answered within its
// DEFEND_INTERVAL, gives X up and moves. With -d autoipd yields to dhcpcd's
// claim at once and dhcpcd keeps X.
func caseDhcpcdClaims(t *testing.T, abandon bool) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer("dhcpcd", true)
	x := randomLL(dhcpcdPicks(p.hwaddr(), 3)...)
	args := append([]string{"-s", x.String()}, fast...)
	side := "autoipd"
	if abandon {
		args = append(args, "-d")
		side = "autoipd -d"
	}
	o.start(args...)
	if a := o.waitBound(15*time.Second, netip.Addr{}); a != x {
		t.Fatalf("autoipd bound %v, want %v", a, x)
	}
	time.Sleep(1200 * time.Millisecond) // our announcements are over
	p.ns.IP(t, "addr", "add", x.String()+"/16", "dev", p.ifname)
	p.started = time.Now()
	p.startDhcpcd()
	if !abandon {
		pa := p.waitHolds(30*time.Second, x)
		time.Sleep(time.Second)
		if a := o.current(); a != x {
			t.Errorf("R15: autoipd holds %v, want %v (defended): %v", a, x, o.events())
		}
		if n := countEvents(o.events(), "CONFLICT", netip.Addr{}); n != 0 {
			t.Errorf("R15: autoipd gave up on a single conflict: %v", o.events())
		}
		p.ping(x, 2)
		w := s.stopCapture()
		claim := find(t, w, p.started, "dhcpcd's claim of "+x.String(), claimBy(p.mac, x))
		def := find(t, w, claim.at, "autoipd's defence", announceBy(o.mac, x))
		if n := w.count(claim.at, time.Time{}, announceBy(o.mac, x)); n != 1 {
			t.Errorf("R15: autoipd sent %d defensive announcements, want exactly 1", n)
		}
		pclaim := find(t, w, def.at, "dhcpcd's new claim", announceBy(p.mac, pa))
		record(t, "dhcpcd", side, "peer's claim → our defence", claim.at, def.at)
		record(t, "dhcpcd", "dhcpcd (moved)", "our defence → new claim (move-off)", def.at, pclaim.at)
		return
	}
	conflict := o.waitEvent(20*time.Second, "CONFLICT", x)
	if conflict.phase != "bound" {
		t.Errorf("R16: CONFLICT phase %q, want bound", conflict.phase)
	}
	got := o.waitBound(15*time.Second, x)
	time.Sleep(2500 * time.Millisecond) // dhcpcd would react to anything by now
	if a := p.holding(); a != x {
		t.Errorf("dhcpcd holds %v, want %v", p.held(), x)
	}
	p.ping(got, 2)
	w := s.stopCapture()
	claim := find(t, w, p.started, "dhcpcd's claim of "+x.String(), claimBy(p.mac, x))
	if f, ok := w.find(claim.at, claimBy(o.mac, x)); ok {
		t.Errorf("R16: autoipd -d defended %v: %v", x, f)
	}
	newClaim := find(t, w, claim.at, "autoipd's new claim", announceBy(o.mac, got))
	record(t, "dhcpcd", side, "peer's claim → yield (CONFLICT hook)", claim.at, conflict.at)
	record(t, "dhcpcd", side, "peer's claim → new claim (move-off)", claim.at, newClaim.at)
}

// caseKernelClaims (R15 / R16; case 5 injected): a kernel namespace that
// also holds X claims it with arping. By default autoipd defends the first
// claim, defends again a claim more than DEFEND_INTERVAL (10 s) after that
// defence, and yields to a claim within DEFEND_INTERVAL of its last defence. With -d an
// unsolicited ARP reply (arping -A) makes it yield at once.
func caseKernelClaims(t *testing.T, abandon bool) {
	s := newSegment(t)
	o := s.newOurs()
	p := s.newPeer("kernel", true)
	x := randomLL()
	args := append([]string{"-s", x.String()}, fast...)
	side := "autoipd"
	if abandon {
		args = append(args, "-d")
		side = "autoipd -d"
	}
	o.start(args...)
	if a := o.waitBound(15*time.Second, netip.Addr{}); a != x {
		t.Fatalf("autoipd bound %v, want %v", a, x)
	}
	time.Sleep(1200 * time.Millisecond) // our announcements are over
	p.ns.IP(t, "addr", "add", x.String()+"/16", "dev", p.ifname)
	claimWith := func(mode string) time.Time {
		t.Helper()
		at := time.Now()
		if code, out := p.arping(mode, "-c", "1", "-s", x.String(), x.String()); code != 0 && code != 1 {
			t.Fatalf("arping %s: exit %d\n%s", mode, code, out)
		}
		return at
	}
	stillDefended := func(what string) {
		t.Helper()
		time.Sleep(time.Second)
		if a := o.current(); a != x {
			t.Errorf("R15: after %s autoipd holds %v, want %v (defended): %v", what, a, x, o.events())
		}
		if n := countEvents(o.events(), "CONFLICT", netip.Addr{}); n != 0 {
			t.Errorf("R15: autoipd yielded to %s: %v", what, o.events())
		}
	}
	if abandon {
		c1 := claimWith("-A")
		conflict := o.waitEvent(5*time.Second, "CONFLICT", x)
		got := o.waitBound(10*time.Second, x)
		p.ping(got, 2)
		w := s.stopCapture()
		claim := find(t, w, c1, "the kernel's ARP reply for "+x.String(), func(f arpFrame) bool { return f.sha == p.mac && f.op == 2 && f.spa == x })
		if f, ok := w.find(claim.at, claimBy(o.mac, x)); ok {
			t.Errorf("R16: autoipd -d defended %v: %v", x, f)
		}
		newClaim := find(t, w, claim.at, "autoipd's new claim", announceBy(o.mac, got))
		record(t, "kernel", side, "arping -A → yield (CONFLICT hook)", claim.at, conflict.at)
		record(t, "kernel", side, "arping -A → new claim (move-off)", claim.at, newClaim.at)
		return
	}
	c1 := claimWith("-U")
	stillDefended("the first claim")
	// The next claim comes 11 s after our defence as seen on the wire (the
	// time autoipd recorded), not after the claim: autoipd may be late.
	def1 := s.waitWire(5*time.Second, c1, "autoipd's defence", announceBy(o.mac, x))
	time.Sleep(time.Until(def1.at.Add(11 * time.Second)))
	c2 := claimWith("-U")
	stillDefended("a claim 11 s after the first defence")
	c3 := claimWith("-U")
	conflict := o.waitEvent(10*time.Second, "CONFLICT", x)
	got := o.waitBound(10*time.Second, x)
	p.ping(got, 2)
	w := s.stopCapture()
	var claims [3]arpFrame
	var defs [2]arpFrame
	for i, c := range []time.Time{c1, c2, c3} {
		claims[i] = find(t, w, c, "arping -U claim", announceBy(p.mac, x))
	}
	for i := range defs {
		defs[i] = find(t, w, claims[i].at, "autoipd's defence", announceBy(o.mac, x))
		if n := w.count(claims[i].at, claims[i+1].at, announceBy(o.mac, x)); n != 1 {
			t.Errorf("R15: %d defensive announcements after claim %d, want 1", n, i+1)
		}
	}
	if f, ok := w.find(claims[2].at, claimBy(o.mac, x)); ok {
		t.Errorf("R15: autoipd defended the claim within DEFEND_INTERVAL of its last defence: %v", f)
	}
	newClaim := find(t, w, claims[2].at, "autoipd's new claim", announceBy(o.mac, got))
	record(t, "kernel", side, "arping -U → defence", claims[0].at, defs[0].at)
	record(t, "kernel", side, "arping -U 11 s after our defence → defence again", claims[1].at, defs[1].at)
	record(t, "kernel", side, "arping -U within 10 s → yield (CONFLICT hook)", claims[2].at, conflict.at)
	record(t, "kernel", side, "arping -U within 10 s → new claim (move-off)", claims[2].at, newClaim.at)
}
