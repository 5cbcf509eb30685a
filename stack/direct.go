package stack

import (
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxDirectQueue bounds the packets held for one destination until its
// batch is written; more are dropped (and counted in DirectDropped), as
// netstack's own neighbour queue drops. It is above what TCP's default
// send buffer (1 MiB, about 700 full segments) can have in flight, so a
// bulk transfer loses nothing here.
const maxDirectQueue = 1024

// directSender sends IPv4 packets with a link-local source or destination
// that netstack addressed to a gateway straight to their destination
// instead: RFC 3927 §2.6.2 "the host MUST ARP for the destination address
// and then send its datagram with an IPv4 Link-Local source address
// directly to its destination on the same physical link. The host MUST NOT
// send the packet to any router for forwarding" (R28).
//
// Packets are sent in the order netstack wrote them, per destination: one
// destination has at most one batch in flight (resolve, then write all that
// is queued), and packets that arrive meanwhile wait for the next batch.
// The work is done from clock callbacks, never on netstack's send path
// (which may hold locks a synchronous link's answer needs) nor inside
// gVisor's resolution callback (run with the neighbour entry locked).
type directSender struct {
	c *Client

	mu    sync.Mutex
	dests map[tcpip.Address]*directQueue
}

// directQueue is one destination's packets, in order.
type directQueue struct {
	frames [][]byte
	// busy: a batch is being resolved or written; new frames wait.
	busy bool
	// resolved, mac, failed: the batch's resolution result, once known.
	resolved, failed bool
	mac              tcpip.LinkAddress
}

func (d *directSender) send(frame []byte) {
	dst := header.IPv4(frame[header.EthernetMinimumSize:]).DestinationAddress()
	d.mu.Lock()
	if d.dests == nil {
		d.dests = make(map[tcpip.Address]*directQueue)
	}
	q := d.dests[dst]
	if q == nil {
		q = &directQueue{}
		d.dests[dst] = q
	}
	if len(q.frames) >= maxDirectQueue {
		d.mu.Unlock()
		d.c.directDrops.Add(1)
		return
	}
	q.frames = append(q.frames, frame)
	start := !q.busy
	q.busy = true
	d.mu.Unlock()
	if start {
		d.c.clock.AfterFunc(0, func() { d.resolve(dst, frame) })
	}
}

// resolve asks netstack for dst's link address; the answer (at once or
// after ARP) schedules the batch's write. first is the batch's first
// packet, whose source is the local address to resolve from.
func (d *directSender) resolve(dst tcpip.Address, first []byte) {
	src := header.IPv4(first[header.EthernetMinimumSize:]).SourceAddress()
	err := d.c.s.GetLinkAddress(d.c.nic, dst, src, ipv4.ProtocolNumber, func(r gvstack.LinkResolutionResult) {
		d.result(dst, r.LinkAddress, r.Err != nil)
	})
	if err != nil {
		if _, pending := err.(*tcpip.ErrWouldBlock); !pending {
			d.result(dst, "", true)
		}
	}
}

// result records a resolution and schedules the write. It may run inside
// gVisor's neighbour code, so it does no I/O itself.
func (d *directSender) result(dst tcpip.Address, mac tcpip.LinkAddress, failed bool) {
	d.mu.Lock()
	q := d.dests[dst]
	if q == nil || !q.busy || q.resolved {
		d.mu.Unlock()
		return
	}
	q.resolved, q.failed, q.mac = true, failed, mac
	d.mu.Unlock()
	d.c.clock.AfterFunc(0, func() { d.flush(dst) })
}

// flush writes (or, if resolution failed, drops) every packet queued for
// dst, in order, then starts the next batch if more came meanwhile.
func (d *directSender) flush(dst tcpip.Address) {
	d.mu.Lock()
	q := d.dests[dst]
	if q == nil || !q.resolved {
		d.mu.Unlock()
		return
	}
	frames, mac, failed := q.frames, q.mac, q.failed
	q.frames, q.resolved, q.failed, q.mac = nil, false, false, ""
	d.mu.Unlock()

	if failed {
		d.c.directDrops.Add(uint64(len(frames)))
	} else {
		for _, f := range frames {
			d.write(f, mac)
		}
	}

	d.mu.Lock()
	var next []byte
	if len(q.frames) > 0 {
		next = q.frames[0]
	} else {
		q.busy = false
		delete(d.dests, dst)
	}
	d.mu.Unlock()
	if next != nil {
		d.c.clock.AfterFunc(0, func() { d.resolve(dst, next) })
	}
}

func (d *directSender) write(frame []byte, mac tcpip.LinkAddress) {
	copy(frame[:header.EthernetAddressSize], mac)
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	if n, err := d.c.shim.Endpoint.WritePackets(l); err != nil || n == 0 {
		d.c.directDrops.Add(1)
	}
	pkt.DecRef()
}
