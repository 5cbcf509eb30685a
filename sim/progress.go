package sim

import (
	"fmt"
	"time"
)

// progressState paces the progress line.
type progressState struct {
	begin, last time.Time
	printed     bool
}

func (p *progressState) start(now time.Time) {
	if p.begin.IsZero() {
		p.begin = now
	}
	p.last = now
}

func (s *Sim) maybeProgress(final bool) {
	now := time.Now()
	p := &s.progress
	if final && !p.printed && now.Sub(p.begin) < s.cfg.ProgressEvery || !final && now.Sub(p.last) < s.cfg.ProgressEvery {
		return // short runs print nothing
	}
	p.last, p.printed = now, true
	wall := now.Sub(p.begin)
	ratio := 0.0
	if wall > 0 {
		ratio = float64(s.now()) / float64(wall)
	}
	var frames uint64
	for _, n := range s.ctr.frames {
		frames += n
	}
	fmt.Fprintf(s.cfg.Progress, "sim: t=%.3fs booted %d/%d bound %d frames %d conflicts %d wall %.1fs (sim/wall %.2f)\n",
		float64(s.now())/1e9, s.boots, len(s.hosts), s.bound, frames, s.ctr.conflicts, wall.Seconds(), ratio)
}
