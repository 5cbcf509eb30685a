package segment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FrameDevice carries one Ethernet frame per Read and per Write: a TAP
// device (tap.Device), a SOCK_SEQPACKET socket, an AF_PACKET socket.
type FrameDevice interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
}

// bridge connects a FrameDevice to a function port.
type bridge struct {
	seg  *Segment
	port *Port
	dev  FrameDevice
	done chan struct{}
	once sync.Once

	readErr atomic.Pointer[error]
}

// inFrame is a frame read from a bridged device.
type inFrame struct {
	port *Port
	b    []byte
}

// maxFrame is the largest frame a bridge reads (jumbo frames included).
const maxFrame = 9216

// Bridge connects dev to the segment through a new function port: every
// frame of the port's partition is written to dev, and every frame read
// from dev is put on the segment from the port. A goroutine reads dev from
// now on; the frames it reads wait until RunRealTime runs (a bridged
// segment runs in real time only). The caller closes dev after the segment,
// which ends the reader.
func (s *Segment) Bridge(dev FrameDevice) (*Port, error) {
	if dev == nil {
		return nil, errors.New("segment: bridge: nil device")
	}
	b := &bridge{seg: s, dev: dev, done: make(chan struct{})}
	p, err := s.AttachFunc("", b.write)
	if err != nil {
		return nil, fmt.Errorf("segment: bridge: %w", err)
	}
	b.port = p
	if s.inbox == nil {
		s.inbox = make(chan inFrame, 1024)
	}
	s.bridges = append(s.bridges, b)
	go b.read(s.inbox)
	return p, nil
}

// write hands a frame to the device. A frame the device refuses (a TAP
// that is down) is lost, as on a real link, and counted.
func (b *bridge) write(frame []byte) {
	if _, err := b.dev.Write(frame); err != nil {
		b.seg.stats.BridgeDropped++
	}
}

func (b *bridge) read(inbox chan<- inFrame) {
	buf := make([]byte, maxFrame)
	for {
		n, err := b.dev.Read(buf)
		if err != nil {
			b.readErr.Store(&err)
			return
		}
		f := inFrame{port: b.port, b: append([]byte(nil), buf[:n]...)}
		select {
		case inbox <- f:
		case <-b.done:
			return
		}
	}
}

func (b *bridge) stop() { b.once.Do(func() { close(b.done) }) }

// RunRealTime runs the segment with virtual time following the wall clock
// from where it stands: timers fire when they are due in real time, frames
// from bridged devices are put on the segment as they arrive, and frames
// stacks write from other goroutines are taken at once. After each burst
// of work it calls stop, if not nil, and returns when stop reports true,
// when ctx is done (returning ctx.Err()) or when a scheduled function
// fails. The capture is written out whenever the segment waits.
func (s *Segment) RunRealTime(ctx context.Context, stop func() bool) error {
	if s.closed {
		return errors.New("segment: run: segment closed")
	}
	s.mu.Lock()
	s.wakeOn = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.wakeOn = s.cfg.Settle > 0
		s.mu.Unlock()
	}()
	wall, base := time.Now(), s.now
	virtual := func() time.Duration { return time.Duration(base) + time.Since(wall) }
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.err == nil {
		s.catchUp(virtual())
		if s.err != nil || stop != nil && stop() {
			break
		}
		for _, b := range s.bridges {
			if e := b.readErr.Load(); e != nil {
				s.fail(fmt.Errorf("segment: bridge port %d: reading: %w", b.port.Index(), *e))
			}
		}
		if s.err != nil {
			break
		}
		var due <-chan time.Time
		if next, ok := s.Next(); ok {
			d := next - virtual()
			if d <= 0 {
				continue
			}
			timer.Reset(d)
			due = timer.C
		}
		if err := s.Flush(); err != nil {
			break
		}
		select {
		case <-ctx.Done():
			s.Flush()
			return ctx.Err()
		case f := <-s.inbox:
			s.catchUp(virtual())
			s.receive(f)
			for more := true; more; {
				select {
				case f := <-s.inbox:
					s.receive(f)
				default:
					more = false
				}
			}
		case <-s.wake:
		case <-due:
		}
		if due != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	return s.Flush()
}

// receive queues a frame that came in through a bridge.
func (s *Segment) receive(f inFrame) {
	s.stats.FromOutside++
	s.outq = append(s.outq, outFrame{slot: s.pool.put(f.b), from: f.port.id})
}

// catchUp does everything due up to virtual time t, in order, and leaves
// the segment at t.
func (s *Segment) catchUp(t time.Duration) {
	for s.err == nil {
		for s.Step() {
		}
		next, ok := s.Next()
		if !ok || next > t {
			break
		}
		s.AdvanceTo(next)
	}
	s.AdvanceTo(t)
}
