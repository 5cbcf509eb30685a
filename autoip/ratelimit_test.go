package autoip

import (
	"fmt"
	"testing"
	"time"
)

// rogueRun runs cfg against a host claiming every address until the
// engine has made n attempts, and returns the harness.
func rogueRun(t *testing.T, cfg Config, n int) *harness {
	t.Helper()
	h := startedHarness(t, cfg)
	h.responders = append(h.responders, rogueReplier(rogueMAC))
	for len(events(h.outs, EventProbe)) < n {
		if !h.next() {
			t.Fatalf("engine went idle:\n%s", h.dump())
		}
	}
	return h
}

// TestR11_RateLimitAfterMaxConflicts: a host answering every probe. The
// first MAX_CONFLICTS attempts follow each other quickly; from then on,
// consecutive attempts' first probes are at least RATE_LIMIT_INTERVAL
// apart, and each delayed attempt is reported with EventRateLimit.
func TestR11_RateLimitAfterMaxConflicts(t *testing.T) {
	for _, mc := range []int{1, 3, 10} {
		t.Run(fmt.Sprintf("MAX_CONFLICTS=%d", mc), func(t *testing.T) {
			cfg := testConfig()
			cfg.Timing.MaxConflicts = mc
			const n = 25
			h := rogueRun(t, cfg, n)
			tm := h.e.Timing()
			probes := events(h.outs, EventProbe)
			for i := 1; i < len(probes); i++ {
				gap := probes[i].At.Sub(probes[i-1].At)
				// Attempt i starts after i conflicts.
				if i >= tm.MaxConflicts {
					if gap < tm.RateLimitInterval {
						t.Errorf("attempt %d (after %d conflicts) %v after the previous, want >= %v", i+1, i, gap, tm.RateLimitInterval)
					}
					if gap > tm.RateLimitInterval+tm.ProbeWait {
						t.Errorf("attempt %d waited %v, want at most RATE_LIMIT_INTERVAL+PROBE_WAIT", i+1, gap)
					}
				} else if gap > tm.ProbeWait {
					t.Errorf("attempt %d (after %d conflicts) %v after the previous: rate limited too early", i+1, i, gap)
				}
			}
			rl := events(h.outs, EventRateLimit)
			// Every attempt scheduled after the MAX_CONFLICTS-th conflict
			// (the n-th conflict's included) is delayed.
			if want := n - tm.MaxConflicts + 1; len(rl) != want {
				t.Errorf("%d EventRateLimit, want %d", len(rl), want)
			}
			for _, r := range rl {
				// Until is RATE_LIMIT_INTERVAL after the previous first probe.
				var prev step
				for _, p := range probes {
					if !p.At.After(r.At) {
						prev = p
					}
				}
				if want := prev.At.Add(tm.RateLimitInterval); !r.Event.Until.Equal(want) {
					t.Errorf("%v: until %v, want %v", r, r.Event.Until.Sub(t0), want.Sub(t0))
				}
			}
			if len(rl) > 0 && rl[0].At.Before(events(h.outs, EventConflict)[tm.MaxConflicts-1].At) {
				t.Errorf("first rate limit at %v, before conflict %d", rl[0], tm.MaxConflicts)
			}
			st := h.e.Status()
			if st.Stats.RateLimited != uint64(len(rl)) || st.Conflicts < tm.MaxConflicts {
				t.Errorf("status %+v with %d rate-limit events", st, len(rl))
			}
		})
	}
}

// TestR11_RateLimitStatusWhileWaiting: while an attempt waits for the rate
// limit, Status says until when, and nothing is sent.
func TestR11_RateLimitStatusWhileWaiting(t *testing.T) {
	h := rogueRun(t, testConfig(), 11)
	tm := h.e.Timing()
	rl := events(h.outs, EventRateLimit)
	if len(rl) != 2 { // after the 10th and the 11th conflict
		t.Fatalf("%d rate limits:\n%s", len(rl), h.dump())
	}
	// Roll back to just after the 10th conflict: rerun to there.
	h2 := startedHarness(t, testConfig())
	h2.responders = append(h2.responders, rogueReplier(rogueMAC))
	for len(events(h2.outs, EventRateLimit)) == 0 {
		h2.next()
	}
	st := h2.e.Status()
	if st.State != StateWaiting || !st.RateLimitedUntil.Equal(rl[0].Event.Until) || st.Conflicts != tm.MaxConflicts {
		t.Errorf("status while rate limited %+v, want waiting until %v", st, rl[0].Event.Until.Sub(t0))
	}
	sent := len(filter(h2.outs, isKind(OutSendARP)))
	h2.advanceTo(rl[0].Event.Until.Add(-time.Nanosecond))
	if n := len(filter(h2.outs, isKind(OutSendARP))); n != sent {
		t.Errorf("%d frames sent while rate limited", n-sent)
	}
	if st := h2.e.Status(); !st.RateLimitedUntil.Equal(rl[0].Event.Until) {
		t.Errorf("RateLimitedUntil %v just before the wait ends", st.RateLimitedUntil)
	}
	// Once the attempt's first probe is out, it no longer waits.
	h2.responders = nil
	h2.runUntil(time.Minute, "probe", isOurProbe)
	if st := h2.e.Status(); !st.RateLimitedUntil.IsZero() || st.State != StateProbing {
		t.Errorf("after the delayed attempt's first probe: status %+v, want probing with no RateLimitedUntil", st)
	}
}

// TestR11_RateLimitSurvivesRestart: a new engine built from the last
// OutSaveState still waits RATE_LIMIT_INTERVAL after the last attempt.
func TestR11_RateLimitSurvivesRestart(t *testing.T) {
	for _, attempts := range []int{10, 11, 15} {
		t.Run(fmt.Sprint(attempts), func(t *testing.T) {
			h := rogueRun(t, testConfig(), attempts)
			tm := h.e.Timing()
			// The rogue answered the last attempt's first probe at once:
			// stop right after that conflict.
			if n := len(events(h.outs, EventConflict)); n != attempts {
				t.Fatalf("%d conflicts, want %d", n, attempts)
			}
			h.do(h.e.Stop)
			saves := filter(h.outs, isKind(OutSaveState))
			saved := saves[len(saves)-1].Saved
			if saved.Conflicts != attempts {
				t.Fatalf("saved %+v, want %d conflicts", saved, attempts)
			}
			lastProbe := events(h.outs, EventProbe)[attempts-1].At
			if !saved.LastAttempt.Equal(lastProbe) {
				t.Fatalf("saved LastAttempt %v, want the last first probe %v", saved.LastAttempt.Sub(t0), lastProbe.Sub(t0))
			}
			for _, restartAfter := range []time.Duration{0, time.Second, 30 * time.Second, 59 * time.Second} {
				cfg := testConfig()
				cfg.Saved = saved
				h2 := newHarness(t, cfg)
				h2.now = h.now.Add(restartAfter)
				h2.do(h2.e.Start)
				first := h2.runUntil(2*time.Minute, "first probe", isOurProbe)
				if first.At.Before(saved.LastAttempt.Add(tm.RateLimitInterval)) {
					t.Errorf("restart after %v: first probe at %v, want >= %v", restartAfter, first.At.Sub(t0), saved.LastAttempt.Add(tm.RateLimitInterval).Sub(t0))
				}
				if len(events(h2.outs, EventRateLimit)) != 1 {
					t.Errorf("restart after %v: no EventRateLimit:\n%s", restartAfter, h2.dump())
				}
			}
			// Long after the interval, no wait.
			cfg := testConfig()
			cfg.Saved = saved
			h3 := newHarness(t, cfg)
			h3.now = saved.LastAttempt.Add(tm.RateLimitInterval + time.Minute)
			h3.do(h3.e.Start)
			first := h3.runUntil(time.Minute, "first probe", isOurProbe)
			if d := first.At.Sub(h3.now); d > tm.ProbeWait || len(events(h3.outs, EventRateLimit)) != 0 {
				t.Errorf("late restart waited: %v", h3.dump())
			}
		})
	}
	// Fewer than MAX_CONFLICTS saved: no rate limit.
	cfg := testConfig()
	cfg.Saved = SavedState{Conflicts: 9, LastAttempt: t0}
	h := startedHarness(t, cfg)
	if p := h.runUntil(time.Minute, "probe", isOurProbe); p.At.Sub(t0) > time.Second {
		t.Errorf("9 saved conflicts delayed the first probe to %v", p.At.Sub(t0))
	}
}

// TestR11_SavedLastAttemptInFuture: a saved LastAttempt later than now (the
// clock was set back since) never delays the first probe by more than one
// RATE_LIMIT_INTERVAL.
func TestR11_SavedLastAttemptInFuture(t *testing.T) {
	for _, ahead := range []time.Duration{time.Second, time.Hour, 50 * 365 * 24 * time.Hour} {
		t.Run(ahead.String(), func(t *testing.T) {
			cfg := testConfig()
			cfg.Saved = SavedState{Conflicts: 12, LastAttempt: t0.Add(ahead)}
			h := startedHarness(t, cfg)
			tm := h.e.Timing()
			p := h.runUntil(2*time.Minute, "first probe", isOurProbe)
			if d := p.At.Sub(t0); d < tm.RateLimitInterval || d > tm.RateLimitInterval+tm.ProbeWait {
				t.Errorf("first probe after %v, want within [RATE_LIMIT_INTERVAL, +PROBE_WAIT]", d)
			}
			if rl := events(h.outs, EventRateLimit); len(rl) != 1 || !rl[0].Event.Until.Equal(t0.Add(tm.RateLimitInterval)) {
				t.Errorf("rate-limit events %v", rl)
			}
		})
	}
}

// TestR11_CountResetsAfterHoldingRateLimitInterval: the conflict count goes
// back to zero once an address has been held for RATE_LIMIT_INTERVAL, however
// the address is then given up (conflict, stop, link down), so a later
// conflict does not start rate limiting at once.
func TestR11_CountResetsAfterHoldingRateLimitInterval(t *testing.T) {
	ends := []struct {
		name string
		end  func(h *harness)
	}{
		{"conflict", func(h *harness) {
			a := h.e.Status().Addr
			h.inject(announceFrom(rogueMAC, a))
			h.advance(time.Second)
			h.inject(announceFrom(rogueMAC, a))
		}},
		{"stop", func(h *harness) { h.do(h.e.Stop); h.do(h.e.Start) }},
		{"link down", func(h *harness) {
			h.do(func(now time.Time) { h.e.SetLink(now, false) })
			h.do(func(now time.Time) { h.e.SetLink(now, true) })
		}},
	}
	for _, held := range []time.Duration{50 * time.Second, 61 * time.Second} {
		for _, end := range ends {
			t.Run(fmt.Sprintf("%v/%s", held, end.name), func(t *testing.T) {
				cfg := testConfig()
				cfg.Saved = SavedState{Conflicts: 12, LastAttempt: t0.Add(-time.Hour)}
				h := startedHarness(t, cfg)
				h.runUntilBound()
				bindAt := h.now
				h.advanceTo(bindAt.Add(held))
				end.end(h)
				tm := h.e.Timing()
				reset := held >= tm.RateLimitInterval
				c := h.e.Status().Conflicts
				wantC := 12
				if end.name == "conflict" {
					wantC++
				}
				if reset {
					wantC -= 12
				}
				if c != wantC {
					t.Errorf("count %d after holding %v and %s, want %d", c, held, end.name, wantC)
				}
				saves := filter(h.outs, isKind(OutSaveState))
				if got := saves[len(saves)-1].Saved.Conflicts; got != c {
					t.Errorf("saved count %d, status %d", got, c)
				}
				// One probe conflict on the next attempt: rate limited only
				// if the count was kept.
				n := len(events(h.outs, EventRateLimit))
				p := h.runUntil(time.Minute, "probe", isOurProbe)
				h.inject(replyFrom(rogueMAC, p.Frame.TargetIP, ourMAC, zeroIP))
				limited := len(events(h.outs, EventRateLimit)) > n
				if limited == reset {
					t.Errorf("after holding %v: rate limited = %v:\n%s", held, limited, h.dump())
				}
			})
		}
	}
}
