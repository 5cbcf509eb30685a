package hardening

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestR15_R16_R17_DaemonConflictStorm: thousands of conflicting ARP
// packets (announcements, requests and replies whose sender IP is the bound
// address, from random MACs) as fast as the kernel sends them, at a bound
// autoipd. By default it sends exactly one defensive announcement (never
// more than one per DEFEND_INTERVAL, R17), gives the address up at the next
// conflict within DEFEND_INTERVAL (R15) and moves once to another address;
// with -d it moves at once, without a defence (R16). Either way the hook
// sees exactly one CONFLICT for the old address and one BIND for the new,
// the counters say the same, and the new address answers ping.
func TestR15_R16_R17_DaemonConflictStorm(t *testing.T) {
	t.Parallel()
	n := size(t, "AIP_HARDEN_STORM", 2000, 20000)
	sd := seed(t)
	for _, tc := range []struct {
		name     string
		args     []string
		defences int
	}{
		{"R15_R17_default_defends_once", nil, 1},
		{"R16_abandon_d", []string{"-d"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newDenv(t, byte(0x15+tc.defences), 2*n)
			hook, events := e.hook()
			first := netip.MustParseAddr("169.254.33.33")
			args := append([]string{"-s", first.String(), "-hook", hook}, fastArgs...)
			e.start(append(args, tc.args...)...)
			if a := e.waitBound(20 * time.Second); a != first {
				t.Fatalf("bound %v, want %v", a, first)
			}
			waitFor(t, 5*time.Second, "the BIND hook", func() bool { return len(readLines(events)) >= 1 })
			before, _ := e.statusCLI()

			rng := rand.New(rand.NewPCG(sd, 15))
			mark := e.wire.mark()
			began := time.Now()
			for i := 0; i < n; i++ {
				if err := e.wire.send(conflicting(rng, first, e.mac).AppendBinary(nil)); err != nil {
					t.Fatalf("storm frame %d: %v", i, err)
				}
			}
			sentIn := time.Since(began)
			var next netip.Addr
			waitFor(t, 20*time.Second, "a new address", func() bool {
				r, err := e.status()
				if err != nil || r.State != "bound" || r.Configured == "" || r.Configured == first.String() {
					return false
				}
				next = netip.MustParseAddr(r.Configured)
				return true
			})
			time.Sleep(1500 * time.Millisecond) // anything late would show now
			after, _ := e.statusCLI()

			var defences []seenFrame
			fs, _ := e.wire.sent(mark, e.mac)
			for _, f := range fs {
				if f.f.IsAnnouncement() && f.f.SenderIP == first {
					defences = append(defences, f)
				}
			}
			lines := readLines(events)
			t.Logf("%d conflicting frames sent in %v; %d defences; moved to %v; hook events %q; engine %+v",
				n, sentIn.Round(time.Millisecond), len(defences), next, lines, after.Counters.Engine)
			if len(defences) != tc.defences {
				t.Errorf("R17: %d defensive announcements of %v on the wire, want %d", len(defences), first, tc.defences)
			}
			want := []string{"BIND aiph0 " + first.String(), "CONFLICT aiph0 " + first.String(), "BIND aiph0 " + next.String()}
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("hook events %q, want %q", lines, want)
			}
			b, a := before.Counters.Engine, after.Counters.Engine
			if got, want := a.Defences-b.Defences, uint64(tc.defences); got != want {
				t.Errorf("engine defences +%d, want +%d", got, want)
			}
			if got, want := a.BoundConflicts-b.BoundConflicts, uint64(tc.defences+1); got != want {
				t.Errorf("engine bound_conflicts +%d, want +%d (each defended conflict and the one that cost the address)", got, want)
			}
			if got := a.Binds - b.Binds; got != 1 {
				t.Errorf("engine binds +%d, want +1: the address must change exactly once", got)
			}
			lc := after.LastConflict
			if lc == nil || lc.Event != "CONFLICT" || lc.Address != first.String() || lc.Phase != "bound" {
				t.Fatalf("last conflict %+v, want a CONFLICT on bound %v", lc, first)
			}
			if tc.defences == 0 {
				// -d: at the first conflicting packet, so within moments
				// of the storm's start (generously, under -race).
				if d := lc.Time.Sub(began); d > time.Second {
					t.Errorf("R16: gave the address up %v after the storm began, want at once", d)
				}
			} else if d := lc.Time.Sub(defences[0].at); d < -250*time.Millisecond || d > 10*time.Second {
				// (The defence's time is the kernel's receive stamp, a
				// little after the daemon's clock read when it sent it.)
				t.Errorf("R15: gave the address up %v after the defence, want within DEFEND_INTERVAL", d)
			}
			if err := e.ping(next); err != nil {
				t.Errorf("ping the new address %v: %v", next, err)
			}
			if e.ping(first) == nil {
				t.Errorf("the old address %v still answers", first)
			}
		})
	}
}
