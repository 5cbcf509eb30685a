package scenario

import (
	"fmt"
	"io"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
)

// Options are where a scenario run writes besides its report and how it
// runs: sim.Config's fields of the same names.
type Options struct {
	PCAP          io.Writer
	Trace         io.Writer
	TraceHosts    []int
	TraceFrames   sim.TraceFrames
	Progress      io.Writer
	ProgressEvery time.Duration
	FullStacks    bool
	// Start, if not zero, replaces sim.DefaultStart (a real-time run
	// starts now, so that its capture has real timestamps).
	Start time.Time
}

// Build creates the simulation a scenario describes, with its hosts,
// actors and events scheduled, ready to Run.
func (sc *Scenario) Build(out Options) (*sim.Sim, error) {
	p, err := sc.plan()
	if err != nil {
		return nil, err
	}
	cfg := p.cfg
	cfg.PCAP, cfg.Trace, cfg.TraceHosts, cfg.TraceFrames = out.PCAP, out.Trace, out.TraceHosts, out.TraceFrames
	cfg.Progress, cfg.ProgressEvery = out.Progress, out.ProgressEvery
	cfg.FullStacks = out.FullStacks
	if !out.Start.IsZero() {
		cfg.Start = out.Start
	}
	s, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, hc := range p.hosts {
		if _, err := s.AddHost(hc); err != nil {
			return nil, err
		}
	}
	for _, ac := range p.actors {
		if _, err := s.AddActor(ac); err != nil {
			return nil, err
		}
	}
	for _, ev := range sc.Events {
		if err := schedule(s, ev); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// schedule turns an EventSpec into operations.
func schedule(s *sim.Sim, ev EventSpec) error {
	at := time.Duration(ev.At)
	hosts := ev.Hosts
	if ev.All {
		hosts = make([]int, s.NumHosts())
		for i := range hosts {
			hosts[i] = i
		}
	}
	each := func(t time.Duration, f func(int) error) error {
		return s.At(t, func() error {
			for _, h := range hosts {
				if err := f(h); err != nil {
					return err
				}
			}
			return nil
		})
	}
	down := func(i int) error { return s.SetLink(i, false) }
	up := func(i int) error { return s.SetLink(i, true) }
	flapFor := time.Duration(ev.For)
	if flapFor == 0 {
		flapFor = time.Second
	}
	switch ev.Op {
	case "link-down":
		return each(at, down)
	case "link-up":
		return each(at, up)
	case "flap":
		if err := each(at, down); err != nil {
			return err
		}
		return each(at+flapFor, up)
	case "reannounce":
		return each(at, s.Reannounce)
	case "restart":
		var mac acd.MAC
		if ev.MAC != "" {
			mac, _ = acd.ParseMAC(ev.MAC) // validated
		}
		return each(at, func(i int) error { return s.Restart(i, mac, !ev.FreshState) })
	case "move":
		if err := each(at, func(i int) error {
			if err := s.SetLink(i, false); err != nil {
				return err
			}
			return s.Move(i, ev.Partition)
		}); err != nil {
			return err
		}
		return each(at+flapFor, up)
	case "partition":
		return s.At(at, func() error { return s.Partition(ev.Groups) })
	case "merge":
		return s.At(at, s.Merge)
	case "link":
		m := ev.Link.Model()
		return s.At(at, func() error { return s.SetLinkModel(m) })
	}
	return fmt.Errorf("scenario: schedule: unknown op %q", ev.Op)
}

// Run builds and runs sc, and returns the simulation (for the caller to
// inspect, draw and Close) and its report, with host detail.
func Run(sc *Scenario, out Options) (*sim.Sim, *report.Report, error) {
	s, err := sc.Build(out)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Run(); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	r := report.Build(s, report.Options{HostDetail: true, Check: sc.CheckOptions()})
	return s, r, nil
}

// CheckOptions are the optional invariants the scenario asks for: every
// live host bound, unless expect.bound says otherwise.
func (sc *Scenario) CheckOptions() sim.CheckOptions {
	return sim.CheckOptions{AllBound: sc.Expect.Bound == nil}
}
