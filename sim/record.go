package sim

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// EventKind names a recorded event: the engine's events (PROBE, BIND, ...)
// and the simulator's own (START, LINK-DOWN, ...).
type EventKind uint8

// Event kinds.
const (
	_ EventKind = iota
	// EventStart: the host booted (a new incarnation).
	EventStart
	// EventProbe: first probe of an attempt on Addr.
	EventProbe
	// EventBind: Addr claimed.
	EventBind
	// EventConflict: Addr lost (Phase says while probing or bound).
	EventConflict
	// EventDefend: Addr defended with one announcement.
	EventDefend
	// EventUnbind: Addr withdrawn (link down).
	EventUnbind
	// EventStop: the client stopped (shutdown or restart).
	EventStop
	// EventRateLimit: the next attempt waits until Until.
	EventRateLimit
	// EventLinkDown and EventLinkUp: the host's link changed.
	EventLinkDown
	EventLinkUp
	// EventReannounce: the host was asked to announce again.
	EventReannounce
	// EventMove: the host moved to partition Group.
	EventMove
)

type recKind = EventKind

const (
	recStart      = EventStart
	recProbe      = EventProbe
	recBind       = EventBind
	recConflict   = EventConflict
	recDefend     = EventDefend
	recUnbind     = EventUnbind
	recStop       = EventStop
	recRateLimit  = EventRateLimit
	recLinkDown   = EventLinkDown
	recLinkUp     = EventLinkUp
	recReannounce = EventReannounce
	recMove       = EventMove
)

var eventNames = [...]string{"?", "START", "PROBE", "BIND", "CONFLICT", "DEFEND", "UNBIND", "STOP", "RATELIMIT", "LINK-DOWN", "LINK-UP", "REANNOUNCE", "MOVE"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EVENT(%d)", uint8(k))
}

// evRec is the compact form of a recorded event (32 bytes). Events and
// frames share one ordinal counter, so that the checker can merge a host's
// two logs in the exact order things happened, even within one instant.
type evRec struct {
	at    int64
	until int64
	ord   uint32 // position among all records (events and frames)
	host  int32
	kind  recKind
	phase uint8   // CONFLICT: acd.Phase; START: 1 if saved state was kept
	addr  [4]byte // START: the MAC's last four bytes; MOVE: the group
}

// Event is a recorded event.
type Event struct {
	At    time.Duration
	Host  int
	Kind  EventKind
	Phase acd.Phase  // CONFLICT
	Addr  netip.Addr // PROBE, BIND, CONFLICT, DEFEND, UNBIND, STOP
	Until time.Duration
	Group int // MOVE
}

func (r evRec) export() Event {
	e := Event{At: time.Duration(r.at), Host: int(r.host), Kind: r.kind, Phase: acd.Phase(r.phase)}
	switch r.kind {
	case recMove:
		e.Group = int(r.addr[2])<<8 | int(r.addr[3])
	case recStart, recLinkDown, recLinkUp, recReannounce:
	default:
		if r.addr != ([4]byte{}) {
			e.Addr = netip.AddrFrom4(r.addr)
		}
	}
	if r.kind == recRateLimit {
		e.Until = time.Duration(r.until)
	}
	return e
}

// Events returns every recorded event, in order.
func (s *Sim) Events() []Event {
	out := make([]Event, len(s.evlog))
	for i, r := range s.evlog {
		out[i] = r.export()
	}
	return out
}

// HostEvents returns host i's recorded events, in order.
func (s *Sim) HostEvents(i int) []Event {
	var out []Event
	for _, r := range s.evlog {
		if int(r.host) == i {
			out = append(out, r.export())
		}
	}
	return out
}

// FrameKind classifies a frame on the segment.
type FrameKind uint8

// Frame kinds.
const (
	FrameProbe FrameKind = iota
	FrameAnnouncement
	FrameRequest
	FrameReply
	FrameMalformed // EtherType ARP, but not a well-formed Ethernet/IPv4 ARP packet
	FrameNotARP    // another EtherType, or a runt
	numFrameKinds
)

var frameKindNames = [...]string{"probe", "announcement", "request", "reply", "malformed", "not-arp"}

// String returns the kind's name.
func (k FrameKind) String() string {
	if k < numFrameKinds {
		return frameKindNames[k]
	}
	return fmt.Sprintf("frame(%d)", uint8(k))
}

// txRec records a frame put on the segment (24 bytes).
type txRec struct {
	at    int64
	ord   uint32 // position among all records (events and frames)
	from  int32  // host index, or ^actor index
	kind  FrameKind
	flags uint8
	spa   [4]byte
	tpa   [4]byte
}

const txDefence = 1 // an announcement sent as a defence (after a DEFEND event)

// counters are the run's totals.
type counters struct {
	frames         [numFrameKinds]uint64
	defenceFrames  uint64
	attempts       uint64
	conflicts      uint64
	boundConflicts uint64
	defences       uint64
	rateLimits     uint64
	deliveries     uint64
	lost           uint64
	duplicated     uint64
	echoed         uint64
	reordered      uint64
	txLinkDown     uint64
	queueFull      uint64
}

func classifyFrame(b []byte) (FrameKind, acd.Frame) {
	f, err := acd.DecodeFrame(b)
	switch {
	case err == nil:
		switch f.Kind() {
		case acd.KindProbe:
			return FrameProbe, f
		case acd.KindAnnouncement:
			return FrameAnnouncement, f
		case acd.KindRequest:
			return FrameRequest, f
		default:
			return FrameReply, f
		}
	case len(b) >= acd.EthernetHeaderLen && binary.BigEndian.Uint16(b[12:14]) == acd.EtherTypeARP:
		return FrameMalformed, f
	}
	return FrameNotARP, f
}

// logTx records a frame put on the segment by a host (h non-nil) or an
// actor.
func (s *Sim) logTx(b []byte, from int32, flags uint8, h *host) {
	kind, f := classifyFrame(b)
	s.ctr.frames[kind]++
	if flags&txDefence != 0 {
		s.ctr.defenceFrames++
	}
	s.ord++
	r := txRec{at: s.now, ord: s.ord, from: from, kind: kind, flags: flags}
	if f.SenderIP.Is4() {
		r.spa, r.tpa = f.SenderIP.As4(), f.TargetIP.As4()
	}
	s.txlog = append(s.txlog, r)
	s.pcapWrite(b)
	if h != nil && h.traced {
		s.trace.frame(s.now, h, "tx", b)
	}
}

func (s *Sim) pcapWrite(b []byte) {
	if s.pcap == nil || s.err != nil {
		return
	}
	if err := s.pcap.write(s.cfg.Start.Add(time.Duration(s.now)), b); err != nil {
		s.err = fmt.Errorf("sim: writing pcap: %w", err)
	}
}

// pcapOut writes a classic pcap file (the format of libpcap, tcpdump and
// Wireshark) with nanosecond timestamps and link type Ethernet: byte for
// byte what gopacket's pcapgo.NewWriterNanos writes. pcapgo itself is not
// used because it imports golang.org/x/net/bpf, which this module does not
// otherwise need.
type pcapOut struct {
	bw  *bufio.Writer
	hdr [16]byte
}

const (
	pcapMagicNanos    = 0xa1b23c4d
	pcapSnapLen       = 65535
	pcapLinkEthernet  = 1
	pcapVersionMajor  = 2
	pcapVersionMinor  = 4
	pcapFileHeaderLen = 24
)

func newPCAP(w io.Writer) (*pcapOut, error) {
	p := &pcapOut{bw: bufio.NewWriterSize(w, 64<<10)}
	var h [pcapFileHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicNanos)
	binary.LittleEndian.PutUint16(h[4:], pcapVersionMajor)
	binary.LittleEndian.PutUint16(h[6:], pcapVersionMinor)
	// h[8:16]: time zone offset and timestamp accuracy, both zero.
	binary.LittleEndian.PutUint32(h[16:], pcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], pcapLinkEthernet)
	if _, err := p.bw.Write(h[:]); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pcapOut) write(t time.Time, b []byte) error {
	ns := t.UnixNano()
	binary.LittleEndian.PutUint32(p.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(p.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(p.hdr[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(p.hdr[12:], uint32(len(b)))
	if _, err := p.bw.Write(p.hdr[:]); err != nil {
		return err
	}
	_, err := p.bw.Write(b)
	return err
}

func (p *pcapOut) flush() error {
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("sim: writing pcap: %w", err)
	}
	return nil
}

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
		ratio = float64(s.now) / float64(wall)
	}
	var frames uint64
	for _, n := range s.ctr.frames {
		frames += n
	}
	fmt.Fprintf(s.cfg.Progress, "sim: t=%.3fs booted %d/%d bound %d frames %d conflicts %d wall %.1fs (sim/wall %.2f)\n",
		float64(s.now)/1e9, s.boots, len(s.hosts), s.bound, frames, s.ctr.conflicts, wall.Seconds(), ratio)
}
