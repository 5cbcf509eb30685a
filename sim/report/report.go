// Package report summarises a finished simulation (package sim): the
// report (text and JSON), the SVG timeline of the run and the wall-clock
// and memory figures. It reads the simulation and changes nothing, so the
// same run always gives the same report and picture.
package report

import (
	"net/netip"
	"slices"

	"github.com/autoip-project/autoip/sim"
)

// Report summarises a run. Everything in it except Perf is a function of
// the configuration and the seed, so the JSON encoding of a report is
// byte-identical across runs of the same scenario.
type Report struct {
	Name     string `json:"name,omitempty"`
	Seed     uint64 `json:"seed"`
	Filtered bool   `json:"filtered"`
	// Hosts counts AutoIP hosts, Statics static incumbents.
	Hosts   int `json:"hosts"`
	Statics int `json:"statics"`
	Actors  int `json:"actors"`
	// SimTimeMS is the virtual time at the end of the run; Quiet says
	// whether the run ended because nothing was pending.
	SimTimeMS float64 `json:"sim_time_ms"`
	Quiet     bool    `json:"quiet"`
	// Bound counts AutoIP hosts holding an address at the end, Unique the
	// distinct addresses held (statics included), Shared the addresses
	// held by more than one host of a partition.
	Bound  int      `json:"bound"`
	Unique int      `json:"unique"`
	Shared []string `json:"shared,omitempty"`
	// TimeToBind is over every boot (incarnation) that bound: first BIND
	// minus boot time.
	TimeToBind     Percentiles `json:"time_to_bind"`
	Attempts       uint64      `json:"attempts"`
	Conflicts      uint64      `json:"conflicts"`
	BoundConflicts uint64      `json:"bound_conflicts"`
	Defences       uint64      `json:"defences"`
	RateLimits     uint64      `json:"rate_limits"`
	// DHCP: leases configured, lost, and offers declined (in use).
	Leases     uint64          `json:"dhcp_leases,omitempty"`
	LeasesLost uint64          `json:"dhcp_leases_lost,omitempty"`
	Declines   uint64          `json:"dhcp_declines,omitempty"`
	Frames     FrameTotals     `json:"frames"`
	Delivery   Delivery        `json:"delivery"`
	Violations []sim.Violation `json:"violations"`
	// HostDetail has one entry per host when requested.
	HostDetail []HostReport `json:"host_detail,omitempty"`
	// Perf holds wall-clock and memory figures when requested; it is the
	// only part that differs between identical runs.
	Perf *Perf `json:"perf,omitempty"`
}

// Percentiles summarises a distribution of durations (nearest rank).
type Percentiles struct {
	N     int     `json:"n"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// FrameTotals counts the frames put on the segment, by kind. Defence
// counts the announcements among them that were defences.
type FrameTotals struct {
	Total        uint64 `json:"total"`
	Probe        uint64 `json:"probe"`
	Announcement uint64 `json:"announcement"`
	Defence      uint64 `json:"defence"`
	Request      uint64 `json:"request"`
	Reply        uint64 `json:"reply"`
	Malformed    uint64 `json:"malformed"`
	NotARP       uint64 `json:"not_arp"`
}

// Delivery counts what the segment did with the frames. Deliveries and Lost
// count deliveries to hosts and actors, so they depend on filtering
// (fewer deliveries is what the filter saves); nothing else does.
type Delivery struct {
	Deliveries    uint64 `json:"deliveries"`
	Lost          uint64 `json:"lost"`
	Duplicated    uint64 `json:"duplicated"`
	Reordered     uint64 `json:"reordered"`
	Echoed        uint64 `json:"echoed"`
	TxLinkDown    uint64 `json:"tx_link_down"`
	QueueFull     uint64 `json:"queue_full"`
	NoBufferSpace uint64 `json:"no_buffer_space"`
}

// HostReport is one host at the end of the run.
type HostReport struct {
	Index  int    `json:"index"`
	Kind   string `json:"kind"` // "autoip" or "static"
	MAC    string `json:"mac"`
	State  string `json:"state"`
	Addr   string `json:"addr,omitempty"`
	Group  int    `json:"partition,omitempty"`
	LinkUp bool   `json:"link_up"`
	// BoundAddrs lists every address the host bound, in order.
	BoundAddrs []string `json:"bound_addrs,omitempty"`
	Boots      int      `json:"boots"`
	Attempts   int      `json:"attempts"`
	Conflicts  int      `json:"conflicts"`
	Defences   int      `json:"defences"`
	RateLimits int      `json:"rate_limits"`
	// FirstBindMS is the time from the last boot to its first bind, if any.
	FirstBindMS *float64 `json:"first_bind_ms,omitempty"`
}

// Options selects optional parts of a report.
type Options struct {
	// HostDetail adds one entry per host.
	HostDetail bool
	// Check selects the optional invariants.
	Check sim.CheckOptions
}

// Build summarises the run so far and checks the invariants.
func Build(s *sim.Sim, opts Options) *Report {
	cfg, tot := s.Config(), s.Totals()
	r := &Report{
		Name: cfg.Name, Seed: cfg.Seed, Filtered: !cfg.Unfiltered,
		Actors: s.NumActors(), SimTimeMS: msOf(int64(s.Now())), Quiet: s.Quiet(),
		Attempts: tot.Attempts, Conflicts: tot.Conflicts, BoundConflicts: tot.BoundConflicts,
		Defences: tot.Defences, RateLimits: tot.RateLimits,
		Leases: tot.Leases, LeasesLost: tot.LeasesLost, Declines: tot.Declines,
	}
	hosts := make([]sim.HostStatus, s.NumHosts())
	for i := range hosts {
		hosts[i], _ = s.Host(i) // in range
		if hosts[i].Static {
			r.Statics++
		} else {
			r.Hosts++
		}
	}
	f := &tot.Frames
	r.Frames = FrameTotals{Probe: f[sim.FrameProbe], Announcement: f[sim.FrameAnnouncement], Defence: tot.DefenceFrames,
		Request: f[sim.FrameRequest], Reply: f[sim.FrameReply], Malformed: f[sim.FrameMalformed], NotARP: f[sim.FrameNotARP]}
	for _, n := range f {
		r.Frames.Total += n
	}
	d := tot.Segment
	r.Delivery = Delivery{Deliveries: d.Deliveries, Lost: d.Lost, Duplicated: d.Duplicated,
		Reordered: d.Reordered, Echoed: d.Echoed, TxLinkDown: d.TxLinkDown, QueueFull: d.QueueFull,
		NoBufferSpace: tot.NoBufferSpace}

	// Final holdings.
	type key struct {
		g int
		a netip.Addr
	}
	count := make(map[key]int)
	unique := make(map[netip.Addr]bool)
	for _, h := range hosts {
		a := h.Holding()
		if !a.IsValid() {
			continue
		}
		if !h.Static {
			r.Bound++
		}
		count[key{h.Group, a}]++
		unique[a] = true
	}
	r.Unique = len(unique)
	var shared []netip.Addr
	for k, n := range count {
		if n > 1 {
			shared = append(shared, k.a)
		}
	}
	slices.SortFunc(shared, netip.Addr.Compare)
	for _, a := range shared {
		r.Shared = append(r.Shared, a.String())
	}

	// Per-host histories.
	evBy := eventsByHost(s)
	var ttb []int64
	if opts.HostDetail {
		r.HostDetail = make([]HostReport, len(hosts))
	}
	for i, h := range hosts {
		var boot int64
		bootBound := false
		hr := HostReport{Index: i, Kind: "autoip", MAC: h.MAC.String(), Group: h.Group, LinkUp: h.LinkUp}
		var firstBind *float64
		for _, e := range evBy[i] {
			at := int64(e.At)
			switch e.Kind {
			case sim.EventStart:
				boot, bootBound = at, false
				hr.Boots++
				firstBind = nil
			case sim.EventBind:
				hr.BoundAddrs = append(hr.BoundAddrs, e.Addr.String())
				if !bootBound {
					bootBound = true
					ttb = append(ttb, at-boot)
					v := msOf(at - boot)
					firstBind = &v
				}
			case sim.EventProbe:
				hr.Attempts++
			case sim.EventConflict:
				hr.Conflicts++
			case sim.EventDefend:
				hr.Defences++
			case sim.EventRateLimit:
				hr.RateLimits++
			}
		}
		if !opts.HostDetail {
			continue
		}
		hr.FirstBindMS = firstBind
		switch {
		case h.Static:
			hr.Kind, hr.State = "static", "static"
			if !h.Booted {
				hr.State = "off"
			}
		case h.Booted:
			hr.State = h.Client.State.String()
		default:
			hr.State = "off"
		}
		if a := h.Holding(); a.IsValid() {
			hr.Addr = a.String()
		}
		r.HostDetail[i] = hr
	}
	r.TimeToBind = percentiles(ttb)
	r.Violations = s.Check(opts.Check)
	if r.Violations == nil {
		r.Violations = []sim.Violation{}
	}
	return r
}

// eventsByHost splits the run's events per host, keeping their order.
func eventsByHost(s *sim.Sim) [][]sim.Event {
	out := make([][]sim.Event, s.NumHosts())
	for _, e := range s.Events() {
		out[e.Host] = append(out[e.Host], e)
	}
	return out
}

func msOf(ns int64) float64 { return float64(ns) / 1e6 }

func percentiles(v []int64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	slices.Sort(v)
	rank := func(p float64) int64 {
		i := int(p*float64(len(v))+0.999999999) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return Percentiles{N: len(v), P50MS: msOf(rank(0.50)), P99MS: msOf(rank(0.99)), MaxMS: msOf(v[len(v)-1])}
}
