package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encoding: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("report: writing: %w", err)
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
	if r.Leases+r.LeasesLost+r.Declines > 0 {
		p("dhcp", "%d leases, %d lost, %d offers declined", r.Leases, r.LeasesLost, r.Declines)
	}
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
		return fmt.Errorf("report: writing: %w", err)
	}
	for _, v := range r.Violations {
		if _, err := fmt.Fprintf(w, "  violation: %v\n", v); err != nil {
			return fmt.Errorf("report: writing: %w", err)
		}
	}
	return nil
}

func fmtMS(ms float64) string {
	return time.Duration(ms * 1e6).Round(time.Microsecond).String()
}
