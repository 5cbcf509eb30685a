package segment

import (
	"errors"
	"time"
)

// Step does everything due at the current virtual time: it puts the frames
// the ports wrote on the segment, runs the events due and then the clock's
// timers due, and reports whether it did anything. Frames that timers
// write are taken at the next Step.
func (s *Segment) Step() bool {
	progress := s.Pump()
	for s.err == nil && s.clk.RunOneDue() {
		progress = true
	}
	return progress
}

// Pump is Step without the clock's timers: it puts the frames the ports
// wrote on the segment and runs the events due, until there is nothing
// left of either, and reports whether it did anything. A caller that runs
// the timers itself (to look at the stacks after each) loops on Pump and
// the clock's RunOneDue.
func (s *Segment) Pump() bool {
	if s.closed {
		return false
	}
	s.sync()
	return s.pump()
}

// sync catches up with the clock if someone else moved it.
func (s *Segment) sync() {
	if d := int64(s.clk.Now().Sub(s.start)); d > s.now {
		s.now = d
	}
}

// Next returns the earliest time something is pending: a clock timer or a
// delivery or function scheduled on the segment, as virtual time since the
// start.
func (s *Segment) Next() (time.Duration, bool) {
	var next int64
	ok := false
	if t, has := s.clk.Next(); has {
		next, ok = int64(t.Sub(s.start)), true
	}
	if it, has := s.events.Min(); has && (!ok || it.At < next) {
		next, ok = it.At, true
	}
	return time.Duration(next), ok
}

// AdvanceTo moves virtual time, and the clock, forward to t since the
// start, without running anything. It never moves backwards.
func (s *Segment) AdvanceTo(t time.Duration) {
	if int64(t) <= s.now {
		return
	}
	s.now = int64(t)
	s.clk.AdvanceTo(s.start.Add(t))
}

// ErrBridged is returned by RunUntil on a segment with a Bridge: frames
// from outside come in real time, so such a segment runs in RunRealTime.
var ErrBridged = errors.New("segment: a bridged segment runs in real time (RunRealTime)")

// RunUntil runs the segment until nothing is pending (quiet is then true),
// until virtual time t since the start, or until a scheduled function
// fails, whichever comes first; it then writes out the capture. It returns
// the first error of a scheduled function or of the capture.
func (s *Segment) RunUntil(t time.Duration) (quiet bool, err error) {
	if s.closed {
		return false, errors.New("segment: run: segment closed")
	}
	if len(s.bridges) > 0 {
		return false, ErrBridged
	}
	for s.err == nil {
		if s.Step() || s.settle() {
			continue
		}
		next, ok := s.Next()
		if !ok {
			quiet = true
			break
		}
		if next > t {
			s.AdvanceTo(t)
			break
		}
		s.AdvanceTo(next)
	}
	return quiet, s.Flush()
}

// RunFor is RunUntil(Now()+d).
func (s *Segment) RunFor(d time.Duration) (quiet bool, err error) {
	return s.RunUntil(s.Now() + d)
}

// settle waits, with Config.Settle, for frames written by other goroutines
// before virtual time moves, and reports whether any came.
func (s *Segment) settle() bool {
	if s.cfg.Settle <= 0 {
		return false
	}
	timer := time.NewTimer(s.cfg.Settle)
	defer timer.Stop()
	for {
		s.mu.Lock()
		n := len(s.dirty)
		s.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-s.wake:
		case <-timer.C:
			s.mu.Lock()
			n = len(s.dirty)
			s.mu.Unlock()
			return n > 0
		}
	}
}
