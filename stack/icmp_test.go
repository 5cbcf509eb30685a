package stack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/autoip-project/autoip/autoip/acd"
)

// ping sends one ICMP echo request from host a to dst through a gVisor
// ICMP endpoint, runs the segment for d and returns the echo reply's
// payload, if one arrived. Non-blocking throughout: the hub runs on this
// goroutine.
func ping(t *testing.T, h *hub, a *host, dst netip.Addr, payload []byte, d time.Duration) ([]byte, bool) {
	t.Helper()
	var wq waiter.Queue
	ep, err := a.s.GVisor().NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if err != nil {
		t.Fatalf("NewEndpoint: %v", err)
	}
	defer ep.Close()
	req := make([]byte, header.ICMPv4MinimumSize+len(payload))
	hdr := header.ICMPv4(req)
	hdr.SetType(header.ICMPv4Echo)
	hdr.SetSequence(1)
	copy(req[header.ICMPv4MinimumSize:], payload)
	var r bytes.Reader
	r.Reset(req)
	to := tcpip.FullAddress{NIC: a.s.NIC(), Addr: tcpipAddr(dst)}
	if _, err := ep.Write(&r, tcpip.WriteOptions{To: &to}); err != nil {
		t.Fatalf("echo request write: %v", err)
	}
	h.runFor(d)
	var out bytes.Buffer
	res, rerr := ep.Read(&out, tcpip.ReadOptions{})
	if rerr != nil {
		if _, ok := rerr.(*tcpip.ErrWouldBlock); ok {
			return nil, false
		}
		t.Fatalf("read: %v", rerr)
	}
	reply := header.ICMPv4(out.Bytes()[:res.Count])
	if reply.Type() != header.ICMPv4EchoReply {
		t.Fatalf("got ICMP type %v, want echo reply", reply.Type())
	}
	return reply.Payload(), true
}

// TestR23_ICMPEchoOverHub: two bound hosts reach each other: ARP
// resolution (with the Shim's broadcast replies) and an ICMP echo round
// trip between the claimed addresses, on-link.
func TestR23_ICMPEchoOverHub(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	b := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	mark := len(h.trace)
	got, ok := ping(t, h, a, b.bound(), []byte("autoip"), time.Second)
	if !ok {
		t.Fatalf("no echo reply from %v:\n%s", b.bound(), h.dump(mark))
	}
	if string(got) != "autoip" {
		t.Errorf("echo payload %q", got)
	}
	// On the wire: a's ARP request for b (source a's link-local address),
	// b's broadcast reply, then the echo and its reply between the
	// link-local addresses.
	var sawReq, sawReply, sawEcho, sawEchoReply bool
	for _, f := range h.trace[mark:] {
		if af, ok := f.arp(); ok {
			switch {
			case f.From == a.idx && af.Op == acd.OpRequest && af.TargetIP == b.bound():
				sawReq = af.SenderIP == a.bound()
			case f.From == b.idx && af.Op == acd.OpReply && af.SenderIP == b.bound():
				sawReply = af.Dst == acd.BroadcastMAC
			}
			continue
		}
		if header.Ethernet(f.B).Type() != header.IPv4ProtocolNumber {
			continue
		}
		ipv4h := header.IPv4(f.B[header.EthernetMinimumSize:])
		src, dst := netip.AddrFrom4(ipv4h.SourceAddress().As4()), netip.AddrFrom4(ipv4h.DestinationAddress().As4())
		if ipv4h.Protocol() != uint8(header.ICMPv4ProtocolNumber) {
			continue
		}
		switch header.ICMPv4(ipv4h.Payload()).Type() {
		case header.ICMPv4Echo:
			sawEcho = src == a.bound() && dst == b.bound()
		case header.ICMPv4EchoReply:
			sawEchoReply = src == b.bound() && dst == a.bound()
		}
	}
	if !sawReq || !sawReply || !sawEcho || !sawEchoReply {
		t.Errorf("request %v, broadcast reply %v, echo %v, echo reply %v:\n%s", sawReq, sawReply, sawEcho, sawEchoReply, h.dump(mark))
	}
	// And back the other way, with a's entry now known to b.
	if got, ok := ping(t, h, b, a.bound(), []byte("back"), time.Second); !ok || string(got) != "back" {
		t.Errorf("b -> a: %q, %v", got, ok)
	}
}

// TestUDPOverHub: a UDP datagram between the link-local addresses of two
// hosts, written and read without blocking.
func TestUDPOverHub(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	b := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	var wqa, wqb waiter.Queue
	ea, err := a.s.GVisor().NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wqa)
	if err != nil {
		t.Fatal(err)
	}
	defer ea.Close()
	eb, err := b.s.GVisor().NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wqb)
	if err != nil {
		t.Fatal(err)
	}
	defer eb.Close()
	if err := eb.Bind(tcpip.FullAddress{Addr: tcpipAddr(b.bound()), Port: 4242}); err != nil {
		t.Fatal(err)
	}
	var r bytes.Reader
	r.Reset([]byte("hello link-local"))
	to := tcpip.FullAddress{Addr: tcpipAddr(b.bound()), Port: 4242}
	if _, err := ea.Write(&r, tcpip.WriteOptions{To: &to}); err != nil {
		t.Fatal(err)
	}
	h.runFor(time.Second)
	var out bytes.Buffer
	res, rerr := eb.Read(&out, tcpip.ReadOptions{NeedRemoteAddr: true})
	if rerr != nil {
		t.Fatalf("read: %v", rerr)
	}
	if out.String() != "hello link-local" || res.RemoteAddr.Addr != tcpipAddr(a.bound()) {
		t.Errorf("got %q from %v, want it from %v", out.String(), res.RemoteAddr.Addr, a.bound())
	}
}
