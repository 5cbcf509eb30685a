package autoip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestR19_EngineLinkDownWithdrawsUpRestarts: link down while bound removes
// the address (EventUnbind); link up restarts negotiation, last address
// first, after the link-up delay.
func TestR19_EngineLinkDownWithdrawsUpRestarts(t *testing.T) {
	for _, lud := range []time.Duration{0, 3 * time.Second} {
		t.Run(fmt.Sprint("link-up delay ", lud), func(t *testing.T) {
			cfg := testConfig()
			cfg.LinkUpDelay = lud
			// A rogue takes the first candidate, so the address held is
			// not the one a fresh start would try first.
			first := Candidate(SeedFromMAC(ourMAC), 0)
			h := startedHarness(t, cfg)
			h.responders = append(h.responders, rogueFor(rogueMAC, first))
			addr := h.runUntilBound()
			if addr == first {
				t.Fatal("bound the taken address")
			}
			h.responders = nil
			h.runUntilIdle(time.Minute)
			h.advance(time.Minute)

			got := h.do(func(now time.Time) { h.e.SetLink(now, false) })
			// Held for over RATE_LIMIT_INTERVAL: the one conflict was
			// forgotten (and saved) while the address was held.
			if len(got) != 2 || got[0].Kind != OutRemoveAddress || got[0].Prefix != netip.PrefixFrom(addr, 16) || !isEvent(EventUnbind)(got[1]) {
				t.Fatalf("link down outputs:\n%s", dumpSteps(got))
			}
			if s := h.e.Saved(); s.Conflicts != 0 || s.Addr != addr {
				t.Fatalf("saved state after holding %v: %+v", time.Minute, s)
			}
			if ev := got[1].Event; ev.Addr != addr || ev.Reason != "link down" {
				t.Errorf("unbind event %+v", ev)
			}
			if s := h.e.Status(); s.State != StateLinkDown || s.Addr.IsValid() {
				t.Errorf("status while down %+v", s)
			}
			if _, ok := h.e.Deadline(); ok {
				t.Error("deadline while the link is down")
			}
			// Nothing happens while down: no timers, frames ignored,
			// repeated downs are no-ops.
			n := len(h.outs)
			h.advance(time.Hour)
			h.inject(announceFrom(rogueMAC, addr))
			h.inject(probeFrom(rogueMAC, addr))
			h.do(func(now time.Time) { h.e.SetLink(now, false) })
			if err := h.e.Reannounce(h.now); err == nil {
				t.Error("Reannounce while down succeeded")
			}
			if len(h.outs) != n {
				t.Fatalf("outputs while down: %v", h.outs[n:])
			}

			upAt := h.now
			h.do(func(now time.Time) { h.e.SetLink(now, true) })
			p := h.runUntil(time.Minute, "probe", isOurProbe)
			if p.Frame.TargetIP != addr {
				t.Errorf("first probe after link up for %v, want the last address %v", p.Frame.TargetIP, addr)
			}
			if d := p.At.Sub(upAt); d < lud || d > lud+h.e.Timing().ProbeWait {
				t.Errorf("first probe %v after link up, want within [%v, %v]", d, lud, lud+h.e.Timing().ProbeWait)
			}
			if got := h.runUntilBound(); got != addr {
				t.Errorf("rebound %v, want %v", got, addr)
			}
			// A second up is a no-op.
			n = len(h.outs)
			dl, _ := h.e.Deadline()
			h.do(func(now time.Time) { h.e.SetLink(now, true) })
			if d2, _ := h.e.Deadline(); len(h.outs) != n || d2 != dl {
				t.Error("SetLink(true) while up changed something")
			}
		})
	}
}

// TestR19_EngineLinkDownWhileProbing: link down while probing stops it
// quietly (nothing was configured); up starts again.
func TestR19_EngineLinkDownWhileProbing(t *testing.T) {
	h := startedHarness(t, testConfig())
	h.runUntil(time.Minute, "probe", isOurProbe)
	got := h.do(func(now time.Time) { h.e.SetLink(now, false) })
	if len(got) != 0 {
		t.Errorf("link down while probing: %v", got)
	}
	h.advance(time.Minute)
	h.do(func(now time.Time) { h.e.SetLink(now, true) })
	addr := h.runUntilBound()
	if addr != Candidate(SeedFromMAC(ourMAC), 0) {
		t.Errorf("bound %v", addr)
	}
	if n := len(filter(h.outs, isProbeOf(addr))); n != 1+h.e.Timing().ProbeNum {
		t.Errorf("%d probes, want a full set after link up", n)
	}
	checkBindRules(t, h.outs, h.e.Timing())
}

// TestR19_EngineStartWithLinkDown: started with the link down, the engine
// waits for it.
func TestR19_EngineStartWithLinkDown(t *testing.T) {
	cfg := testConfig()
	cfg.LinkUpDelay = 2 * time.Second
	h := newHarness(t, cfg)
	h.do(func(now time.Time) { h.e.SetLink(now, false) })
	h.do(h.e.Start)
	if s := h.e.Status(); s.State != StateLinkDown {
		t.Fatalf("state %v", s.State)
	}
	h.advance(time.Hour)
	if len(h.outs) != 0 {
		t.Fatalf("outputs with the link down: %v", h.outs)
	}
	upAt := h.now
	h.do(func(now time.Time) { h.e.SetLink(now, true) })
	p := h.runUntil(time.Minute, "probe", isOurProbe)
	if d := p.At.Sub(upAt); d < 2*time.Second {
		t.Errorf("first probe %v after link up, want >= the link-up delay", d)
	}
}

// TestR21_EngineYieldToRoutable: with YieldToRoutable, a routable address
// withdraws ours and suspends the engine until it goes; without it, a
// routable address changes nothing.
func TestR21_EngineYieldToRoutable(t *testing.T) {
	t.Run("yield", func(t *testing.T) {
		cfg := testConfig()
		cfg.YieldToRoutable = true
		h := startedHarness(t, cfg)
		addr := h.runUntilBound()
		h.runUntilIdle(time.Minute)
		got := h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		if len(got) != 2 || got[0].Kind != OutRemoveAddress || got[0].Prefix.Addr() != addr || !isEvent(EventUnbind)(got[1]) || got[1].Event.Reason != "routable address" {
			t.Fatalf("outputs:\n%s", dumpSteps(got))
		}
		if s := h.e.Status(); s.State != StateSuspended {
			t.Errorf("state %v", s.State)
		}
		n := len(h.outs)
		h.advance(time.Hour)
		h.inject(announceFrom(rogueMAC, addr))
		h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		if len(h.outs) != n {
			t.Fatalf("outputs while suspended: %v", h.outs[n:])
		}
		// Link toggles while suspended do not wake it.
		h.do(func(now time.Time) { h.e.SetLink(now, false) })
		h.do(func(now time.Time) { h.e.SetLink(now, true) })
		h.advance(time.Hour)
		if len(h.outs) != n || h.e.Status().State != StateSuspended {
			t.Fatalf("woke while a routable address is present: %v", h.outs[n:])
		}
		h.do(func(now time.Time) { h.e.SetRoutable(now, false) })
		if p := h.runUntil(time.Minute, "probe", isOurProbe); p.Frame.TargetIP != addr {
			t.Errorf("after the routable address went: probe for %v, want %v", p.Frame.TargetIP, addr)
		}
		if got := h.runUntilBound(); got != addr {
			t.Errorf("rebound %v", got)
		}
	})
	t.Run("routable before start", func(t *testing.T) {
		cfg := testConfig()
		cfg.YieldToRoutable = true
		h := newHarness(t, cfg)
		h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		h.do(h.e.Start)
		h.advance(time.Hour)
		if len(h.outs) != 0 || h.e.Status().State != StateSuspended {
			t.Fatalf("claimed with a routable address: %v", h.outs)
		}
		h.do(func(now time.Time) { h.e.SetRoutable(now, false) })
		h.runUntilBound()
	})
	t.Run("force", func(t *testing.T) {
		h := startedHarness(t, testConfig())
		h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		addr := h.runUntilBound()
		h.runUntilIdle(time.Minute)
		n := len(h.outs)
		h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		h.do(func(now time.Time) { h.e.SetRoutable(now, false) })
		h.do(func(now time.Time) { h.e.SetRoutable(now, true) })
		h.advance(time.Hour)
		if len(h.outs) != n {
			t.Errorf("routable address changed something without YieldToRoutable: %v", h.outs[n:])
		}
		if s := h.e.Status(); s.State != StateBound || s.Addr != addr {
			t.Errorf("status %+v", s)
		}
	})
}

// TestReannounce: Reannounce re-adds the address and announces it again
// ANNOUNCE_NUM times, the first at once; it fails when nothing is bound.
func TestReannounce(t *testing.T) {
	for _, a := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("-a ", a), func(t *testing.T) {
			tm, _ := qnxTiming(t, QNXOptions{DelayMS: 2000, Probes: 3, Announces: a, WaitSeconds: 2})
			cfg := testConfig()
			cfg.Timing = tm
			h := newHarness(t, cfg)
			checkNotBound := func(when string) {
				t.Helper()
				err := h.e.Reannounce(h.now)
				if err == nil || !strings.Contains(err.Error(), "no address is bound") {
					t.Errorf("Reannounce %s: %v", when, err)
				}
				if got := h.e.AppendOutputs(nil); len(got) != 0 {
					t.Errorf("Reannounce %s: outputs %v", when, got)
				}
			}
			checkNotBound("before start")
			h.do(h.e.Start)
			checkNotBound("while waiting")
			h.runUntil(time.Minute, "probe", isOurProbe)
			checkNotBound("while probing")
			addr := h.runUntilBound()
			h.runUntilIdle(time.Minute)
			h.advance(time.Hour)

			start := h.now
			var err error
			got := h.do(func(now time.Time) { err = h.e.Reannounce(now) })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Kind != OutAddAddress || got[0].Prefix != netip.PrefixFrom(addr, 16) || !isOurAnnouncement(got[1]) || got[1].Frame.SenderIP != addr {
				t.Fatalf("Reannounce outputs:\n%s\nwant add-address and an announcement at once", dumpSteps(got))
			}
			h.runUntilIdle(time.Minute)
			ann := filter(h.outs, func(s step) bool { return isOurAnnouncement(s) && !s.At.Before(start) })
			if len(ann) != a {
				t.Fatalf("%d announcements, want %d:\n%s", len(ann), a, h.dump())
			}
			for i := range ann {
				if d := ann[i].At.Sub(start); d != time.Duration(i)*tm.AnnounceInterval {
					t.Errorf("announcement %d at +%v, want +%v", i+1, d, time.Duration(i)*tm.AnnounceInterval)
				}
			}
			if n := len(events(h.outs, EventBind)); n != 1 {
				t.Errorf("%d EventBind, want 1 (Reannounce is not a new bind)", n)
			}
			if s := h.e.Status(); s.State != StateBound || s.Stats.Binds != 1 {
				t.Errorf("status %+v", s)
			}
			h.do(h.e.Stop)
			checkNotBound("after stop")
		})
	}
}

// drive runs one scripted scenario with inputs of every kind and returns
// the formatted outputs.
func drive(t *testing.T, cfg Config) []string {
	t.Helper()
	h := startedHarness(t, cfg)
	first := Candidate(h.e.Seed(), 0)
	h.responders = append(h.responders, rogueFor(rogueMAC, first), loopback)
	addr := h.runUntilBound()
	h.responders = h.responders[1:]
	h.advance(30 * time.Second)
	h.inject(announceFrom(peerMAC, addr))
	h.injectRaw(rawFrame(requestFrom(peerMAC, mustAddr("169.254.7.7"), addr)))
	h.injectRaw([]byte{1, 2, 3})
	h.advance(3 * time.Second)
	h.inject(announceFrom(peerMAC, addr))
	if !h.e.Status().State.IsBound() {
		h.runUntilBound()
	}
	h.do(func(now time.Time) {
		if err := h.e.Reannounce(now); err != nil {
			t.Fatal(err)
		}
	})
	h.advance(time.Minute)
	h.do(func(now time.Time) { h.e.SetLink(now, false) })
	h.advance(time.Minute)
	h.do(func(now time.Time) { h.e.SetLink(now, true) })
	h.runUntilBound()
	h.advance(time.Minute)
	h.do(h.e.Stop)
	return fmtSteps(h.outs)
}

// TestDeterminism: two engines with the same configuration, driven by the
// same inputs, produce identical outputs; another seed does not.
func TestDeterminism(t *testing.T) {
	for _, pol := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon} {
		t.Run(pol.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.Defend = pol
			cfg.Seed = 12345
			a, b := drive(t, cfg), drive(t, cfg)
			if strings.Join(a, "\n") != strings.Join(b, "\n") {
				for i := range min(len(a), len(b)) {
					if a[i] != b[i] {
						t.Fatalf("runs diverge at output %d:\n%s\n%s", i, a[i], b[i])
					}
				}
				t.Fatalf("runs differ in length: %d vs %d", len(a), len(b))
			}
			cfg.Seed = 54321
			if c := drive(t, cfg); strings.Join(a, "\n") == strings.Join(c, "\n") {
				t.Error("a different seed gave the same run")
			}
		})
	}
}
