package stack

import (
	"container/heap"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
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
	now   time.Time
	seq   uint64
	q     timerQueue
}

var _ tcpip.Clock = (*DetClock)(nil)

// NewDetClock returns a clock reading start.
func NewDetClock(start time.Time) *DetClock {
	return &DetClock{start: start, now: start}
}

// Now implements tcpip.Clock.
func (c *DetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NowMonotonic implements tcpip.Clock: the time since the clock's start.
func (c *DetClock) NowMonotonic() tcpip.MonotonicTime {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tcpip.MonotonicTime{}.Add(c.now.Sub(c.start))
}

// AfterFunc implements tcpip.Clock. A delay of zero or less queues f to run
// at the current time, after the timers already due.
func (c *DetClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	t := &detTimer{c: c, f: f, index: -1}
	c.mu.Lock()
	c.schedule(t, d)
	c.mu.Unlock()
	return t
}

func (c *DetClock) schedule(t *detTimer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.seq++
	t.when, t.seq = c.now.Add(d), c.seq
	heap.Push(&c.q, t)
}

// Next returns the deadline of the earliest pending timer.
func (c *DetClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) == 0 {
		return time.Time{}, false
	}
	return c.q[0].when, true
}

// Pending returns the number of pending timers.
func (c *DetClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q)
}

// RunOneDue runs the earliest timer due at the current time, if any, and
// reports whether it ran one.
func (c *DetClock) RunOneDue() bool {
	c.mu.Lock()
	if len(c.q) == 0 || c.q[0].when.After(c.now) {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.q).(*detTimer)
	c.mu.Unlock()
	t.f()
	return true
}

// AdvanceTo moves the clock to t without running timers. It never moves
// backwards.
func (c *DetClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
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
	c     *DetClock
	f     func()
	when  time.Time
	seq   uint64
	index int // position in the heap, -1 when not pending
}

// Stop implements tcpip.Timer.
func (t *detTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.q, t.index)
	return true
}

// Reset implements tcpip.Timer.
func (t *detTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index >= 0 {
		heap.Remove(&t.c.q, t.index)
	}
	t.c.schedule(t, d)
}

type timerQueue []*detTimer

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	if !q[i].when.Equal(q[j].when) {
		return q[i].when.Before(q[j].when)
	}
	return q[i].seq < q[j].seq
}
func (q timerQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *timerQueue) Push(x any) {
	t := x.(*detTimer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *timerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
