package hardening

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// The daemon's RATE_LIMIT_INTERVAL and MAX_CONFLICTS (RFC values; autoipd
// has no flag for them).
const (
	rateLimit    = 60 * time.Second
	maxConflicts = 10
	// wireSlack is how much earlier than the daemon's clock read a frame's
	// kernel receive stamp may make a gap look (the daemon sends a moment
	// after it decides; under load, a little longer).
	wireSlack = 250 * time.Millisecond
)

var rogueMAC = acd.MAC{0x02, 0xde, 0xad, 0xbe, 0xef, 0x11}

// rogue makes the kernel side answer every probe the daemon sends with a
// broadcast ARP reply claiming the probed address (R07: a conflict), and
// returns the count of answers.
func (e *denv) rogue() *atomic.Int64 {
	var n atomic.Int64
	e.wire.setOnFrame(func(s seenFrame) {
		if !s.f.IsProbe() || s.f.SenderHW != e.mac {
			return
		}
		p := acd.Packet{Op: acd.OpReply, SenderHW: rogueMAC, SenderIP: s.f.TargetIP, TargetHW: e.mac}
		if err := e.wire.send(acd.BroadcastFrame(p).AppendBinary(nil)); err == nil {
			n.Add(1)
		}
	})
	return &n
}

// waitEngine waits until the daemon answers on its status socket with the
// link up (the engine has started negotiating).
func (e *denv) waitEngine() {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, "the daemon up with its link up", func() bool {
		r, err := e.status()
		return err == nil && r.LinkUp && r.State != "link-down"
	})
}

// writeState writes a state file as persist would.
func writeState(t testing.TB, path string, conflicts int, last time.Time) {
	t.Helper()
	b := fmt.Sprintf("{\n  \"version\": 1,\n  \"conflicts\": %d,\n  \"last_attempt\": %q\n}\n", conflicts, last.UTC().Format(time.RFC3339Nano))
	if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestR11_DaemonRateLimitFromStateFile: autoipd starts with a state file
// that already counts MAX_CONFLICTS conflicts, the last attempt 55 s ago,
// and a rogue answers every probe. The daemon reports the rate limit at
// once (rate_limited_until = last attempt + RATE_LIMIT_INTERVAL), sends
// its first probe no earlier than that, and after the rogue's answer (the
// 11th conflict) is rate limited again, RATE_LIMIT_INTERVAL after that
// probe. Killed with SIGKILL and started again, it still waits for the same
// moment: a restart does not reset the limit (R11). The 60 s gaps
// themselves are measured by TestR11_DaemonRogueRateLimitAcrossRestart
// (full form) and, in virtual time, by
// TestR11_SimProbeDenialRateLimitSurvivesRestart.
func TestR11_DaemonRateLimitFromStateFile(t *testing.T) {
	t.Parallel()
	e := newDenv(t, 0x11, 0)
	answers := e.rogue()
	last := time.Now().Add(-rateLimit + 5*time.Second)
	writeState(t, e.statePath(), maxConflicts, last)
	until := last.Add(rateLimit)

	p := e.start(fastArgs...)
	e.waitEngine()
	r, _ := e.statusCLI()
	if r.Conflicts != maxConflicts || r.RateLimited == nil || r.RateLimited.Sub(until).Abs() > time.Millisecond || r.State != "waiting" {
		t.Fatalf("R11: status after start %+v (rate limited until %v), want waiting, %d conflicts, until %v", r, r.RateLimited, maxConflicts, until)
	}
	first := e.wire.waitProbe(t, 0, e.mac, time.Until(until)+10*time.Second)
	t.Logf("first probe %v after the saved last attempt (limit %v)", first.at.Sub(last).Round(time.Millisecond), rateLimit)
	if first.at.Before(until) {
		t.Errorf("R11: first probe at last attempt + %v, before the rate limit ends (+%v)", first.at.Sub(last), rateLimit)
	}
	if first.at.After(until.Add(3 * time.Second)) {
		t.Errorf("R11: first probe at last attempt + %v: the rate limit held it %v too long", first.at.Sub(last), first.at.Sub(until))
	}

	// The rogue answered it: the 11th conflict, and another minute's wait.
	var again *time.Time
	waitFor(t, 5*time.Second, "the 11th conflict", func() bool {
		r, err := e.status()
		if err == nil && r.Conflicts == maxConflicts+1 && r.RateLimited != nil {
			again = r.RateLimited
			return true
		}
		return false
	})
	if d := again.Sub(first.at.Add(rateLimit)); d < -wireSlack || d > wireSlack {
		t.Errorf("R11: rate limited until %v after the first probe, want %v", again.Sub(first.at), rateLimit)
	}
	time.Sleep(2 * time.Second)
	if ps := e.wire.probes(0, e.mac); len(ps) != 1 {
		t.Errorf("R11: %d probes, want only the one the rate limit allowed", len(ps))
	}

	// kill -9 and start again: the same wait, from the state file.
	p.kill()
	mark := e.wire.mark()
	e.start(fastArgs...)
	e.waitEngine()
	r2, _ := e.statusCLI()
	if r2.Conflicts != maxConflicts+1 || r2.RateLimited == nil || r2.RateLimited.Sub(*again).Abs() > time.Millisecond {
		t.Errorf("R11: after kill -9 and restart: %d conflicts, rate limited until %v; want %d and %v", r2.Conflicts, r2.RateLimited, maxConflicts+1, *again)
	}
	time.Sleep(2 * time.Second)
	if ps := e.wire.probes(mark, e.mac); len(ps) != 0 {
		t.Errorf("R11: the restarted daemon probed %v after the last attempt, within RATE_LIMIT_INTERVAL", ps[0].at.Sub(first.at))
	}
	if answers.Load() != 1 {
		t.Errorf("the rogue answered %d probes, want 1", answers.Load())
	}
}

// TestR11_DaemonRogueRateLimitAcrossRestart (full form; 2+ minutes of real
// time): a rogue answers every probe of a fresh autoipd. The first
// MAX_CONFLICTS attempts follow each other quickly; the next one waits
// RATE_LIMIT_INTERVAL (measured on the wire, between first probes). Right
// after it, the daemon is stopped and started again, and its first probe
// is still no earlier than that last attempt + RATE_LIMIT_INTERVAL: the
// state file carried the count and the time (R11, R04).
func TestR11_DaemonRogueRateLimitAcrossRestart(t *testing.T) {
	if !flag("AIP_HARDEN_RATE_WAIT", full()) {
		t.Skip("long form (two real RATE_LIMIT_INTERVALs): AIP_HARDEN_FULL=1 or AIP_HARDEN_RATE_WAIT=1 (make hardening); the short form is TestR11_DaemonRateLimitFromStateFile")
	}
	t.Parallel()
	e := newDenv(t, 0x12, 0)
	e.rogue()
	p := e.start(fastArgs...)

	// Attempts 1..MAX_CONFLICTS, then the first rate-limited one.
	var probes []seenFrame
	waitFor(t, rateLimit+30*time.Second, fmt.Sprintf("attempt %d", maxConflicts+1), func() bool {
		probes = e.wire.firstProbes(0, e.mac, time.Second)
		return len(probes) >= maxConflicts+1
	})
	for i := 1; i < len(probes); i++ {
		gap := probes[i].at.Sub(probes[i-1].at)
		t.Logf("attempt %2d: %v, %v after the previous", i+1, probes[i].f.TargetIP, gap.Round(time.Millisecond))
		switch {
		case i < maxConflicts && gap > 5*time.Second:
			t.Errorf("R11: attempt %d came %v after the previous: rate limited before MAX_CONFLICTS", i+1, gap)
		case i >= maxConflicts && gap < rateLimit-wireSlack:
			t.Errorf("R11: attempt %d came only %v after the previous, after %d conflicts", i+1, gap, i)
		case i >= maxConflicts && gap > rateLimit+5*time.Second:
			t.Errorf("R11: attempt %d came %v after the previous: held too long", i+1, gap)
		}
	}
	lastAttempt := probes[len(probes)-1]
	waitFor(t, 5*time.Second, "the conflict count to reach 11", func() bool {
		r, err := e.status()
		return err == nil && r.Conflicts == maxConflicts+1
	})
	p.stop(t, 15*time.Second)
	s, ok := checkStateFile(t, e.statePath())
	if !ok || s.Conflicts != maxConflicts+1 || s.LastAttempt.Sub(lastAttempt.at).Abs() > wireSlack {
		t.Fatalf("R11: state file after stop: %+v (exists %v), want %d conflicts and the last attempt at %v", s, ok, maxConflicts+1, lastAttempt.at)
	}

	mark := e.wire.mark()
	e.start(fastArgs...)
	next := e.wire.waitProbe(t, mark, e.mac, rateLimit+30*time.Second)
	gap := next.at.Sub(lastAttempt.at)
	t.Logf("after the restart: first probe %v after the last attempt before it", gap.Round(time.Millisecond))
	if gap < rateLimit-wireSlack {
		t.Errorf("R11: after a restart the first probe came %v after the last attempt, want >= %v", gap, rateLimit)
	}
	if gap > rateLimit+5*time.Second {
		t.Errorf("R11: after a restart the first probe came %v after the last attempt: held too long", gap)
	}
}
