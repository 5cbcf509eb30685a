package segment

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/internal/eventq"
	"github.com/autoip-project/autoip/internal/pcapfile"
)

// Clock is the virtual clock the segment runs on and moves: a
// *stack.DetClock. Every stack attached to the segment must use it.
type Clock interface {
	tcpip.Clock
	// Next returns the deadline of the earliest pending timer.
	Next() (time.Time, bool)
	// RunOneDue runs the earliest timer due now, on the caller's
	// goroutine, and reports whether there was one.
	RunOneDue() bool
	// AdvanceTo moves the clock forward to t without running timers.
	AdvanceTo(t time.Time)
}

// Config configures a segment.
type Config struct {
	// Seed keys the fault decisions (see LinkModel).
	Seed uint64
	// Link is the fault model at the start; SetLinkModel changes it.
	Link LinkModel
	// PCAP, if set, receives a pcap capture (nanosecond timestamps in
	// virtual time, Ethernet) of every frame put on the segment, and of
	// every duplicate and echo when it is delivered. It is buffered:
	// RunUntil, RunRealTime and Flush write it out.
	PCAP io.Writer
	// OnTransmit, if set, sees every frame put on the segment, in order,
	// before it is delivered: frames from ports and from DeliverTo. It
	// runs on the segment's goroutine; the bytes are valid during the
	// call only.
	OnTransmit func(f Frame)
	// Settle, if positive, makes the segment wait, in real time, up to
	// Settle for frames written from other goroutines before it moves
	// virtual time forward: gVisor's TCP processes segments on goroutines
	// of its own (see the package doc). Zero: the stacks write only from
	// the segment's goroutine, and virtual time moves as soon as nothing
	// is due.
	Settle time.Duration
}

// Frame is a frame put on the segment, as OnTransmit sees it.
type Frame struct {
	// At is the virtual time since the segment's start.
	At time.Duration
	// From is the port that sent it; nil for DeliverTo.
	From *Port
	// To is the only port it goes to (DeliverTo); nil when it goes on the
	// segment.
	To *Port
	// Bytes is the Ethernet frame, valid during the call only.
	Bytes []byte
	// Tag is the tag of the port's drain that took it (Port.Tag).
	Tag uint8
}

// Stats counts what the segment did. Deliveries and Lost count hand-overs
// to receiving ports, so they depend on filtering; nothing else does.
type Stats struct {
	Frames      uint64 // frames put on the segment
	Deliveries  uint64 // frames handed to a port
	Lost        uint64 // hand-overs lost to LinkModel.Loss
	Duplicated  uint64 // duplicate copies delivered
	Reordered   uint64 // frames held back
	Echoed      uint64 // frames echoed back to their sender
	TxLinkDown  uint64 // frames a port wrote while its link was down or it was unplugged
	QueueFull   uint64 // drains that found a port's queue full (PortConfig.QueueSize)
	FromOutside uint64 // frames that came in through a Bridge
	// BridgeDropped counts frames a bridged device refused (a TAP that
	// is down).
	BridgeDropped uint64
}

// Segment is a virtual Ethernet switch (see the package doc). It is driven
// by one goroutine: every method except Port.Link's endpoint and Bridge's
// reader must be called on it, or while it is not running.
type Segment struct {
	cfg   Config
	clk   Clock
	start time.Time
	now   int64 // virtual ns since start; only the segment moves the clock
	link  LinkModel
	ideal bool // link.ideal() and no port echoes: deliver at once
	echo  int  // ports with PortConfig.Echo > 0

	ports []*Port // endpoint ports, by index
	raws  []*Port // function ports, by index

	events eventq.Queue[event]
	pool   framePool
	outq   []outFrame // frames taken from ports, not yet transmitted
	head   int

	mu     sync.Mutex // guards dirty and wakeOn (ports write from any goroutine)
	dirty  []int32    // endpoint ports whose queue has frames, in write order
	wakeOn bool       // writes signal wake (Settle, RunRealTime)
	wake   chan struct{}

	index    filterIndex
	scratch  []int32
	scratch2 []int32
	frameSeq uint64
	stats    Stats

	pcap    *pcapfile.Writer
	pcapBuf *bufio.Writer
	err     error
	closed  bool
	running bool // in RunRealTime: bridges deliver

	bridges []*bridge
	inbox   chan inFrame
}

// event kinds.
type evKind uint8

const (
	evDeliver evKind = iota + 1 // a frame reaches its partition
	evEcho                      // a frame comes back to its sender
	evCall                      // a scheduled function
)

// event is a value of the segment's heap (no allocation per event).
type event struct {
	fseq  uint64 // frame number (deliver, echo)
	fn    func() error
	kind  evKind
	copy  uint8 // 0: original, 1: duplicate
	slot  int32 // frame (deliver, echo)
	from  int32 // sender: port id
	group int32 // partition the frame was sent in
}

// New returns a segment on clk, which starts now (at clk.Now()).
func New(clk Clock, cfg Config) (*Segment, error) {
	if clk == nil {
		return nil, errors.New("segment: nil clock")
	}
	if cfg.Settle < 0 {
		return nil, fmt.Errorf("%w: settle %v is negative", ErrInvalid, cfg.Settle)
	}
	link := cfg.Link.WithDefaults()
	if err := link.Validate(); err != nil {
		return nil, err
	}
	s := &Segment{cfg: cfg, clk: clk, start: clk.Now(), link: link, ideal: link.ideal(), wake: make(chan struct{}, 1), wakeOn: cfg.Settle > 0}
	s.index.init()
	if cfg.PCAP != nil {
		s.pcapBuf = bufio.NewWriterSize(cfg.PCAP, 64<<10)
		p, err := pcapfile.NewWriter(s.pcapBuf, pcapfile.Nanosecond)
		if err != nil {
			return nil, fmt.Errorf("segment: %w", err)
		}
		s.pcap = p
	}
	return s, nil
}

// Clock returns the segment's clock.
func (s *Segment) Clock() Clock { return s.clk }

// Now returns the virtual time since the segment's start.
func (s *Segment) Now() time.Duration { return time.Duration(s.now) }

// Stats returns the counters.
func (s *Segment) Stats() Stats { return s.stats }

// Err returns the first error of a scheduled function or of the capture.
func (s *Segment) Err() error { return s.err }

// SetLinkModel changes the fault model from now on.
func (s *Segment) SetLinkModel(m LinkModel) error {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("segment: set link model: %w", err)
	}
	s.link, s.ideal = m, m.ideal() && s.echo == 0
	return nil
}

// Merge puts every port back into partition 0.
func (s *Segment) Merge() {
	for _, p := range s.ports {
		p.SetGroup(0)
	}
	for _, p := range s.raws {
		p.SetGroup(0)
	}
}

// At schedules f to run on the segment's goroutine at virtual time t since
// the start, after everything already scheduled for that instant and after
// the frames written so far were taken from their ports. An error from f
// stops the run: RunUntil returns it.
func (s *Segment) At(t time.Duration, f func() error) error {
	if int64(t) < s.now {
		return fmt.Errorf("segment: schedule at %v: in the past (now %v)", t, s.Now())
	}
	s.events.Push(int64(t), event{kind: evCall, fn: f})
	return nil
}

// fail records the first error.
func (s *Segment) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Flush writes out the buffered capture.
func (s *Segment) Flush() error {
	if s.pcapBuf != nil && s.err == nil {
		if err := s.pcapBuf.Flush(); err != nil {
			s.fail(fmt.Errorf("segment: writing pcap: %w", err))
		}
	}
	return s.err
}

// capture writes b to the pcap at the current virtual time.
func (s *Segment) capture(b []byte) {
	if s.pcap == nil || s.err != nil {
		return
	}
	if err := s.pcap.WritePacket(s.start.Add(time.Duration(s.now)), b); err != nil {
		s.fail(fmt.Errorf("segment: writing pcap: %w", err))
	}
}

// Close unplugs every port, stops the bridges' readers and releases the
// frames in flight. Stacks stay the caller's to close. It is idempotent.
func (s *Segment) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	for _, p := range s.ports {
		p.detach()
	}
	for _, b := range s.bridges {
		b.stop()
	}
	s.events.Reset()
	s.outq, s.head = nil, 0
	s.pool.release()
	return nil
}
