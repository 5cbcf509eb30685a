package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/autoip-project/autoip/sim/segment"
)

// Bridge connects the simulated segment to dev, a real Ethernet frame
// device (a TAP that is a port of a Linux bridge): every frame of
// partition 0 goes out on it and every frame it brings in goes on the
// segment, so the hosts share an Ethernet segment with real ones. A
// bridged simulation runs in real time (RunRealTime). The caller closes
// dev after the simulation.
func (s *Sim) Bridge(dev segment.FrameDevice) error {
	if s.closed {
		return errors.New("sim: bridge: simulation closed")
	}
	if _, err := s.seg.Bridge(dev); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	s.bridged = true
	return nil
}

// RunRealTime runs the simulation with virtual time following the wall
// clock (see segment.RunRealTime) until the configured duration is
// reached, stop (called after every burst of work, if not nil) reports
// true, or ctx is done, in which case it returns ctx.Err() after writing
// the outputs out.
func (s *Sim) RunRealTime(ctx context.Context, stop func() bool) error {
	if s.closed {
		return errors.New("sim: run: simulation closed")
	}
	wall := time.Now()
	s.progress.start(wall)
	s.quiet = false
	end := s.cfg.Duration
	_ = s.seg.At(end, func() error { return nil }) // wakes the run at the end; in the past if already there
	err := s.seg.RunRealTime(ctx, func() bool {
		if s.cfg.Progress != nil {
			s.maybeProgress(false)
		}
		return s.err != nil || s.Now() >= end || stop != nil && stop()
	})
	s.runWall += time.Since(wall)
	if ferr := s.finishRun(); err == nil {
		err = ferr
	}
	return err
}

// AllBound reports whether every AutoIP host that is booted with its link
// up holds an address. It looks at every host: call it as often as a
// real-time run's stop function does, not per frame.
func (s *Sim) AllBound() bool {
	for _, h := range s.hosts {
		if h.cfg.Static.IsValid() || !h.booted || !h.port.Up() {
			continue
		}
		if !h.isBound {
			return false
		}
	}
	return true
}
