package stack

import (
	"bytes"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// goid returns the current goroutine's ID, parsed from its stack header.
func goid() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, err := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	if err != nil {
		panic(err)
	}
	return id
}

// recorder collects the names of fired timers and the times they saw.
type recorder struct {
	clk *DetClock
	got []string
}

func (r *recorder) fn(name string) func() {
	return func() { r.got = append(r.got, name+"@"+r.clk.Now().Sub(t0).String()) }
}

func TestDetClockOrdersByDeadlineThenCreation(t *testing.T) {
	clk := NewDetClock(t0)
	r := &recorder{clk: clk}
	clk.AfterFunc(2*time.Second, r.fn("a"))
	clk.AfterFunc(time.Second, r.fn("b"))
	clk.AfterFunc(time.Second, r.fn("c"))
	clk.AfterFunc(0, r.fn("d"))
	clk.AfterFunc(-time.Second, r.fn("e")) // negative: like zero
	clk.AfterFunc(time.Second, r.fn("f"))
	clk.AfterFunc(2*time.Second, r.fn("g"))
	if n := clk.Pending(); n != 7 {
		t.Fatalf("Pending() = %d, want 7", n)
	}
	clk.RunUntil(t0.Add(3 * time.Second))
	want := []string{"d@0s", "e@0s", "b@1s", "c@1s", "f@1s", "a@2s", "g@2s"}
	if !slices.Equal(r.got, want) {
		t.Errorf("fired %v, want %v", r.got, want)
	}
	if got := clk.Now(); !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("Now() = %v after RunUntil, want t0+3s", got.Sub(t0))
	}
}

func TestDetClockManyTimersSameInstantKeepCreationOrder(t *testing.T) {
	// A heap is not stable by itself; the creation sequence makes it so.
	clk := NewDetClock(t0)
	var got []int
	for i := range 500 {
		clk.AfterFunc(time.Duration(i%3)*time.Millisecond, func() { got = append(got, i) })
	}
	clk.Advance(time.Second)
	var want []int
	for m := range 3 {
		for i := range 500 {
			if i%3 == m {
				want = append(want, i)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("order %v..., want %v...", got[:10], want[:10])
	}
}

func TestDetClockZeroDelayIsQueuedNotSpawned(t *testing.T) {
	clk := NewDetClock(t0)
	me := goid()
	ran, ranOn := false, 0
	clk.AfterFunc(0, func() { ran, ranOn = true, goid() })
	if ran {
		t.Fatal("AfterFunc(0) ran its function before returning")
	}
	if clk.Pending() != 1 {
		t.Fatalf("Pending() = %d, want 1", clk.Pending())
	}
	if next, ok := clk.Next(); !ok || !next.Equal(t0) {
		t.Fatalf("Next() = %v, %v; want t0, true", next, ok)
	}
	runtime.Gosched()
	if ran {
		t.Fatal("a zero-delay timer ran on its own")
	}
	if !clk.RunOneDue() || !ran {
		t.Fatal("RunOneDue did not run the zero-delay timer")
	}
	if ranOn != me {
		t.Errorf("timer ran on goroutine %d, want the caller's (%d)", ranOn, me)
	}
	if clk.RunOneDue() {
		t.Error("RunOneDue ran a second timer")
	}
}

func TestDetClockZeroDelayRunsAfterTimersAlreadyDue(t *testing.T) {
	clk := NewDetClock(t0)
	r := &recorder{clk: clk}
	clk.AfterFunc(3*time.Second, r.fn("late"))
	clk.AfterFunc(time.Second, r.fn("early"))
	clk.AdvanceTo(t0.Add(5 * time.Second)) // moves time, runs nothing
	if len(r.got) != 0 {
		t.Fatalf("AdvanceTo ran timers: %v", r.got)
	}
	clk.AfterFunc(0, r.fn("now"))
	for clk.RunOneDue() {
	}
	// Overdue timers run late, at the current time, in deadline order.
	want := []string{"early@5s", "late@5s", "now@5s"}
	if !slices.Equal(r.got, want) {
		t.Errorf("fired %v, want %v", r.got, want)
	}
}

func TestDetClockStop(t *testing.T) {
	clk := NewDetClock(t0)
	r := &recorder{clk: clk}
	a := clk.AfterFunc(time.Second, r.fn("a"))
	b := clk.AfterFunc(time.Second, r.fn("b"))
	c := clk.AfterFunc(2*time.Second, r.fn("c"))
	if !b.Stop() {
		t.Error("Stop of a pending timer returned false")
	}
	if b.Stop() {
		t.Error("second Stop returned true")
	}
	if clk.Pending() != 2 {
		t.Errorf("Pending() = %d after Stop, want 2", clk.Pending())
	}
	// A timer stopped by another timer due at the same instant never runs.
	var d tcpip.Timer
	clk.AfterFunc(time.Second, func() {
		if !d.Stop() {
			t.Error("Stop of a timer due at the same instant returned false")
		}
	})
	d = clk.AfterFunc(time.Second, r.fn("d"))
	clk.RunUntil(t0.Add(time.Second))
	if a.Stop() {
		t.Error("Stop of a fired timer returned true")
	}
	if !c.Stop() {
		t.Error("Stop of the still pending timer returned false")
	}
	clk.Advance(time.Hour)
	if want := []string{"a@1s"}; !slices.Equal(r.got, want) {
		t.Errorf("fired %v, want %v", r.got, want)
	}
	if clk.Pending() != 0 {
		t.Errorf("Pending() = %d, want 0", clk.Pending())
	}
}

func TestDetClockReset(t *testing.T) {
	t.Run("pending timer moves", func(t *testing.T) {
		clk := NewDetClock(t0)
		r := &recorder{clk: clk}
		a := clk.AfterFunc(time.Second, r.fn("a"))
		clk.AfterFunc(3*time.Second, r.fn("b"))
		a.Reset(5 * time.Second)
		if clk.Pending() != 2 {
			t.Fatalf("Pending() = %d after Reset, want 2 (no duplicate)", clk.Pending())
		}
		clk.Advance(10 * time.Second)
		if want := []string{"b@3s", "a@5s"}; !slices.Equal(r.got, want) {
			t.Errorf("fired %v, want %v", r.got, want)
		}
	})
	t.Run("reset counts from now and queues behind equal deadlines", func(t *testing.T) {
		clk := NewDetClock(t0)
		r := &recorder{clk: clk}
		a := clk.AfterFunc(time.Second, r.fn("a"))
		clk.AdvanceTo(t0.Add(time.Second / 2))
		clk.AfterFunc(2*time.Second, r.fn("b")) // due at 2.5s
		a.Reset(2 * time.Second)                // due at 2.5s too, created later
		clk.Advance(10 * time.Second)
		if want := []string{"b@2.5s", "a@2.5s"}; !slices.Equal(r.got, want) {
			t.Errorf("fired %v, want %v", r.got, want)
		}
	})
	t.Run("fired timer fires again", func(t *testing.T) {
		clk := NewDetClock(t0)
		r := &recorder{clk: clk}
		a := clk.AfterFunc(time.Second, r.fn("a"))
		clk.Advance(2 * time.Second)
		a.Reset(time.Second)
		clk.Advance(2 * time.Second)
		if want := []string{"a@1s", "a@3s"}; !slices.Equal(r.got, want) {
			t.Errorf("fired %v, want %v", r.got, want)
		}
	})
	t.Run("stopped timer restarts", func(t *testing.T) {
		clk := NewDetClock(t0)
		r := &recorder{clk: clk}
		a := clk.AfterFunc(time.Second, r.fn("a"))
		a.Stop()
		a.Reset(0)
		for clk.RunOneDue() {
		}
		if want := []string{"a@0s"}; !slices.Equal(r.got, want) {
			t.Errorf("fired %v, want %v", r.got, want)
		}
	})
	t.Run("timer resets itself", func(t *testing.T) {
		clk := NewDetClock(t0)
		r := &recorder{clk: clk}
		var tm tcpip.Timer
		n := 0
		tm = clk.AfterFunc(time.Second, func() {
			r.fn("tick")()
			if n++; n < 3 {
				tm.Reset(time.Second)
			}
		})
		clk.Advance(time.Minute)
		if want := []string{"tick@1s", "tick@2s", "tick@3s"}; !slices.Equal(r.got, want) {
			t.Errorf("fired %v, want %v", r.got, want)
		}
	})
}

func TestDetClockRunUntil(t *testing.T) {
	clk := NewDetClock(t0)
	r := &recorder{clk: clk}
	clk.AfterFunc(time.Second, func() {
		r.fn("a")()
		clk.AfterFunc(time.Second, r.fn("a+1s")) // 2s: before the limit, runs
		clk.AfterFunc(0, r.fn("a+0"))            // now: runs
		clk.AfterFunc(5*time.Second, r.fn("a+5s"))
	})
	clk.AfterFunc(3*time.Second, r.fn("at-limit"))
	clk.AfterFunc(3*time.Second+1, r.fn("after-limit"))
	clk.RunUntil(t0.Add(3 * time.Second))
	want := []string{"a@1s", "a+0@1s", "a+1s@2s", "at-limit@3s"}
	if !slices.Equal(r.got, want) {
		t.Errorf("fired %v, want %v", r.got, want)
	}
	if got := clk.Now().Sub(t0); got != 3*time.Second {
		t.Errorf("clock at %v, want 3s", got)
	}
	if clk.Pending() != 2 {
		t.Errorf("Pending() = %d, want 2", clk.Pending())
	}
	// RunUntil never moves the clock backwards.
	clk.RunUntil(t0)
	if got := clk.Now().Sub(t0); got != 3*time.Second {
		t.Errorf("RunUntil(past) moved the clock to %v", got)
	}
	clk.AdvanceTo(t0.Add(time.Second))
	if got := clk.Now().Sub(t0); got != 3*time.Second {
		t.Errorf("AdvanceTo(past) moved the clock to %v", got)
	}
	// With nothing pending, RunUntil just moves time.
	clk.RunUntil(t0.Add(time.Hour))
	if clk.Pending() != 0 || clk.Now().Sub(t0) != time.Hour {
		t.Errorf("Pending() = %d, clock at %v; want 0, 1h", clk.Pending(), clk.Now().Sub(t0))
	}
	if _, ok := clk.Next(); ok {
		t.Error("Next() reports a timer on an empty clock")
	}
}

func TestDetClockNowMonotonic(t *testing.T) {
	clk := NewDetClock(t0)
	m0 := clk.NowMonotonic()
	if m0 != (tcpip.MonotonicTime{}) {
		t.Errorf("NowMonotonic() at start = %v, want the zero MonotonicTime", m0)
	}
	clk.Advance(1500 * time.Millisecond)
	m1 := clk.NowMonotonic()
	if d := m1.Sub(m0); d != 1500*time.Millisecond {
		t.Errorf("monotonic time moved %v, want 1.5s", d)
	}
	if !m0.Before(m1) || !m1.After(m0) {
		t.Error("monotonic times are not ordered")
	}
	// Monotonic time follows the clock, whatever the wall start.
	other := NewDetClock(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC))
	other.Advance(1500 * time.Millisecond)
	if other.NowMonotonic() != m1 {
		t.Errorf("monotonic time depends on the start: %v vs %v", other.NowMonotonic(), m1)
	}
	if got := clk.Now(); !got.Equal(t0.Add(1500 * time.Millisecond)) {
		t.Errorf("Now() = %v", got)
	}
}

// TestDetClockConcurrentUse: timers may be armed and stopped from other
// goroutines (netstack does) while one goroutine drives the clock.
func TestDetClockConcurrentUse(t *testing.T) {
	clk := NewDetClock(t0)
	var mu sync.Mutex
	fired := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				tm := clk.AfterFunc(time.Duration(i+g)*time.Millisecond, func() {
					mu.Lock()
					fired++
					mu.Unlock()
				})
				if i%2 == 1 {
					tm.Stop()
				}
				_ = clk.Now()
				_ = clk.NowMonotonic()
			}
		}()
	}
	wg.Wait()
	clk.Advance(time.Second)
	if fired != 8*50 {
		t.Errorf("%d timers fired, want %d", fired, 8*50)
	}
}

// TestDetClockNextSkipsStoppedAndMovedTimers: Next reports the deadline of
// a pending timer, never that of a stopped one or of an earlier arming of a
// timer that was reset (the queue drops those lazily).
func TestDetClockNextSkipsStoppedAndMovedTimers(t *testing.T) {
	clk := NewDetClock(t0)
	a := clk.AfterFunc(time.Second, func() {})
	b := clk.AfterFunc(2*time.Second, func() {})
	clk.AfterFunc(5*time.Second, func() {})
	a.Stop()
	b.Reset(4 * time.Second)
	b.Reset(3 * time.Second)
	if next, ok := clk.Next(); !ok || !next.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Next() = %v, %v; want t0+3s (b's last arming)", next.Sub(t0), ok)
	}
	if clk.Pending() != 2 {
		t.Errorf("Pending() = %d, want 2", clk.Pending())
	}
	ran := 0
	clk.AdvanceTo(t0.Add(4 * time.Second))
	for clk.RunOneDue() {
		ran++
	}
	if ran != 1 {
		t.Errorf("%d timers ran by t0+4s, want 1 (b once, at 3s)", ran)
	}
}
