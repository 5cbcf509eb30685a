package autoip

import (
	"fmt"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// QNXOptions holds the timing knobs of QNX lsm-autoip.so and autoipd. Its
// Timing method is the one documented mapping onto the RFC constants.
type QNXOptions struct {
	// DelayMS is lsm-autoip's delay= option: "the delay before packets are
	// transmitted; affects PROBE packets only", 1..8000 ms, default 2000.
	// It scales the probe timers and keeps the RFC's ratios between them:
	// PROBE_MAX = delay, PROBE_MIN = delay/2, PROBE_WAIT = delay/2. The
	// default therefore gives exactly the RFC's 1 s, 1-2 s; delay=200
	// spaces probes 100-200 ms apart, as the manual's example means.
	DelayMS int
	// Probes is autoipd -p, PROBE_NUM: 1..MaxQNXCount, default 3.
	Probes int
	// Announces is autoipd -a, ANNOUNCE_NUM: 1..MaxQNXCount, default 2.
	Announces int
	// WaitSeconds is autoipd -w: ANNOUNCE_WAIT and ANNOUNCE_INTERVAL, in
	// whole seconds, 1..MaxQNXWaitSeconds, default 2.
	WaitSeconds int
	// LinkUpSeconds is autoipd -t: seconds to wait after the link comes up
	// before starting, 0..MaxQNXLinkUpSeconds, default 0.
	LinkUpSeconds int
}

// Ranges of QNXOptions. QNX documents only delay's; the others are ours.
const (
	MinQNXDelayMS       = 1
	MaxQNXDelayMS       = 8000
	MaxQNXCount         = 100
	MaxQNXWaitSeconds   = 60
	MaxQNXLinkUpSeconds = 3600
)

// DefaultQNXOptions returns the documented defaults.
func DefaultQNXOptions() QNXOptions {
	return QNXOptions{DelayMS: 2000, Probes: 3, Announces: 2, WaitSeconds: 2}
}

// Timing validates o and maps it onto the RFC constants (the ones o does
// not touch keep their RFC values) and the link-up delay. Errors name the
// option, its value and the accepted range.
func (o QNXOptions) Timing() (acd.Timing, time.Duration, error) {
	checks := []struct {
		name    string
		v, l, h int
		unit    string
	}{
		{"delay", o.DelayMS, MinQNXDelayMS, MaxQNXDelayMS, " ms"},
		{"-p (probes)", o.Probes, 1, MaxQNXCount, ""},
		{"-a (announcements)", o.Announces, 1, MaxQNXCount, ""},
		{"-w (announce wait)", o.WaitSeconds, 1, MaxQNXWaitSeconds, " s"},
		{"-t (link-up timeout)", o.LinkUpSeconds, 0, MaxQNXLinkUpSeconds, " s"},
	}
	for _, c := range checks {
		if c.v < c.l || c.v > c.h {
			return acd.Timing{}, 0, fmt.Errorf("%w: %s %d%s is out of range %d..%d%s", ErrInvalidConfig, c.name, c.v, c.unit, c.l, c.h, c.unit)
		}
	}
	t := acd.DefaultTiming()
	delay := time.Duration(o.DelayMS) * time.Millisecond
	t.ProbeMax = delay
	t.ProbeMin = delay / 2
	t.ProbeWait = delay / 2
	t.ProbeNum = o.Probes
	t.AnnounceNum = o.Announces
	t.AnnounceWait = time.Duration(o.WaitSeconds) * time.Second
	t.AnnounceInterval = t.AnnounceWait
	return t, time.Duration(o.LinkUpSeconds) * time.Second, nil
}
