package stack

import (
	"math"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/internal/eventq"
)

// DetClock is a deterministic tcpip.Clock for tests and simulations. Time
// moves only when the owner advances it; timers fire only inside RunOneDue,
// on the caller's goroutine, in (deadline, creation order). gVisor's
// faketime.ManualClock is not deterministic: zero-delay timers run on new
// goroutines and timers due at the same instant fire in map order.
//
// DetClock is safe for concurrent use, but determinism needs one goroutine
// to drive it.
type DetClock struct {
	mu    sync.Mutex
	start time.Time
	now   int64 // ns since start
	live  int   // pending timers
	q     eventq.Queue[*detTimer]
}

var _ tcpip.Clock = (*DetClock)(nil)

// NewDetClock returns a clock reading start.
func NewDetClock(start time.Time) *DetClock {
	return &DetClock{start: start}
}

// Now implements tcpip.Clock.
func (c *DetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Duration(c.now))
}

// NowMonotonic implements tcpip.Clock: the time since the clock's start.
func (c *DetClock) NowMonotonic() tcpip.MonotonicTime {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tcpip.MonotonicTime{}.Add(time.Duration(c.now))
}

// AfterFunc implements tcpip.Clock. A delay of zero or less queues f to run
// at the current time, after the timers already due.
func (c *DetClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	t := &detTimer{c: c, f: f}
	c.mu.Lock()
	c.schedule(t, d)
	c.mu.Unlock()
	return t
}

// schedule (re)arms t d from now. A timer is in the queue once per arming;
// entries of earlier armings are stale and skipped (see eventq).
func (c *DetClock) schedule(t *detTimer, d time.Duration) {
	at := c.now
	switch {
	case d <= 0:
	case int64(d) > math.MaxInt64-at:
		at = math.MaxInt64
	default:
		at += int64(d)
	}
	if !t.pending {
		t.pending = true
		c.live++
	}
	t.seq = c.q.Push(at, t)
}

// dropStale removes stale entries from the front of the queue, so that its
// minimum is a pending timer.
func (c *DetClock) dropStale() {
	for {
		it, ok := c.q.Min()
		if !ok || it.Value.live(it.Seq) {
			return
		}
		c.q.Pop()
	}
}

// Next returns the deadline of the earliest pending timer.
func (c *DetClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropStale()
	it, ok := c.q.Min()
	if !ok {
		return time.Time{}, false
	}
	return c.start.Add(time.Duration(it.At)), true
}

// Pending returns the number of pending timers.
func (c *DetClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// RunOneDue runs the earliest timer due at the current time, if any, and
// reports whether it ran one.
func (c *DetClock) RunOneDue() bool {
	c.mu.Lock()
	c.dropStale()
	it, ok := c.q.Min()
	if !ok || it.At > c.now {
		c.mu.Unlock()
		return false
	}
	c.q.Pop()
	t := it.Value
	t.pending = false
	c.live--
	c.mu.Unlock()
	t.f()
	return true
}

// AdvanceTo moves the clock to t without running timers. It never moves
// backwards.
func (c *DetClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := int64(t.Sub(c.start)); d > c.now {
		c.now = d
	}
}

// RunUntil runs every timer due up to and including t, in order, advancing
// the clock to each deadline, and leaves the clock at t. Timers that
// callbacks schedule are honoured if they fall before t.
func (c *DetClock) RunUntil(t time.Time) {
	for {
		for c.RunOneDue() {
		}
		next, ok := c.Next()
		if !ok || next.After(t) {
			break
		}
		c.AdvanceTo(next)
	}
	c.AdvanceTo(t)
}

// Advance is RunUntil(Now()+d).
func (c *DetClock) Advance(d time.Duration) { c.RunUntil(c.Now().Add(d)) }

type detTimer struct {
	c       *DetClock
	f       func()
	seq     uint64 // queue sequence of the current arming
	pending bool
}

// live reports whether the queue entry with sequence seq is t's current
// arming.
func (t *detTimer) live(seq uint64) bool { return t.pending && t.seq == seq }

// Stop implements tcpip.Timer.
func (t *detTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if !t.pending {
		return false
	}
	t.pending = false
	t.c.live--
	return true
}

// Reset implements tcpip.Timer.
func (t *detTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.schedule(t, d)
}
