package hardening

import (
	"net/netip"
	"testing"
	"time"
)

// TestR19_DaemonTAPDownUpDeleteRecreate: the TAP under a running autoipd
// goes administratively down and up, and is deleted and re-created, 50
// times each (short form: 5). Each time the address is withdrawn while the
// link is away and the same address is claimed again when it is back, with
// its first probe (last address first, R19); the TAP is re-opened after
// each re-creation, nothing conflicts, and the address answers ping.
func TestR19_DaemonTAPDownUpDeleteRecreate(t *testing.T) {
	t.Parallel()
	cycles := size(t, "AIP_HARDEN_LINK_CYCLES", 5, 50)
	e := newDenv(t, 0x19, 0)
	p := e.start(fastArgs...)
	addr := e.waitBound(20 * time.Second)
	before, _ := e.statusCLI()

	gone := func(what string, i int) {
		t.Helper()
		waitFor(t, 10*time.Second, what+": the address withdrawn", func() bool {
			r, err := e.status()
			return err == nil && !r.LinkUp && r.Configured == ""
		})
	}
	back := func(what string, i, mark int) {
		t.Helper()
		var got netip.Addr
		waitFor(t, 20*time.Second, what+": an address claimed again", func() bool {
			r, err := e.status()
			if err != nil || r.Configured == "" {
				return false
			}
			got = netip.MustParseAddr(r.Configured)
			return true
		})
		if got != addr {
			t.Fatalf("R19: cycle %d, %s: claimed %v, want %v again", i, what, got, addr)
		}
		if ps := e.wire.probes(mark, e.mac); len(ps) == 0 || ps[0].f.TargetIP != addr {
			t.Fatalf("R19: cycle %d, %s: first probe %v, want one for %v", i, what, ps, addr)
		}
		if err := e.ping(addr); err != nil {
			t.Fatalf("cycle %d, %s: ping %v: %v", i, what, addr, err)
		}
	}
	start := time.Now()
	for i := 0; i < cycles; i++ {
		mark := e.wire.mark()
		e.ns.IP(t, "link", "set", e.tap, "down")
		gone("down", i)
		e.ns.IP(t, "link", "set", e.tap, "up")
		back("down/up", i, mark)

		e.ns.IP(t, "link", "del", e.tap)
		gone("delete", i)
		e.wire.close() // its sockets belonged to the deleted interface
		e.createTAP(0) // and a new wire
		back("delete/re-create", i, 0)
	}
	after, _ := e.statusCLI()
	t.Logf("%d cycles of down/up and delete/re-create in %v; link %+v", cycles, time.Since(start).Round(time.Millisecond), after.Counters.Link)
	if !p.alive() || after.PID != before.PID {
		t.Fatal("the daemon did not survive")
	}
	b, a := before.Counters, after.Counters
	if got := a.Link.Reopens - b.Link.Reopens; got != uint64(cycles) {
		t.Errorf("TAP re-opened %d times, want %d", got, cycles)
	}
	if got := a.Engine.Binds - b.Engine.Binds; got != uint64(2*cycles) {
		t.Errorf("engine binds +%d, want +%d", got, 2*cycles)
	}
	if a.Engine.ProbeConflicts != b.Engine.ProbeConflicts || a.Engine.BoundConflicts != b.Engine.BoundConflicts || after.Conflicts != 0 {
		t.Errorf("conflicts during the cycles: before %+v after %+v", b.Engine, a.Engine)
	}
	p.stop(t, 15*time.Second)
}
