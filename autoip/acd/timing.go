package acd

import (
	"fmt"
	"time"
)

// Timing holds the protocol constants of RFC 3927 §9 and RFC 5227 §1.1.
// A zero field takes its RFC default (see DefaultTiming); a negative or
// out-of-range field is refused by Validate.
type Timing struct {
	ProbeWait         time.Duration // PROBE_WAIT: initial random delay before the first probe (1 s)
	ProbeNum          int           // PROBE_NUM: number of probes (3)
	ProbeMin          time.Duration // PROBE_MIN: minimum delay between probes (1 s)
	ProbeMax          time.Duration // PROBE_MAX: maximum delay between probes (2 s)
	AnnounceWait      time.Duration // ANNOUNCE_WAIT: delay after the last probe before announcing (2 s)
	AnnounceNum       int           // ANNOUNCE_NUM: number of announcements (2)
	AnnounceInterval  time.Duration // ANNOUNCE_INTERVAL: time between announcements (2 s)
	MaxConflicts      int           // MAX_CONFLICTS: conflicts before rate limiting (10)
	RateLimitInterval time.Duration // RATE_LIMIT_INTERVAL: one attempt per this, once rate limited (60 s)
	DefendInterval    time.Duration // DEFEND_INTERVAL: minimum time between defensive announcements (10 s)
}

// DefaultTiming returns the RFC values.
func DefaultTiming() Timing {
	return Timing{
		ProbeWait:         1 * time.Second,
		ProbeNum:          3,
		ProbeMin:          1 * time.Second,
		ProbeMax:          2 * time.Second,
		AnnounceWait:      2 * time.Second,
		AnnounceNum:       2,
		AnnounceInterval:  2 * time.Second,
		MaxConflicts:      10,
		RateLimitInterval: 60 * time.Second,
		DefendInterval:    10 * time.Second,
	}
}

// Limits for Validate. Durations are capped at a day and counts at 1000 so
// that no arithmetic on them can overflow and no typo hangs a host for years.
const (
	MaxTimingDuration = 24 * time.Hour
	MaxTimingCount    = 1000
)

// WithDefaults returns t with every zero field replaced by its RFC default.
func (t Timing) WithDefaults() Timing {
	d := DefaultTiming()
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setN := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD(&t.ProbeWait, d.ProbeWait)
	setN(&t.ProbeNum, d.ProbeNum)
	setD(&t.ProbeMin, d.ProbeMin)
	setD(&t.ProbeMax, d.ProbeMax)
	setD(&t.AnnounceWait, d.AnnounceWait)
	setN(&t.AnnounceNum, d.AnnounceNum)
	setD(&t.AnnounceInterval, d.AnnounceInterval)
	setN(&t.MaxConflicts, d.MaxConflicts)
	setD(&t.RateLimitInterval, d.RateLimitInterval)
	setD(&t.DefendInterval, d.DefendInterval)
	return t
}

// Validate checks t after defaults are applied. Each error names the field,
// the offending value and the accepted range.
func (t Timing) Validate() error {
	t = t.WithDefaults()
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"PROBE_WAIT", t.ProbeWait},
		{"PROBE_MIN", t.ProbeMin},
		{"PROBE_MAX", t.ProbeMax},
		{"ANNOUNCE_WAIT", t.AnnounceWait},
		{"ANNOUNCE_INTERVAL", t.AnnounceInterval},
		{"RATE_LIMIT_INTERVAL", t.RateLimitInterval},
		{"DEFEND_INTERVAL", t.DefendInterval},
	}
	for _, d := range durs {
		if d.v <= 0 || d.v > MaxTimingDuration {
			return fmt.Errorf("timing: %s is %v, want more than 0 and at most %v", d.name, d.v, MaxTimingDuration)
		}
	}
	counts := []struct {
		name string
		v    int
	}{
		{"PROBE_NUM", t.ProbeNum},
		{"ANNOUNCE_NUM", t.AnnounceNum},
		{"MAX_CONFLICTS", t.MaxConflicts},
	}
	for _, c := range counts {
		if c.v < 1 || c.v > MaxTimingCount {
			return fmt.Errorf("timing: %s is %d, want 1..%d", c.name, c.v, MaxTimingCount)
		}
	}
	if t.ProbeMin > t.ProbeMax {
		return fmt.Errorf("timing: PROBE_MIN (%v) is more than PROBE_MAX (%v)", t.ProbeMin, t.ProbeMax)
	}
	return nil
}

// DefendPolicy is what a bound host does about a conflicting ARP packet
// (RFC 5227 §2.4). The zero value is DefendOnce, the RFC's default.
type DefendPolicy uint8

// Defence policies.
const (
	// DefendOnce defends once per DEFEND_INTERVAL and gives the address up
	// on a second conflict within it (RFC 5227 §2.4 (b), RFC 3927 §2.5).
	DefendOnce DefendPolicy = iota
	// Abandon gives the address up at the first conflict (RFC 5227 §2.4
	// (a); QNX "abandon", autoipd -d).
	Abandon
	// DefendForever never gives the address up, and sends at most one
	// defensive announcement per DEFEND_INTERVAL (RFC 5227 §2.4 (c)). It is
	// meant for configured, non-link-local addresses checked with a
	// Detector; RFC 3927 §2.5 does not allow it for link-local addresses.
	DefendForever
)

// String returns the policy's name as used in flags: "once", "abandon",
// "forever".
func (p DefendPolicy) String() string {
	switch p {
	case DefendOnce:
		return "once"
	case Abandon:
		return "abandon"
	case DefendForever:
		return "forever"
	}
	return "policy(" + itoa(int(p)) + ")"
}

// ParseDefendPolicy parses "once", "abandon" or "forever".
func ParseDefendPolicy(s string) (DefendPolicy, error) {
	switch s {
	case "once":
		return DefendOnce, nil
	case "abandon":
		return Abandon, nil
	case "forever":
		return DefendForever, nil
	}
	return 0, fmt.Errorf("defend policy %q: want once, abandon or forever", s)
}
