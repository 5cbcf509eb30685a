// Package enginehub runs several autoip.Engine instances on one ideal,
// simulated Ethernet segment in virtual time. It is engine-only: there is
// no netstack, no TAP and no clock; the hub is the engines' caller.
//
// The segment is deterministic and single-goroutine. Pending work sits in
// an event heap ordered by (virtual time, insertion sequence), so events
// due at the same instant run in the order they were scheduled, never in
// map order. Each ARP frame an engine asks to send (OutSendARP) is encoded
// with acd.Frame.AppendBinary and handed, as bytes, to every other host's
// Engine.HandleFrame after Config.Latency; hosts are visited in index
// order. Engine timers are heap entries too, cancelled lazily by a
// per-host generation counter. OutAddAddress, OutRemoveAddress and
// OutEvent are recorded in each host's HostStatus and in a Timeline.
//
// The hub plays the one part of a netstack the protocol relies on: a host
// that has an address configured answers ARP requests for it (RFC 5227
// §2.4: "the stack answers it, and that answer is the defence"), with a
// link-layer broadcast reply (RFC 3927 §2.5), unless its engine's verdict
// says to keep the frame from the stack.
//
// Host i has hardware address 02:00:00:00:hi:lo, where hi and lo are the
// bytes of i, and draws its random delays from a PCG generator derived
// from (Config.Seed, i) alone, so adding a host does not change what the
// others draw. Candidate addresses stay keyed by the MAC, as on a real
// link. The same Config therefore always gives byte-identical timelines.
package enginehub

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// DefaultLatency is the delivery delay of a zero Config.Latency.
const DefaultLatency = time.Millisecond

// MaxHosts is the largest segment: host indices must fit the two bytes of
// the MAC that encode them.
const MaxHosts = 1 << 16

// MaxStagger bounds Config.Stagger.
const MaxStagger = 24 * time.Hour

// DefaultStart is the virtual time of a zero Config.Start.
var DefaultStart = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// ErrNotQuiet is wrapped by RunUntilQuiet when the segment still has work
// pending at the end of the allowed virtual time.
var ErrNotQuiet = errors.New("segment not quiet")

// Config describes a segment.
type Config struct {
	// Hosts is the number of hosts, 1..MaxHosts.
	Hosts int
	// Seed keys every host's random delays.
	Seed uint64
	// Latency is the delay between a send and its delivery to every other
	// host. Zero means DefaultLatency; negative is refused.
	Latency time.Duration
	// Initial, if valid, is every host's configured initial address (QNX
	// ip=, autoipd -s). It must lie in 169.254.1.0-169.254.254.255.
	Initial netip.Addr
	// Timing is every host's timing; zero fields take RFC defaults.
	Timing acd.Timing
	// Defend is every host's defence policy.
	Defend acd.DefendPolicy
	// Start is virtual time zero; the zero Time means DefaultStart.
	Start time.Time
	// Stagger delays the hosts' starts: host i starts at Start +
	// i*Stagger. Zero starts them all at once; 0..MaxStagger.
	Stagger time.Duration
	// TraceFrames also puts every frame sent (SEND, and the emulated
	// stack's REPLY) on the timeline.
	TraceFrames bool
}

// Line is one entry of the timeline.
type Line struct {
	// At is the virtual time since Config.Start.
	At time.Duration
	// Host is the index of the host it happened on.
	Host int
	// What is the event's name: an autoip.EventKind name (PROBE, BIND,
	// CONFLICT, DEFEND, RATELIMIT, UNBIND, STOP), ADD or REMOVE for
	// address changes, START for a staggered start, SEND or REPLY for
	// traced frames.
	What string
	// Addr is the address concerned.
	Addr netip.Addr
	// From is the other host's hardware address (CONFLICT, DEFEND).
	From acd.MAC
	// Detail says more, in words.
	Detail string
}

// String formats l as one line of text: time, host, MAC, event, address,
// detail. The format is stable: equal timelines give equal text.
func (l Line) String() string {
	addr := ""
	if l.Addr.IsValid() {
		addr = l.Addr.String()
	}
	s := fmt.Sprintf("%10s  host %-4d  %v  %-9s  %-15s  %s", FormatOffset(l.At), l.Host, MAC(l.Host), l.What, addr, l.Detail)
	return strings.TrimRight(s, " ")
}

// FormatOffset formats a virtual time offset as seconds with millisecond
// precision ("12.345s"), truncating, without floating point.
func FormatOffset(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%d.%03ds", sign, d/time.Second, d%time.Second/time.Millisecond)
}

// HostStatus is what the hub knows about one host.
type HostStatus struct {
	Index int
	MAC   acd.MAC
	// State is the engine's state.
	State autoip.State
	// Addr is the address configured on the host (added by OutAddAddress
	// and not yet removed); invalid if none.
	Addr netip.Addr
	// BoundAt is when Addr was added, if valid.
	BoundAt time.Duration
	// Attempts, Conflicts and Defences count PROBE, CONFLICT and DEFEND
	// events.
	Attempts, Conflicts, Defences int
	// Sent counts frames the engine sent, Replies the emulated stack's ARP
	// replies, Received the frames delivered to the host.
	Sent, Replies, Received uint64
	// Saved is the last state the engine asked to save.
	Saved autoip.SavedState
	// Stats are the engine's counters.
	Stats autoip.Stats
}

// Summary sums a segment up.
type Summary struct {
	Hosts int
	// Bound is the number of hosts with an address configured, Unique the
	// number of distinct addresses among them.
	Bound, Unique int
	// Conflicts is the number of CONFLICT events, on all hosts.
	Conflicts int
	// LastBind is the virtual time of the last BIND event (zero if none).
	LastBind time.Duration
	// Now is the hub's virtual time.
	Now time.Duration
	// Frames is the number of frames put on the wire.
	Frames uint64
}

// String formats s as one line.
func (s Summary) String() string {
	last := "no host bound"
	if s.Bound > 0 {
		last = "last bind at " + FormatOffset(s.LastBind)
	}
	return fmt.Sprintf("%d/%d hosts bound, %d unique addresses, %s, %d conflicts, %d frames, quiet at %s",
		s.Bound, s.Hosts, s.Unique, last, s.Conflicts, s.Frames, FormatOffset(s.Now))
}

// MAC returns the hardware address of host i: 02:00:00:00:hi:lo.
func MAC(i int) acd.MAC {
	return acd.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
}

type host struct {
	eng    *autoip.Engine
	gen    uint64    // timer generation; heap entries with another are stale
	armed  bool      // a live timer entry is in the heap
	timer  time.Time // its time, if armed
	status HostStatus
}

type eventKind uint8

const (
	evTimer eventKind = iota + 1
	evFrame
	evStart
)

type event struct {
	at    time.Time
	seq   uint64
	kind  eventKind
	host  int    // evTimer, evStart: whose; evFrame: the sender
	gen   uint64 // evTimer
	frame []byte // evFrame: the wire bytes, shared read-only by all receivers
}

type eventHeap []event

func (q eventHeap) Len() int { return len(q) }
func (q eventHeap) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventHeap) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*q = old[:len(old)-1]
	return e
}

// Hub is a simulated segment. It is not safe for concurrent use.
type Hub struct {
	cfg      Config
	start    time.Time
	now      time.Time
	hosts    []*host
	q        eventHeap
	seq      uint64
	timeline []Line
	lastBind time.Duration
	frames   uint64
	outs     []autoip.Output
}

// New builds the segment. Engines start at Config.Start, or staggered (see
// Config.Stagger), once RunUntilQuiet runs.
func New(cfg Config) (*Hub, error) {
	if cfg.Hosts < 1 || cfg.Hosts > MaxHosts {
		return nil, fmt.Errorf("enginehub: %d hosts, want 1..%d", cfg.Hosts, MaxHosts)
	}
	if cfg.Latency < 0 {
		return nil, fmt.Errorf("enginehub: latency %v is negative", cfg.Latency)
	}
	if cfg.Latency == 0 {
		cfg.Latency = DefaultLatency
	}
	if cfg.Initial.IsValid() && !autoip.InRange(cfg.Initial) {
		return nil, fmt.Errorf("enginehub: initial address %v is outside %v-%v", cfg.Initial, autoip.FirstAddr, autoip.LastAddr)
	}
	if cfg.Stagger < 0 || cfg.Stagger > MaxStagger {
		return nil, fmt.Errorf("enginehub: stagger %v, want 0..%v", cfg.Stagger, MaxStagger)
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	h := &Hub{cfg: cfg, start: cfg.Start, now: cfg.Start, hosts: make([]*host, cfg.Hosts)}
	for i := range h.hosts {
		eng, err := autoip.NewEngine(autoip.Config{
			HW:      MAC(i),
			Initial: cfg.Initial,
			Timing:  cfg.Timing,
			Defend:  cfg.Defend,
			Rand:    HostRand(cfg.Seed, i),
		})
		if err != nil {
			return nil, fmt.Errorf("enginehub: host %d: %w", i, err)
		}
		h.hosts[i] = &host{eng: eng, status: HostStatus{Index: i, MAC: MAC(i)}}
	}
	for i := range h.hosts {
		h.push(event{at: h.start.Add(time.Duration(i) * cfg.Stagger), kind: evStart, host: i})
	}
	return h, nil
}

// HostRand returns the generator of host i's random delays: a PCG whose
// state depends only on seed and i (through SplitMix64, so that
// neighbouring indices and seeds give unrelated streams).
func HostRand(seed uint64, i int) *rand.Rand {
	k := splitmix(seed)
	a := splitmix(k + (2*uint64(i)+1)*0x9E3779B97F4A7C15)
	b := splitmix(k + (2*uint64(i)+2)*0x9E3779B97F4A7C15)
	return rand.New(rand.NewPCG(a, b))
}

func splitmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Config returns the configuration with defaults applied.
func (h *Hub) Config() Config { return h.cfg }

// Now returns the virtual time since Config.Start.
func (h *Hub) Now() time.Duration { return h.now.Sub(h.start) }

// Pending returns the number of heap entries, stale timers included.
func (h *Hub) Pending() int { return len(h.q) }

// RunUntilQuiet processes events until none is left (every engine started
// and bound or idle, no frame in flight) and returns nil, or until the next event lies
// more than max of virtual time after the hub's time at the call, and then
// returns an error wrapping ErrNotQuiet, leaving the hub at that limit so
// that a later call can carry on.
func (h *Hub) RunUntilQuiet(max time.Duration) error {
	if max <= 0 {
		return fmt.Errorf("enginehub: run for %v: want a positive duration", max)
	}
	limit := h.now.Add(max)
	for len(h.q) > 0 {
		ev := h.q[0]
		if ev.kind == evTimer && ev.gen != h.hosts[ev.host].gen {
			heap.Pop(&h.q) // cancelled
			continue
		}
		if ev.at.After(limit) {
			h.now = limit
			return fmt.Errorf("%w after %v of virtual time: next event at %s", ErrNotQuiet, max, FormatOffset(ev.at.Sub(h.start)))
		}
		heap.Pop(&h.q)
		if ev.at.After(h.now) {
			h.now = ev.at
		}
		h.dispatch(ev)
	}
	return nil
}

func (h *Hub) push(ev event) {
	ev.seq = h.seq
	h.seq++
	heap.Push(&h.q, ev)
}

func (h *Hub) dispatch(ev event) {
	switch ev.kind {
	case evStart:
		if h.cfg.Stagger > 0 {
			h.line(ev.host, Line{What: "START", Detail: "engine started"})
		}
		h.hosts[ev.host].eng.Start(h.now)
		h.after(ev.host)
	case evTimer:
		hs := h.hosts[ev.host]
		hs.armed = false
		hs.eng.HandleTimer(h.now)
		h.after(ev.host)
	case evFrame:
		req, err := acd.DecodeFrame(ev.frame)
		isReq := err == nil && req.Op == acd.OpRequest
		for i, hs := range h.hosts {
			if i == ev.host {
				continue
			}
			hs.status.Received++
			v := hs.eng.HandleFrame(h.now, ev.frame)
			h.after(i)
			if isReq && !v.Drop() && hs.status.Addr.IsValid() && req.TargetIP == hs.status.Addr {
				h.stackReply(i, req)
			}
		}
	}
}

// stackReply plays host i's netstack answering an ARP request for its
// configured address, with a broadcast reply (RFC 3927 §2.5).
func (h *Hub) stackReply(i int, req acd.Frame) {
	hs := h.hosts[i]
	p := acd.Packet{
		Op:       acd.OpReply,
		SenderHW: hs.status.MAC,
		SenderIP: hs.status.Addr,
		TargetHW: req.SenderHW,
		TargetIP: req.SenderIP,
	}
	hs.status.Replies++
	if h.cfg.TraceFrames {
		h.line(i, Line{What: "REPLY", Addr: p.SenderIP, Detail: fmt.Sprintf("stack answers %v's %v", req.SenderHW, req.Kind())})
	}
	h.send(i, acd.BroadcastFrame(p))
}

func (h *Hub) send(i int, f acd.Frame) {
	h.frames++
	h.push(event{at: h.now.Add(h.cfg.Latency), kind: evFrame, host: i, frame: f.AppendBinary(nil)})
}

// after performs host i's pending outputs and re-arms its timer.
func (h *Hub) after(i int) {
	hs := h.hosts[i]
	h.outs = hs.eng.AppendOutputs(h.outs[:0])
	for _, o := range h.outs {
		h.perform(i, o)
	}
	clear(h.outs)

	dl, ok := hs.eng.Deadline()
	switch {
	case !ok:
		if hs.armed {
			hs.gen++ // cancel lazily
			hs.armed = false
		}
	case !hs.armed || !dl.Equal(hs.timer):
		hs.gen++
		hs.armed, hs.timer = true, dl
		if dl.Before(h.now) {
			dl = h.now
		}
		h.push(event{at: dl, kind: evTimer, host: i, gen: hs.gen})
	}
}

func (h *Hub) perform(i int, o autoip.Output) {
	st := &h.hosts[i].status
	switch o.Kind {
	case autoip.OutSendARP:
		st.Sent++
		if h.cfg.TraceFrames {
			h.line(i, Line{What: "SEND", Addr: o.Frame.TargetIP, Detail: o.Frame.Kind().String()})
		}
		h.send(i, o.Frame)
	case autoip.OutAddAddress:
		st.Addr, st.BoundAt = o.Prefix.Addr(), h.Now()
		h.line(i, Line{What: "ADD", Addr: o.Prefix.Addr(), Detail: o.Prefix.String() + " configured"})
	case autoip.OutRemoveAddress:
		if st.Addr == o.Prefix.Addr() {
			st.Addr, st.BoundAt = netip.Addr{}, 0
		}
		h.line(i, Line{What: "REMOVE", Addr: o.Prefix.Addr(), Detail: o.Prefix.String() + " removed"})
	case autoip.OutSaveState:
		st.Saved = o.Saved
	case autoip.OutEvent:
		h.event(i, o.Event)
	}
}

func (h *Hub) event(i int, ev autoip.Event) {
	st := &h.hosts[i].status
	l := Line{What: ev.Kind.String(), Addr: ev.Addr}
	switch ev.Kind {
	case autoip.EventProbe:
		st.Attempts++
		l.Detail = fmt.Sprintf("first probe sent (attempt %d)", st.Attempts)
	case autoip.EventBind:
		h.lastBind = h.Now()
		l.Detail = "claimed"
	case autoip.EventConflict:
		st.Conflicts++
		l.From = ev.From
		if ev.Phase == acd.PhaseBound {
			l.Detail = describe(ev) + ": address given up"
		} else {
			l.Detail = describe(ev) + ": trying another address"
		}
	case autoip.EventDefend:
		st.Defences++
		l.From = ev.From
		l.Detail = describe(ev) + ": defended with an announcement"
	case autoip.EventRateLimit:
		l.Detail = "too many conflicts: next attempt at " + FormatOffset(ev.Until.Sub(h.start))
	case autoip.EventUnbind:
		l.Detail = ev.Reason
	}
	h.line(i, l)
}

// describe says what the conflicting frame of ev was, naming its sender.
func describe(ev autoip.Event) string {
	switch ev.Frame.Kind() {
	case acd.KindProbe:
		return fmt.Sprintf("%v probes for it too", ev.From)
	case acd.KindAnnouncement:
		return fmt.Sprintf("%v announces it", ev.From)
	case acd.KindReply:
		return fmt.Sprintf("%v answers for it (ARP reply)", ev.From)
	}
	return fmt.Sprintf("%v uses it (ARP request)", ev.From)
}

func (h *Hub) line(i int, l Line) {
	l.At, l.Host = h.Now(), i
	h.timeline = append(h.timeline, l)
}

// Timeline returns a copy of the timeline so far, in order.
func (h *Hub) Timeline() []Line { return append([]Line(nil), h.timeline...) }

// Hosts returns every host's status, by index.
func (h *Hub) Hosts() []HostStatus {
	out := make([]HostStatus, len(h.hosts))
	for i, hs := range h.hosts {
		st := hs.status
		es := hs.eng.Status()
		st.State, st.Stats = es.State, es.Stats
		out[i] = st
	}
	return out
}

// Summary sums the segment up as it is now.
func (h *Hub) Summary() Summary {
	s := Summary{Hosts: len(h.hosts), LastBind: h.lastBind, Now: h.Now(), Frames: h.frames}
	seen := make(map[netip.Addr]bool)
	for _, hs := range h.hosts {
		s.Conflicts += hs.status.Conflicts
		if a := hs.status.Addr; a.IsValid() {
			s.Bound++
			seen[a] = true
		}
	}
	s.Unique = len(seen)
	return s
}
