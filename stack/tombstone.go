package stack

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Resetting the stack's TCP endpoints on an address that is given up
// (resetConnections) misses a connection whose handshake netstack has not
// finished processing: the endpoint does not exist yet, and once the
// address is gone netstack drops the peer's segments silently, so the peer
// hangs. For a short while after an address is given up, the Shim
// therefore answers a TCP segment of a connection that existed (one with
// an ACK) still sent to it (to our MAC) with a RST (RFC 793 §3.4, reset
// generation for a closed port), as RFC 3927 §2.5 asks: "hosts SHOULD
// actively attempt to reset any existing connections using that address".
// A new connection attempt (a SYN without ACK) gets no answer: the address
// is no longer ours to use.

// tombstoneFor is how long a given-up address is answered with RSTs.
const tombstoneFor = 10 * time.Second

// tombstones are the addresses a Shim answers with RSTs.
type tombstones struct {
	n  atomic.Int32 // len(m), read on every inbound IPv4 packet
	mu sync.Mutex
	m  map[netip.Addr]uint64 // address -> generation
	g  uint64
}

// add starts answering for a and returns the generation to pass to remove.
func (t *tombstones) add(a netip.Addr) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[netip.Addr]uint64)
	}
	t.g++
	t.m[a] = t.g
	t.n.Store(int32(len(t.m)))
	return t.g
}

// remove stops answering for a unless it was added again since gen.
func (t *tombstones) remove(a netip.Addr, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[a] == gen {
		delete(t.m, a)
	}
	t.n.Store(int32(len(t.m)))
}

// drop stops answering for a at once (it is ours again).
func (t *tombstones) drop(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, a)
	t.n.Store(int32(len(t.m)))
}

func (t *tombstones) has(a netip.Addr) bool {
	if t.n.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[a]
	return ok
}

// tombstone answers a for tombstoneFor from now, unless the link is down
// (nothing would reach us, and nothing could be answered).
func (c *Client) tombstone(a netip.Addr) {
	c.mu.Lock()
	up := c.linkUp
	c.mu.Unlock()
	if !up {
		return
	}
	gen := c.shim.dead.add(a)
	c.clock.AfterFunc(tombstoneFor, func() { c.shim.dead.remove(a, gen) })
}

// resetDead answers frame (Ethernet header included), if it is a TCP
// segment to a given-up address, with a RST, and reports whether it did.
func (s *Shim) resetDead(frame []byte) bool {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.TCPMinimumSize {
		return false
	}
	eth := header.Ethernet(frame)
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if ip.TransportProtocol() != header.TCPProtocolNumber || !ip.IsValid(len(ip)) || ip.FragmentOffset() != 0 || ip.More() {
		return false
	}
	dst := netip.AddrFrom4(ip.DestinationAddress().As4())
	if eth.DestinationAddress() != s.LinkAddress() || !s.dead.has(dst) {
		return false
	}
	tcp := header.TCP(ip.Payload())
	if len(tcp) < header.TCPMinimumSize || tcp.Flags().Contains(header.TCPFlagRst) || !tcp.Flags().Contains(header.TCPFlagAck) {
		// Nothing to answer (a RST), or no connection that existed: every
		// segment of one carries an ACK but the first SYN. A new SYN is
		// left unanswered, as for any address that is not ours (RFC 3927
		// §2.5 (b): "MUST immediately cease using this address"; it may
		// already be another host's). Still not netstack's.
		return true
	}
	out := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize+header.TCPMinimumSize)
	header.Ethernet(out).Encode(&header.EthernetFields{SrcAddr: s.LinkAddress(), DstAddr: eth.SourceAddress(), Type: header.IPv4ProtocolNumber})
	rip := header.IPv4(out[header.EthernetMinimumSize:])
	src, to := ip.DestinationAddress(), ip.SourceAddress()
	rip.Encode(&header.IPv4Fields{TotalLength: header.IPv4MinimumSize + header.TCPMinimumSize, TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: to})
	rip.SetChecksum(^rip.CalculateChecksum())
	rtcp := header.TCP(rip[header.IPv4MinimumSize:])
	// RFC 793 §3.4, reset generation for a segment with ACK: <SEQ=SEG.ACK><CTL=RST>.
	rtcp.Encode(&header.TCPFields{SrcPort: tcp.DestinationPort(), DstPort: tcp.SourcePort(),
		SeqNum: tcp.AckNumber(), DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagRst})
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, to, header.TCPMinimumSize)
	rtcp.SetChecksum(^checksum.Checksum(rtcp, sum))
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(out)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	_, _ = s.Endpoint.WritePackets(l)
	pkt.DecRef()
	s.resets.Add(1)
	return true
}
