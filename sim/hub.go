package sim

import (
	"net/netip"
	"slices"

	"gvisor.dev/gvisor/pkg/buffer"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// hub is the segment: the event heap, the frames in flight and the filter
// index. It has no goroutines; Sim.pump drives it.
type hub struct {
	events []event // min-heap by (at, seq)
	seq    uint64
	ops    []func() error

	pool    framePool
	outq    []outFrame // frames read from links, not yet transmitted
	outHead int
	dirty   []int32 // hosts whose queue has frames, in write order

	// ll lists, for each address 169.254.x.y (index x<<8|y), the hosts
	// that probe or hold it, in index order.
	ll       [][]int32
	macs     map[acd.MAC][]int32
	scratch  []int32
	frameSeq uint64
}

func (h *hub) init() {
	h.ll = make([][]int32, 1<<16)
	h.macs = make(map[acd.MAC][]int32)
}

// event kinds.
type evKind uint8

const (
	evDeliver    evKind = iota + 1 // a frame reaches its partition
	evEcho                         // a frame comes back to its sender
	evBoot                         // a host boots
	evOp                           // a scheduled operation
	evActorTimer                   // an actor's timer
)

// event is an entry of the hub's heap. Entries are values (no allocation
// per event); ties are broken by seq, the insertion order.
type event struct {
	at    int64
	seq   uint64
	fseq  uint64 // frame number (deliver, echo)
	token int64  // actor timer token
	kind  evKind
	copy  uint8 // 0: original, 1: duplicate
	slot  int32 // frame (deliver, echo)
	from  int32 // sender: host index, or ^actor index
	group int32 // partition the frame was sent in
	arg   int32 // boot: host; op: op id; actor timer: actor
}

func (h *hub) push(e event) {
	h.seq++
	e.seq = h.seq
	h.events = append(h.events, e)
	q := h.events
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !evLess(&q[i], &q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *hub) pop() event {
	q := h.events
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && evLess(&q[r], &q[l]) {
			m = r
		}
		if !evLess(&q[m], &q[i]) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	h.events = q
	return top
}

func evLess(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// framePool holds frame bytes in reusable, reference-counted slots, so that
// the hub does not allocate per frame once warm.
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

// outFrame is a frame read from a link or made by an actor, waiting to go
// on the segment.
type outFrame struct {
	slot  int32
	from  int32
	flags uint8
}

// index and unindex maintain the filter index.
func (h *hub) index(a netip.Addr, host int32) {
	k := llKey(a)
	l := h.ll[k]
	i, _ := slices.BinarySearch(l, host)
	h.ll[k] = slices.Insert(l, i, host)
}

func (h *hub) unindex(a netip.Addr, host int32) {
	k := llKey(a)
	l := h.ll[k]
	if i, ok := slices.BinarySearch(l, host); ok {
		h.ll[k] = slices.Delete(l, i, i+1)
	}
}

func llKey(a netip.Addr) int {
	b := a.As4()
	return int(b[2])<<8 | int(b[3])
}

func (s *Sim) addMAC(h *host) {
	l := s.macs[h.mac]
	i, _ := slices.BinarySearch(l, h.idx)
	s.macs[h.mac] = slices.Insert(l, i, h.idx)
}

func (s *Sim) delMAC(h *host) {
	l := s.macs[h.mac]
	if i, ok := slices.BinarySearch(l, h.idx); ok {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(s.macs, h.mac)
	} else {
		s.macs[h.mac] = l
	}
}

// pump does everything that is due now: it drains the hosts' link queues,
// puts their frames on the segment, and handles the hub events due. It
// reports whether it did anything.
func (s *Sim) pump() bool {
	progress := false
	for s.err == nil {
		s.drainDirty()
		if s.outHead < len(s.outq) {
			o := s.outq[s.outHead]
			s.outHead++
			if s.outHead == len(s.outq) {
				s.outq, s.outHead = s.outq[:0], 0
			}
			s.transmit(o)
			progress = true
			continue
		}
		if len(s.events) > 0 && s.events[0].at <= s.now {
			s.handle(s.pop())
			progress = true
			continue
		}
		break
	}
	return progress
}

// drainDirty moves the frames the hosts wrote into the out queue, host by
// host in the order they wrote.
func (s *Sim) drainDirty() {
	for i := 0; i < len(s.dirty); i++ {
		h := s.hosts[s.dirty[i]]
		h.dirty = false
		s.drainOne(h)
	}
	s.dirty = s.dirty[:0]
}

// drainOne reads h's link queue into the out queue. An announcement that
// follows a DEFEND event of the same step is marked as a defence.
func (s *Sim) drainOne(h *host) {
	if h.ep == nil {
		return
	}
	if h.ep.NumQueued() >= s.cfg.QueueSize {
		s.ctr.queueFull++
	}
	for pkt := h.ep.Read(); pkt != nil; pkt = h.ep.Read() {
		id := s.pool.alloc()
		s.pool.bufs[id] = appendPacket(s.pool.bufs[id], pkt)
		pkt.DecRef()
		var flags uint8
		if h.defends > 0 {
			if f, err := acd.DecodeFrame(s.pool.bufs[id]); err == nil && f.IsAnnouncement() {
				flags |= txDefence
				h.defends--
			}
		}
		s.outq = append(s.outq, outFrame{slot: id, from: h.idx, flags: flags})
	}
	h.defends = 0
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
func (s *Sim) transmit(o outFrame) {
	b := s.pool.bufs[o.slot]
	var group int32
	var h *host
	if o.from >= 0 {
		h = s.hosts[o.from]
		if !h.linkUp || !h.booted {
			s.ctr.txLinkDown++
			s.pool.unref(o.slot)
			return
		}
		group = h.group
	} else {
		group = s.actors[^o.from].group
	}
	fseq := s.frameSeq
	s.frameSeq++
	s.logTx(b, o.from, o.flags, h)
	if s.ideal {
		s.deliver(b, o.from, group, fseq, 0)
		s.pool.unref(o.slot)
		return
	}
	m := &s.link
	fh := derive(s.cfg.Seed, fseq, streamFrame)
	d := int64(m.Latency)
	if m.Jitter > 0 {
		d += int64(mix64(fh+1) % uint64(m.Jitter+1))
	}
	if m.Reorder > 0 && unit(mix64(fh+2)) < m.Reorder {
		d += int64(m.ReorderDelay)
		s.ctr.reordered++
	}
	if d == 0 {
		s.deliver(b, o.from, group, fseq, 0)
	} else {
		s.pool.ref(o.slot)
		s.push(event{at: s.now + d, kind: evDeliver, slot: o.slot, from: o.from, group: group, fseq: fseq})
	}
	if m.Dup > 0 && unit(mix64(fh+3)) < m.Dup {
		s.pool.ref(o.slot)
		s.push(event{at: s.now + d + int64(m.DupDelay), kind: evDeliver, copy: 1, slot: o.slot, from: o.from, group: group, fseq: fseq})
	}
	if h != nil {
		if p := m.Echo + h.cfg.Echo; p > 0 && unit(mix64(fh+4)) < p {
			s.pool.ref(o.slot)
			s.push(event{at: s.now + int64(m.EchoDelay), kind: evEcho, slot: o.slot, from: o.from, fseq: fseq})
		}
	}
	s.pool.unref(o.slot)
}

// handle runs one hub event.
func (s *Sim) handle(e event) {
	switch e.kind {
	case evDeliver:
		b := s.pool.bufs[e.slot]
		if e.copy != 0 {
			s.ctr.duplicated++
			s.pcapWrite(b)
		}
		s.deliver(b, e.from, e.group, e.fseq, e.copy)
		s.pool.unref(e.slot)
	case evEcho:
		h := s.hosts[e.from]
		if h.booted && h.linkUp {
			b := s.pool.bufs[e.slot]
			s.ctr.echoed++
			s.pcapWrite(b)
			s.inject(h, b)
		}
		s.pool.unref(e.slot)
	case evBoot:
		if h := s.hosts[e.arg]; !h.booted { // a restart may have booted it already
			if err := s.boot(h); err != nil && s.err == nil {
				s.err = err
			}
		}
		if s.cfg.Progress != nil && s.boots&1023 == 0 {
			s.maybeProgress(false)
		}
	case evOp:
		f := s.ops[e.arg]
		s.ops[e.arg] = nil
		s.drainDirty()
		if err := f(); err != nil && s.err == nil {
			s.err = err
		}
	case evActorTimer:
		s.actors[e.arg].timer(s, e.token)
	}
}

// deliver hands a frame to the hosts (and actors) of partition group that
// it concerns, in index order, then to the actors of the partition.
func (s *Sim) deliver(b []byte, from, group int32, fseq uint64, copyNo uint8) {
	rs := s.recipients(b, from, group)
	m := &s.link
	var lossKey uint64
	if m.Loss > 0 {
		lossKey = derive(s.cfg.Seed, fseq, streamLoss) + uint64(copyNo)
	}
	for _, r := range rs {
		if m.Loss > 0 && unit(mix64(lossKey+uint64(r)*golden)) < m.Loss {
			s.ctr.lost++
			continue
		}
		s.inject(s.hosts[r], b)
	}
	for ai, a := range s.actors {
		if a.group != group || int32(^ai) == from {
			continue
		}
		if m.Loss > 0 && unit(mix64(lossKey+uint64(^int32(ai))*golden)) < m.Loss {
			s.ctr.lost++
			continue
		}
		a.receive(s, b)
	}
}

// inject delivers one frame to h's link, runs its netstack synchronously,
// and collects whatever it sent in reply.
func (s *Sim) inject(h *host, b []byte) {
	if h.traced {
		s.trace.frame(s.now, h, "rx", b)
	}
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	h.ep.InjectInbound(0, pkt) // the Ethernet layer reads the EtherType itself
	pkt.DecRef()
	s.ctr.deliveries++
	s.drainDirty()
}

// recipients returns the hosts of partition group that frame b concerns,
// in index order, excluding the sender. The result is valid until the
// next call.
func (s *Sim) recipients(b []byte, from, group int32) []int32 {
	r := s.scratch[:0]
	switch {
	case len(b) < acd.EthernetHeaderLen:
		// Not even an Ethernet header: no NIC accepts it.
	case b[0]&1 == 0: // unicast: the NIC's own address filter
		for _, i := range s.macs[acd.MAC(b[0:6])] {
			if s.canReceive(i, from, group) {
				r = append(r, i)
			}
		}
	default:
		all := true
		if !s.cfg.Unfiltered {
			if f, err := acd.DecodeFrame(b); err == nil {
				sl, sAll := s.holders(f.SenderIP)
				tl, tAll := s.holders(f.TargetIP)
				if all = sAll || tAll; !all {
					r = mergeSorted(r, sl, tl)
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
			for i := range s.hosts {
				if s.canReceive(int32(i), from, group) {
					r = append(r, int32(i))
				}
			}
		}
	}
	s.scratch = r
	return r
}

// holders returns the hosts that probe or hold a. all is true when the
// filter cannot tell (a is neither 0.0.0.0 nor a usable link-local
// address: subnet broadcasts, reserved or routable addresses), and the
// frame must go to everyone.
func (s *Sim) holders(a netip.Addr) (list []int32, all bool) {
	if a == zeroAddr {
		return nil, false
	}
	if autoip.InRange(a) {
		return s.ll[llKey(a)], false
	}
	return nil, true
}

var zeroAddr = netip.AddrFrom4([4]byte{})

func (s *Sim) canReceive(i, from, group int32) bool {
	h := s.hosts[i]
	return i != from && h.booted && h.linkUp && h.group == group
}

// mergeSorted appends the sorted union of a and b to dst.
func mergeSorted(dst, a, b []int32) []int32 {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			dst = append(dst, a[i])
			i++
		case i >= len(a) || b[j] < a[i]:
			dst = append(dst, b[j])
			j++
		default:
			dst = append(dst, a[i])
			i++
			j++
		}
	}
	return dst
}

// send queues a frame made by actor ai.
func (s *Sim) send(ai int, b []byte) {
	s.outq = append(s.outq, outFrame{slot: s.pool.put(b), from: int32(^ai)})
}
