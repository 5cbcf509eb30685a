package hardening

import (
	"fmt"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
)

// rateLimitProblems replays one host's recorded events against R11: once
// the host has counted MAX_CONFLICTS conflicts, the first probes of
// consecutive attempts are at least RATE_LIMIT_INTERVAL apart, restarts
// included. keptState says whether a restart (START after the first) keeps
// the saved state, and so the conflict count and the last attempt's time.
func rateLimitProblems(evs []sim.Event, tm acd.Timing, keptState func(start int) bool) []string {
	tm = tm.WithDefaults()
	var out []string
	conflicts, starts := 0, 0
	var last time.Duration
	haveLast := false
	for _, e := range evs {
		switch e.Kind {
		case sim.EventStart:
			starts++
			if starts > 1 && !keptState(starts-1) {
				conflicts, haveLast = 0, false
			}
		case sim.EventConflict:
			conflicts++
		case sim.EventProbe:
			if haveLast && conflicts >= tm.MaxConflicts {
				if gap := e.At - last; gap < tm.RateLimitInterval {
					out = append(out, fmt.Sprintf("R11: host %d: attempt on %v at %v only %v after the previous one (after %d conflicts), want >= %v",
						e.Host, e.Addr, e.At, gap, conflicts, tm.RateLimitInterval))
				}
			}
			last, haveLast = e.At, true
		}
	}
	return out
}

// TestR11_SimProbeDenialRateLimitSurvivesRestart: the probe-denial case in
// virtual time. A rogue answers every probe for eight minutes; after
// MAX_CONFLICTS conflicts each host makes one attempt per
// RATE_LIMIT_INTERVAL, measured on its first probes. Host 0 reboots with its
// saved state (as the daemon does with its state file) every 37 s, at every
// phase of the 60 s cycle, and its attempts stay 60 s apart across every
// reboot; host 1 reboots the same way but with fresh state, and the same
// check flags it, which shows the check can fail; host 2 never reboots.
// When the rogue leaves, every host binds. The simulator's own invariants
// (its rate-limit rule included) hold for hosts 0 and 2.
func TestR11_SimProbeDenialRateLimitSurvivesRestart(t *testing.T) {
	s, err := sim.New(sim.Config{Name: "probe-denial-restart", Seed: 7, Duration: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		if _, err := s.AddHost(sim.HostConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	const rogueUntil = 8 * time.Minute
	if _, err := s.AddActor(sim.ActorConfig{Kind: sim.ActorProbeDenier, Until: rogueUntil, Delay: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	restarts := 0
	for at := time.Minute; at < rogueUntil+2*time.Minute; at += 37 * time.Second {
		restarts++
		if err := s.At(at, func() error {
			h0, err := s.Host(0)
			if err != nil {
				return err
			}
			if err := s.Restart(0, h0.MAC, true); err != nil {
				return err
			}
			h1, err := s.Host(1)
			if err != nil {
				return err
			}
			return s.Restart(1, h1.MAC, false)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	r := report.Build(s, report.Options{HostDetail: true, Check: sim.CheckOptions{AllBound: true}})
	tm := acd.DefaultTiming()

	kept := func(int) bool { return true }
	for _, h := range []int{0, 2} {
		evs := s.HostEvents(h)
		probes := 0
		for _, e := range evs {
			if e.Kind == sim.EventProbe {
				probes++
			}
		}
		// 8 minutes of denial: MAX_CONFLICTS quick attempts, then about
		// one a minute; a host that probed much more was not limited.
		if hd := r.HostDetail[h]; hd.Conflicts < tm.MaxConflicts || hd.RateLimits < 5 || probes > tm.MaxConflicts+10 {
			t.Errorf("host %d: %d conflicts, %d rate limits, %d attempts: want >= %d conflicts, >= 5 rate limits, <= %d attempts",
				h, hd.Conflicts, hd.RateLimits, probes, tm.MaxConflicts, tm.MaxConflicts+10)
		}
		for _, p := range rateLimitProblems(evs, tm, kept) {
			t.Error(p)
		}
	}
	if got := r.HostDetail[0].Boots; got != restarts+1 {
		t.Errorf("host 0 booted %d times, want %d", got, restarts+1)
	}
	// Host 1 forgot its state at every reboot: judged as if it had kept
	// it, it breaks the rule (and the check says so).
	if len(rateLimitProblems(s.HostEvents(1), tm, kept)) == 0 {
		t.Error("host 1 rebooted with fresh state yet no early attempt was flagged: the rate-limit check cannot fail")
	}
	if len(rateLimitProblems(s.HostEvents(1), tm, func(int) bool { return false })) != 0 {
		t.Error("host 1 broke the rate limit even counting its fresh starts")
	}
	for _, v := range r.Violations {
		if v.Host != 1 {
			t.Errorf("invariant: %v", v)
		}
	}
	if r.Bound != 3 {
		t.Errorf("%d of 3 hosts bound after the rogue left", r.Bound)
	}
}
