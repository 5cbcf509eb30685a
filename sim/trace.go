package sim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/autoip-project/autoip/autoip/acd"
)

// tracer writes the per-host text trace.
type tracer struct {
	w    *bufio.Writer
	all  bool
	want map[int]bool
	err  error
}

func newTracer(w io.Writer, hosts []int) *tracer {
	t := &tracer{w: bufio.NewWriterSize(w, 64<<10), all: hosts == nil, want: make(map[int]bool)}
	for _, h := range hosts {
		t.want[h] = true
	}
	return t
}

func (t *tracer) wants(i int) bool { return t.all || t.want[i] }

func (t *tracer) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *tracer) flush() error {
	if t.err == nil {
		t.err = t.w.Flush()
	}
	if t.err != nil {
		return fmt.Errorf("sim: writing trace: %w", t.err)
	}
	return nil
}

func (t *tracer) event(r evRec, h *host) {
	e := r.export()
	var detail string
	switch e.Kind {
	case EventStart:
		detail = "mac " + h.mac.String()
	case EventConflict:
		detail = fmt.Sprintf("%v (%v)", e.Addr, e.Phase)
	case EventRateLimit:
		detail = "until " + fmtTime(int64(e.Until))
	case EventMove:
		detail = fmt.Sprintf("partition %d", e.Group)
	default:
		if e.Addr.IsValid() {
			detail = e.Addr.String()
		}
	}
	t.printf("%s h%-4d %-10s %s\n", fmtTime(r.at), r.host, e.Kind, detail)
}

func (t *tracer) frame(at int64, h *host, dir string, b []byte) {
	t.printf("%s h%-4d %-10s %s\n", fmtTime(at), h.idx, dir, describeFrame(b))
}

// describeFrame returns a one-line, tcpdump-like description of b.
func describeFrame(b []byte) string {
	kind, f := classifyFrame(b)
	switch kind {
	case FrameProbe:
		return fmt.Sprintf("probe      who-has %v (from %v)", f.TargetIP, f.SenderHW)
	case FrameAnnouncement:
		return fmt.Sprintf("announce   %v is-at %v", f.SenderIP, f.SenderHW)
	case FrameRequest:
		return fmt.Sprintf("request    who-has %v tell %v (%v)", f.TargetIP, f.SenderIP, f.SenderHW)
	case FrameReply:
		dst := "broadcast"
		if !f.Dst.IsBroadcast() {
			dst = f.Dst.String()
		}
		return fmt.Sprintf("reply      %v is-at %v to %v (%s)", f.SenderIP, f.SenderHW, f.TargetIP, dst)
	case FrameMalformed:
		_, err := acd.DecodeFrame(b)
		return fmt.Sprintf("malformed  %d bytes: %v", len(b), err)
	}
	if len(b) < acd.EthernetHeaderLen {
		return fmt.Sprintf("runt       %d bytes", len(b))
	}
	return fmt.Sprintf("not-arp    ethertype %#04x, %d bytes", binary.BigEndian.Uint16(b[12:14]), len(b))
}

// fmtTime formats virtual ns as seconds with microseconds, right-aligned.
func fmtTime(ns int64) string {
	return fmt.Sprintf("%11.6fs", float64(ns)/1e9)
}
