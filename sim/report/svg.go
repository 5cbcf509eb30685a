package report

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/netip"

	"github.com/autoip-project/autoip/sim"
)

// SVGOptions selects what WriteSVG draws.
type SVGOptions struct {
	// Hosts lists the hosts to draw, in order; nil means the first
	// MaxRows hosts.
	Hosts []int
	// MaxRows caps the number of host rows (default 60).
	MaxRows int
	// Title replaces the default title line.
	Title string
}

// Timeline colours, by state.
var svgColors = map[string]string{
	"waiting":      "#cfd8dc",
	"probing":      "#ffca28",
	"bound":        "#43a047",
	"rate-limited": "#fb8c00",
	"link-down":    "#37474f",
	"static":       "#26a69a",
}

var svgLegend = []string{"waiting", "probing", "bound", "rate-limited", "link-down", "static"}

// span is a host's state over an interval.
type span struct {
	from, to int64
	state    string
}

// WriteSVG draws the run as a timeline: one row per host with its states
// over time (waiting, probing, bound, rate-limited, link down), ticks for
// the probes and announcements it sent, red crosses for conflicts, blue
// triangles for defences; one row per actor with ticks for its frames. The
// picture is a deterministic function of the run.
func WriteSVG(w io.Writer, s *sim.Sim, opts SVGOptions) error {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 60
	}
	nHosts := s.NumHosts()
	rows := opts.Hosts
	if rows == nil {
		for i := 0; i < nHosts && i < opts.MaxRows; i++ {
			rows = append(rows, i)
		}
	}
	if len(rows) > opts.MaxRows {
		rows = rows[:opts.MaxRows]
	}
	for _, i := range rows {
		if i < 0 || i >= nHosts {
			return fmt.Errorf("report: svg: host %d out of range 0..%d", i, nHosts-1)
		}
	}
	cfg, tot := s.Config(), s.Totals()
	end := int64(s.Now())
	if end <= 0 {
		end = int64(1e9)
	}
	const (
		left    = 190.0
		chartW  = 1000.0
		right   = 30.0
		top     = 62.0
		rowH    = 16.0
		rowGap  = 5.0
		barH    = 11.0
		legendH = 60.0
	)
	nRows := len(rows) + s.NumActors()
	height := top + float64(nRows)*(rowH+rowGap) + 30 + legendH
	width := left + chartW + right
	x := func(t int64) float64 { return left + chartW*float64(t)/float64(end) }

	evBy := eventsByHost(s)
	frames := s.Frames()
	txBy := make([][]sim.FrameRecord, nHosts)
	for _, f := range frames {
		if f.Host >= 0 {
			txBy[f.Host] = append(txBy[f.Host], f)
		}
	}
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">`+"\n", width, height, width, height)
	p(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", width, height)
	title := opts.Title
	hosts := make([]sim.HostStatus, nHosts)
	for i := range hosts {
		hosts[i], _ = s.Host(i) // in range
	}
	if title == "" {
		bound := 0
		for _, h := range hosts {
			if !h.Static && h.Holding().IsValid() {
				bound++
			}
		}
		title = fmt.Sprintf("%s — seed %d — %d hosts, %d bound, %d conflicts, %d defences — %.3fs simulated",
			nameOr(cfg.Name, "simulation"), cfg.Seed, nHosts, bound, tot.Conflicts, tot.Defences, float64(end)/1e9)
	}
	p(`<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left-180, esc(title))
	if len(rows) < nHosts {
		p(`<text x="%.0f" y="36" fill="#555">showing %d of %d hosts</text>`+"\n", left-180, len(rows), nHosts)
	}

	// Time axis with "nice" ticks.
	step := niceStep(float64(end)/1e9, 10)
	axisY := top - 8
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", left, axisY, left+chartW, axisY)
	for t := 0.0; t <= float64(end)/1e9+1e-9; t += step {
		tx := x(int64(t * 1e9))
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", tx, axisY, tx, top+float64(nRows)*(rowH+rowGap))
		p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>`+"\n", tx, axisY-4, fmtAxis(t, step))
	}

	y := top
	for _, i := range rows {
		h := hosts[i]
		label := fmt.Sprintf("h%d", i)
		if a := h.Holding(); a.IsValid() {
			label += " " + a.String()
		} else if h.Static {
			label += " static"
		} else {
			label += " —"
		}
		p(`<text x="%.0f" y="%.1f">%s</text>`+"\n", left-185, y+barH-1, esc(label))
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fafafa" stroke="#eee"/>`+"\n", left, y, chartW, barH)
		for _, sg := range hostSpans(h.Static, evBy[i], end) {
			x0, x1 := x(sg.from), x(sg.to)
			p(`<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"><title>%s %s–%s</title></rect>`+"\n",
				x0, y, math.Max(x1-x0, 0.6), barH, svgColors[sg.state], sg.state, fmtSec(sg.from), fmtSec(sg.to))
		}
		for _, r := range txBy[i] {
			var c string
			switch {
			case r.Kind == sim.FrameProbe:
				c = "#6d4c41"
			case r.Kind == sim.FrameAnnouncement && r.Defence:
				c = "#1e88e5"
			case r.Kind == sim.FrameAnnouncement:
				c = "#1b5e20"
			default:
				c = "#9e9e9e"
			}
			tx := x(int64(r.At))
			p(`<line x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", tx, y+barH, tx, y+barH+4, c)
		}
		for _, e := range evBy[i] {
			at := int64(e.At)
			ex := x(at)
			switch e.Kind {
			case sim.EventConflict:
				p(`<path d="M%.1f %.1f l6 6 m0 -6 l-6 6" stroke="#d32f2f" stroke-width="2"><title>conflict %v at %s</title></path>`+"\n",
					ex-3, y+barH/2-3, addrOrZero(e), fmtSec(at))
			case sim.EventDefend:
				p(`<path d="M%.1f %.1f l4 7 l-8 0 z" fill="#1e88e5"><title>defence of %v at %s</title></path>`+"\n",
					ex, y+barH/2-4, addrOrZero(e), fmtSec(at))
			case sim.EventMove:
				p(`<path d="M%.1f %.1f l4 4 l-4 4 l-4 -4 z" fill="#8e24aa"><title>moved to partition %d at %s</title></path>`+"\n",
					ex, y+barH/2-4, e.Group, fmtSec(at))
			case sim.EventStart:
				if at > 0 {
					p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="1.5"><title>boot at %s</title></line>`+"\n",
						ex, y-1, ex, y+barH+1, fmtSec(at))
				}
			}
		}
		y += rowH + rowGap
	}
	for ai := range s.NumActors() {
		p(`<text x="%.0f" y="%.1f" fill="#b71c1c">%s</text>`+"\n", left-185, y+barH-1, esc(fmt.Sprintf("actor %d %v", ai, s.Actor(ai).Kind)))
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fff5f5" stroke="#f3dede"/>`+"\n", left, y, chartW, barH)
		for _, r := range frames {
			if r.Actor == ai {
				tx := x(int64(r.At))
				p(`<line x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="#c62828"/>`+"\n", tx, y+1, tx, y+barH-1)
			}
		}
		y += rowH + rowGap
	}

	// Legend.
	ly := y + 22
	lx := left - 180
	for _, st := range svgLegend {
		p(`<rect x="%.1f" y="%.1f" width="14" height="10" fill="%s"/>`+"\n", lx, ly-9, svgColors[st])
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+18, ly, st)
		lx += 30 + 7*float64(len(st))
	}
	ly += 20
	lx = left - 180
	marks := []struct{ svg, text string }{
		{`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#6d4c41"/>`, "probe sent"},
		{`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1b5e20"/>`, "announcement sent"},
		{`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1e88e5"/>`, "defence sent"},
	}
	for _, m := range marks {
		p(m.svg+"\n", lx+7, ly-9, lx+7, ly+1)
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+14, ly, m.text)
		lx += 30 + 7*float64(len(m.text))
	}
	p(`<path d="M%.1f %.1f l6 6 m0 -6 l-6 6" stroke="#d32f2f" stroke-width="2"/>`+"\n", lx, ly-7)
	p(`<text x="%.1f" y="%.1f">conflict</text>`+"\n", lx+12, ly)
	lx += 90
	p(`<path d="M%.1f %.1f l4 7 l-8 0 z" fill="#1e88e5"/>`+"\n", lx+4, ly-8)
	p(`<text x="%.1f" y="%.1f">defence</text>`+"\n", lx+12, ly)
	lx += 85
	p(`<path d="M%.1f %.1f l4 4 l-4 4 l-4 -4 z" fill="#8e24aa"/>`+"\n", lx+4, ly-8)
	p(`<text x="%.1f" y="%.1f">moved</text>`+"\n", lx+12, ly)
	p("</svg>\n")
	if err := bw.Flush(); err != nil {
		return err
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: writing svg: %w", err)
	}
	return nil
}

// hostSpans turns a host's events into state intervals.
func hostSpans(static bool, evs []sim.Event, end int64) []span {
	var out []span
	cur, since := "", int64(0)
	set := func(at int64, st string) {
		if cur != "" && at > since {
			out = append(out, span{since, at, cur})
		}
		cur, since = st, at
	}
	for _, e := range evs {
		at := int64(e.At)
		switch e.Kind {
		case sim.EventStart:
			if static {
				set(at, "static")
			} else {
				set(at, "waiting")
			}
		case sim.EventProbe:
			set(at, "probing")
		case sim.EventBind:
			set(at, "bound")
		case sim.EventConflict:
			set(at, "waiting")
		case sim.EventRateLimit:
			set(at, "rate-limited")
		case sim.EventLinkDown:
			set(at, "link-down")
		case sim.EventLinkUp:
			if static {
				set(at, "static")
			} else {
				set(at, "waiting")
			}
		case sim.EventStop:
			set(at, "")
		}
	}
	set(end, "")
	return out
}

// addrOrZero is the event's address, 0.0.0.0 if it has none (as the
// records hold it).
func addrOrZero(e sim.Event) netip.Addr {
	if e.Addr.IsValid() {
		return e.Addr
	}
	return netip.AddrFrom4([4]byte{})
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to a buffer: cannot fail
	return b.String()
}

// niceStep returns a 1-2-5 step giving about n ticks over span seconds.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtAxis(t, step float64) string {
	switch {
	case step >= 1:
		return fmt.Sprintf("%.0fs", t)
	case step >= 0.1:
		return fmt.Sprintf("%.1fs", t)
	default:
		return fmt.Sprintf("%.0fms", t*1000)
	}
}

func fmtSec(ns int64) string { return fmt.Sprintf("%.3fs", float64(ns)/1e9) }
