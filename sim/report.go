package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
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
	Frames         FrameTotals `json:"frames"`
	Delivery       Delivery    `json:"delivery"`
	Violations     []Violation `json:"violations"`
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

// Delivery counts what the hub did with the frames. Deliveries and Lost
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

// ReportOptions selects optional parts of a report.
type ReportOptions struct {
	// HostDetail adds one entry per host.
	HostDetail bool
	// Check selects the optional invariants.
	Check CheckOptions
}

// Report summarises the run so far and checks the invariants.
func (s *Sim) Report(opts ReportOptions) *Report {
	r := &Report{
		Name: s.cfg.Name, Seed: s.cfg.Seed, Filtered: !s.cfg.Unfiltered,
		Actors: len(s.actors), SimTimeMS: msOf(s.now), Quiet: s.quiet,
		Attempts: s.ctr.attempts, Conflicts: s.ctr.conflicts, BoundConflicts: s.ctr.boundConflicts,
		Defences: s.ctr.defences, RateLimits: s.ctr.rateLimits,
	}
	for _, h := range s.hosts {
		if h.cfg.Static.IsValid() {
			r.Statics++
		} else {
			r.Hosts++
		}
	}
	f := &s.ctr.frames
	r.Frames = FrameTotals{Probe: f[FrameProbe], Announcement: f[FrameAnnouncement], Defence: s.ctr.defenceFrames,
		Request: f[FrameRequest], Reply: f[FrameReply], Malformed: f[FrameMalformed], NotARP: f[FrameNotARP]}
	for _, n := range f {
		r.Frames.Total += n
	}
	r.Delivery = Delivery{Deliveries: s.ctr.deliveries, Lost: s.ctr.lost, Duplicated: s.ctr.duplicated,
		Reordered: s.ctr.reordered, Echoed: s.ctr.echoed, TxLinkDown: s.ctr.txLinkDown, QueueFull: s.ctr.queueFull,
		NoBufferSpace: s.noBufferDrops()}

	// Final holdings.
	type key struct {
		g int32
		a netip.Addr
	}
	count := make(map[key]int)
	unique := make(map[netip.Addr]bool)
	for _, h := range s.hosts {
		a := s.holding(h)
		if !a.IsValid() {
			continue
		}
		if !h.cfg.Static.IsValid() {
			r.Bound++
		}
		count[key{h.group, a}]++
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
	evBy, _ := s.byHost()
	var ttb []int64
	if opts.HostDetail {
		r.HostDetail = make([]HostReport, len(s.hosts))
	}
	for i, h := range s.hosts {
		var boot int64
		bootBound := false
		hr := HostReport{Index: i, Kind: "autoip", MAC: h.mac.String(), Group: int(h.group), LinkUp: h.linkUp}
		var firstBind *float64
		for _, e := range evBy[i] {
			switch e.kind {
			case recStart:
				boot, bootBound = e.at, false
				hr.Boots++
				firstBind = nil
			case recBind:
				hr.BoundAddrs = append(hr.BoundAddrs, netip.AddrFrom4(e.addr).String())
				if !bootBound {
					bootBound = true
					ttb = append(ttb, e.at-boot)
					v := msOf(e.at - boot)
					firstBind = &v
				}
			case recProbe:
				hr.Attempts++
			case recConflict:
				hr.Conflicts++
			case recDefend:
				hr.Defences++
			case recRateLimit:
				hr.RateLimits++
			}
		}
		if !opts.HostDetail {
			continue
		}
		hr.FirstBindMS = firstBind
		switch {
		case h.cfg.Static.IsValid():
			hr.Kind, hr.State = "static", "static"
			if !h.booted {
				hr.State = "off"
			}
		case h.client != nil:
			hr.State = h.client.Status().State.String()
		default:
			hr.State = "off"
		}
		if a := s.holding(h); a.IsValid() {
			hr.Addr = a.String()
		}
		r.HostDetail[i] = hr
	}
	r.TimeToBind = percentiles(ttb)
	r.Violations = s.Check(opts.Check)
	if r.Violations == nil {
		r.Violations = []Violation{}
	}
	return r
}

// holding returns the address h holds at the end, if any: its bound or
// static address, while booted with the link up.
func (s *Sim) holding(h *host) netip.Addr {
	if !h.booted || !h.linkUp {
		return netip.Addr{}
	}
	if h.client == nil {
		return h.cfg.Static
	}
	st := h.client.Status()
	if st.State.IsBound() {
		return st.Configured
	}
	return netip.Addr{}
}

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

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: encoding report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("sim: writing report: %w", err)
	}
	return nil
}

// WriteText writes r as a summary table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	name := r.Name
	if name == "" {
		name = "(flags)"
	}
	filt := "filtered delivery"
	if !r.Filtered {
		filt = "unfiltered delivery"
	}
	end := "quiet"
	if !r.Quiet {
		end = "duration reached"
	}
	p("scenario", "%s   seed %d   %s", name, r.Seed, filt)
	p("sim time", "%s (%s)", fmtMS(r.SimTimeMS), end)
	p("hosts", "%d autoip, %d static, %d actors", r.Hosts, r.Statics, r.Actors)
	p("bound", "%d/%d   unique addresses %d   shared %d%s", r.Bound, r.Hosts, r.Unique, len(r.Shared), strings.TrimRight(" "+strings.Join(r.Shared, " "), " "))
	p("time to bind", "p50 %s   p99 %s   max %s   (n=%d)", fmtMS(r.TimeToBind.P50MS), fmtMS(r.TimeToBind.P99MS), fmtMS(r.TimeToBind.MaxMS), r.TimeToBind.N)
	p("attempts", "%d", r.Attempts)
	p("conflicts", "%d (%d while bound)", r.Conflicts, r.BoundConflicts)
	p("defences", "%d", r.Defences)
	p("rate limits", "%d", r.RateLimits)
	fr := r.Frames
	p("frames", "%d: probe %d, announcement %d (defence %d), request %d, reply %d, malformed %d, not-arp %d",
		fr.Total, fr.Probe, fr.Announcement, fr.Defence, fr.Request, fr.Reply, fr.Malformed, fr.NotARP)
	d := r.Delivery
	p("delivery", "%d deliveries; lost %d, duplicated %d, reordered %d, echoed %d", d.Deliveries, d.Lost, d.Duplicated, d.Reordered, d.Echoed)
	p("link queues", "tx while link down %d, queue full %d, no-buffer drops %d", d.TxLinkDown, d.QueueFull, d.NoBufferSpace)
	if len(r.Violations) == 0 {
		p("invariants", "ok")
	} else {
		p("invariants", "%d violated", len(r.Violations))
	}
	if pf := r.Perf; pf != nil {
		p("wall", "%.3fs (build %.3fs, run %.3fs)   sim/wall %.2f", pf.WallS, pf.BuildS, pf.RunS, pf.SimPerWall)
		p("memory", "heap %.1f KiB/host (%.1f MiB live)   peak RSS %.1f MiB", pf.HeapPerHostKiB, pf.HeapMiB, pf.PeakRSSMiB)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("sim: writing report: %w", err)
	}
	for _, v := range r.Violations {
		if _, err := fmt.Fprintf(w, "  violation: %v\n", v); err != nil {
			return fmt.Errorf("sim: writing report: %w", err)
		}
	}
	return nil
}

func fmtMS(ms float64) string {
	return time.Duration(ms * 1e6).Round(time.Microsecond).String()
}
