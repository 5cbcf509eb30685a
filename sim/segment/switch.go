package segment

import (
	"gvisor.dev/gvisor/pkg/buffer"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/splitmix"
)

// Fault streams: the keys of the per-frame fault hashes (splitmix.Derive).
const (
	streamLoss  = 7 // per-delivery loss
	streamFrame = 8 // per-frame delay, reordering, duplication, echo
)

// outFrame is a frame taken from a port, waiting to go on the segment.
type outFrame struct {
	slot int32
	from int32
	tag  uint8
}

// framePool holds frame bytes in reusable, reference-counted slots, so that
// the segment does not allocate per frame once warm.
type framePool struct {
	bufs [][]byte
	refs []int32
	free []int32
}

func (p *framePool) alloc() int32 {
	if n := len(p.free); n > 0 {
		id := p.free[n-1]
		p.free = p.free[:n-1]
		p.refs[id] = 1
		p.bufs[id] = p.bufs[id][:0]
		return id
	}
	p.bufs = append(p.bufs, make([]byte, 0, 64))
	p.refs = append(p.refs, 1)
	return int32(len(p.bufs) - 1)
}

func (p *framePool) put(b []byte) int32 {
	id := p.alloc()
	p.bufs[id] = append(p.bufs[id], b...)
	return id
}

func (p *framePool) ref(id int32) { p.refs[id]++ }

func (p *framePool) unref(id int32) {
	p.refs[id]--
	if p.refs[id] == 0 {
		p.free = append(p.free, id)
	}
}

func (p *framePool) release() { *p = framePool{} }

// pump does everything due now: it takes the frames the ports wrote, puts
// them on the segment, and runs the events due. It reports whether it did
// anything.
func (s *Segment) pump() bool {
	progress := false
	for s.err == nil {
		s.drainDirty()
		if s.head < len(s.outq) {
			o := s.outq[s.head]
			s.head++
			if s.head == len(s.outq) {
				s.outq, s.head = s.outq[:0], 0
			}
			s.transmit(o)
			progress = true
			continue
		}
		if it, ok := s.events.Min(); ok && it.At <= s.now {
			s.events.Pop()
			s.handle(it.Value)
			progress = true
			continue
		}
		break
	}
	return progress
}

// drainDirty takes the frames the ports wrote into the out queue, port by
// port in the order they first wrote.
func (s *Segment) drainDirty() {
	s.mu.Lock()
	for len(s.dirty) > 0 {
		batch := s.dirty
		s.dirty = nil
		for _, id := range batch {
			s.ports[id].dirty = false
		}
		s.mu.Unlock()
		for _, id := range batch {
			s.drainOne(s.ports[id])
		}
		s.mu.Lock()
		if s.dirty == nil {
			s.dirty = batch[:0]
		}
	}
	s.mu.Unlock()
}

// drainOne reads p's endpoint queue into the out queue, with p's tag.
func (s *Segment) drainOne(p *Port) {
	if p.ep == nil {
		return
	}
	if p.cfg.QueueSize > 0 && p.ep.NumQueued() >= p.cfg.QueueSize {
		s.stats.QueueFull++
	}
	for pkt := p.ep.Read(); pkt != nil; pkt = p.ep.Read() {
		id := s.pool.alloc()
		s.pool.bufs[id] = appendPacket(s.pool.bufs[id], pkt)
		pkt.DecRef()
		s.outq = append(s.outq, outFrame{slot: id, from: p.id, tag: p.tag})
	}
	p.tag = 0
}

// appendPacket appends the bytes of an outbound packet (headers included)
// to b without allocating.
func appendPacket(b []byte, pkt *gvstack.PacketBuffer) []byte {
	vl, off := pkt.AsViewList()
	for v := vl.Front(); v != nil; v = v.Next() {
		d := v.AsSlice()
		if off >= len(d) {
			off -= len(d)
			continue
		}
		b = append(b, d[off:]...)
		off = 0
	}
	return b
}

// transmit puts a frame on the segment: it records it, applies the link
// model and delivers it now or schedules its delivery.
func (s *Segment) transmit(o outFrame) {
	b := s.pool.bufs[o.slot]
	var sender *Port
	var echo float64
	if o.from >= 0 {
		sender = s.ports[o.from]
		if !sender.up || sender.ep == nil {
			s.stats.TxLinkDown++
			s.pool.unref(o.slot)
			return
		}
		echo = sender.cfg.Echo
	} else {
		sender = s.raws[^o.from]
	}
	group := sender.group
	fseq := s.frameSeq
	s.frameSeq++
	s.stats.Frames++
	s.capture(b)
	if s.cfg.OnTransmit != nil {
		s.cfg.OnTransmit(Frame{At: s.Now(), From: sender, Bytes: b, Tag: o.tag})
	}
	if s.ideal {
		s.deliver(b, o.from, group, fseq, 0)
		s.pool.unref(o.slot)
		return
	}
	m := &s.link
	fh := splitmix.Derive(s.cfg.Seed, fseq, streamFrame)
	d := int64(m.Latency)
	if m.Jitter > 0 {
		d += int64(splitmix.Mix(fh+1) % uint64(m.Jitter+1))
	}
	if m.Reorder > 0 && splitmix.Unit(splitmix.Mix(fh+2)) < m.Reorder {
		d += int64(m.ReorderDelay)
		s.stats.Reordered++
	}
	if d == 0 {
		s.deliver(b, o.from, group, fseq, 0)
	} else {
		s.pool.ref(o.slot)
		s.events.Push(s.now+d, event{kind: evDeliver, slot: o.slot, from: o.from, group: group, fseq: fseq})
	}
	if m.Dup > 0 && splitmix.Unit(splitmix.Mix(fh+3)) < m.Dup {
		s.pool.ref(o.slot)
		s.events.Push(s.now+d+int64(m.DupDelay), event{kind: evDeliver, copy: 1, slot: o.slot, from: o.from, group: group, fseq: fseq})
	}
	if o.from >= 0 {
		if p := m.Echo + echo; p > 0 && splitmix.Unit(splitmix.Mix(fh+4)) < p {
			s.pool.ref(o.slot)
			s.events.Push(s.now+int64(m.EchoDelay), event{kind: evEcho, slot: o.slot, from: o.from, fseq: fseq})
		}
	}
	s.pool.unref(o.slot)
}

// handle runs one event.
func (s *Segment) handle(e event) {
	switch e.kind {
	case evDeliver:
		b := s.pool.bufs[e.slot]
		if e.copy != 0 {
			s.stats.Duplicated++
			s.capture(b)
		}
		s.deliver(b, e.from, e.group, e.fseq, e.copy)
		s.pool.unref(e.slot)
	case evEcho:
		if p := s.ports[e.from]; p.ep != nil && p.up {
			b := s.pool.bufs[e.slot]
			s.stats.Echoed++
			s.capture(b)
			s.inject(p, b)
		}
		s.pool.unref(e.slot)
	case evCall:
		s.drainDirty()
		if err := e.fn(); err != nil {
			s.fail(err)
		}
	}
}

// deliver hands a frame to the endpoint ports of partition group that it
// concerns, in index order, then to the function ports of the partition.
func (s *Segment) deliver(b []byte, from, group int32, fseq uint64, copyNo uint8) {
	rs := s.recipients(b, from, group)
	m := &s.link
	var lossKey uint64
	if m.Loss > 0 {
		lossKey = splitmix.Derive(s.cfg.Seed, fseq, streamLoss) + uint64(copyNo)
	}
	for _, r := range rs {
		if m.Loss > 0 && splitmix.Unit(splitmix.Mix(lossKey+uint64(r)*splitmix.Golden)) < m.Loss {
			s.stats.Lost++
			continue
		}
		s.inject(s.ports[r], b)
	}
	for ai, p := range s.raws {
		id := ^int32(ai)
		if p.group != group || id == from || !p.up {
			continue
		}
		if m.Loss > 0 && splitmix.Unit(splitmix.Mix(lossKey+uint64(id)*splitmix.Golden)) < m.Loss {
			s.stats.Lost++
			continue
		}
		p.recv(b)
	}
}

// inject delivers one frame to p's endpoint, which runs its stack
// synchronously, and takes whatever the stacks wrote meanwhile.
func (s *Segment) inject(p *Port, b []byte) {
	if p.cfg.OnDeliver != nil {
		p.cfg.OnDeliver(b)
	}
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	p.ep.InjectInbound(0, pkt) // the Ethernet layer reads the EtherType itself
	pkt.DecRef()
	s.stats.Deliveries++
	s.drainDirty()
}

// recipients returns the endpoint ports of partition group that frame b
// concerns, in index order, excluding the sender. The result is valid until
// the next call.
func (s *Segment) recipients(b []byte, from, group int32) []int32 {
	r := s.scratch[:0]
	x := &s.index
	switch {
	case len(b) < acd.EthernetHeaderLen:
		// Not even an Ethernet header: no NIC accepts it.
	case b[0]&1 == 0: // unicast: the NIC's own address filter
		for _, i := range x.macs[[6]byte(b[0:6])] {
			if s.canReceive(i, from, group) {
				r = append(r, i)
			}
		}
	default:
		all := true
		if x.filtered > 0 {
			if f, err := acd.DecodeFrame(b); err == nil {
				sl, sAll := x.holders(f.SenderIP)
				tl, tAll := x.holders(f.TargetIP)
				if all = sAll || tAll; !all {
					r = mergeSorted(r, sl, tl)
					if len(x.unfiltered) > 0 {
						s.scratch2 = mergeSorted(s.scratch2[:0], r, x.unfiltered)
						r = append(r[:0], s.scratch2...)
					}
					n := 0
					for _, i := range r {
						if s.canReceive(i, from, group) {
							r[n] = i
							n++
						}
					}
					r = r[:n]
				}
			}
		}
		if all {
			for i := range s.ports {
				if s.canReceive(int32(i), from, group) {
					r = append(r, int32(i))
				}
			}
		}
	}
	s.scratch = r
	return r
}

func (s *Segment) canReceive(i, from, group int32) bool {
	p := s.ports[i]
	return i != from && p.ep != nil && p.up && p.group == group
}
