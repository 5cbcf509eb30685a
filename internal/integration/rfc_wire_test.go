package integration

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
)

// The RFC's sentences checked on the wire, from kernel peers in namespaces
// of the test's own: the netstack's TAP is a port of a bridge whose own
// address is the "router", and a second namespace on a veth of the bridge
// is a kernel host with a link-local and two routable addresses.

const (
	gatewayIP   = "10.0.0.254"     // the bridge: the application's default gateway
	gatewayLL   = "169.254.250.1"  // the bridge again, for link-local-only hosts
	peerRoutIP  = "10.0.0.2"       // the kernel peer's address in our routable subnet
	peerOffLink = "192.0.2.7"      // the kernel peer's address in no subnet of ours
	ourRoutable = "10.0.0.1/24"    // the netstack's routable address
	peerLLIP    = "169.254.77.222" // the kernel peer's link-local address
)

// segment is the bridge topology. wire captures what the netstack sends.
type segment struct {
	h        *host
	peer     *netns.NS
	wire     *wire
	bridgeHW tcpip.LinkAddress // the gateway's MAC
	peerHW   tcpip.LinkAddress // the kernel peer's MAC
}

func newSegment(t *testing.T, o hostOpts) *segment {
	t.Helper()
	netns.RequireRoot(t)
	ns := netns.New(t, "aipr")
	ns.DisableIPv6(t)
	peer := netns.New(t, "aiprp")
	peer.DisableIPv6(t)
	name := tapName("aipr")
	br, v0, v1 := tapName("aiprb"), tapName("aiprv"), tapName("aiprw")
	ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(t, "link", "add", br, "type", "bridge")
	ns.IP(t, "link", "add", v0, "type", "veth", "peer", "name", v1)
	ns.IP(t, "link", "set", v1, "netns", peer.Name())
	for _, dev := range []string{name, v0} {
		ns.IP(t, "link", "set", dev, "master", br)
		ns.IP(t, "link", "set", dev, "up")
	}
	ns.IP(t, "link", "set", br, "up")
	ns.IP(t, "addr", "add", gatewayIP+"/24", "dev", br)
	ns.IP(t, "addr", "add", gatewayLL+"/16", "dev", br)
	for _, a := range []string{peerLLIP + "/16", peerRoutIP + "/24", peerOffLink + "/24"} {
		peer.IP(t, "addr", "add", a, "dev", v1)
	}
	peer.IP(t, "link", "set", v1, "up")
	s := &segment{peer: peer, bridgeHW: linkAddrOf(t, ns, br), peerHW: linkAddrOf(t, peer, v1)}
	s.wire = openWire(t, ns, name)
	t.Cleanup(s.wire.close)
	s.h = newHost(t, ns, name, o)
	return s
}

func linkAddrOf(t *testing.T, ns *netns.NS, dev string) tcpip.LinkAddress {
	t.Helper()
	var hw net.HardwareAddr
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err == nil {
			hw = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return tcpip.LinkAddress(hw)
}

// ipFrame is one IPv4 frame the netstack sent.
type ipFrame struct {
	dstHW    tcpip.LinkAddress
	src, dst netip.Addr
}

func (w *wire) ipFrames() []ipFrame {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ipFrame
	for _, s := range w.frames {
		b := s.bytes
		if len(b) < header.EthernetMinimumSize+header.IPv4MinimumSize || header.Ethernet(b).Type() != header.IPv4ProtocolNumber {
			continue
		}
		ip := header.IPv4(b[header.EthernetMinimumSize:])
		out = append(out, ipFrame{
			dstHW: header.Ethernet(b).DestinationAddress(),
			src:   netip.AddrFrom4(ip.SourceAddress().As4()),
			dst:   netip.AddrFrom4(ip.DestinationAddress().As4()),
		})
	}
	return out
}

// noLinkLocalToGateway fails if a frame with a link-local source or
// destination went to the gateway's MAC.
func (s *segment) noLinkLocalToGateway(t *testing.T) {
	t.Helper()
	for _, f := range s.wire.ipFrames() {
		if f.dstHW == s.bridgeHW && (autoip.LinkLocalPrefix.Contains(f.src) || autoip.LinkLocalPrefix.Contains(f.dst)) {
			t.Errorf("frame %v -> %v sent to the gateway's MAC %v", f.src, f.dst, s.bridgeHW)
		}
	}
}

// waitDirect waits until the capture holds a frame from src to dst sent to
// the kernel peer's own MAC (the capture trails the wire a little).
func (s *segment) waitDirect(t *testing.T, src netip.Addr, dst string) {
	t.Helper()
	waitFor(t, 2*time.Second, "frame from "+src.String()+" to "+dst+" sent to the peer's MAC", func() bool {
		for _, f := range s.wire.ipFrames() {
			if f.src == src && f.dst.String() == dst && f.dstHW == s.peerHW {
				return true
			}
		}
		return false
	})
}

// dialPeer connects from the netstack (from local, or any address if
// invalid) to a TCP listener the kernel peer runs on to:port, and returns
// the source address the peer saw.
func (s *segment) dialPeer(t *testing.T, local netip.Addr, to string, port uint16) string {
	t.Helper()
	var l net.Listener
	if err := s.peer.Do(func() (err error) { l, err = net.Listen("tcp", net.JoinHostPort(to, itoa(port))); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			seen <- "accept: " + err.Error()
			return
		}
		seen <- c.RemoteAddr().String()
		c.Close()
	}()
	st := s.h.st
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dst := tcpip.FullAddress{NIC: st.NIC(), Addr: tcpip.AddrFrom4(netip.MustParseAddr(to).As4()), Port: port}
	var c *gonet.TCPConn
	var err error
	if local.IsValid() {
		c, err = gonet.DialTCPWithBind(ctx, st.GVisor(), tcpip.FullAddress{NIC: st.NIC(), Addr: tcpip.AddrFrom4(local.As4())}, dst, ipv4.ProtocolNumber)
	} else {
		c, err = gonet.DialContextTCP(ctx, st.GVisor(), dst, ipv4.ProtocolNumber)
	}
	if err != nil {
		t.Fatalf("netstack dial %s:%d: %v", to, port, err)
	}
	c.Close()
	return <-seen
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestR27_LinkLocalPeersOnLinkWithRoutableOnly: with only a routable
// address on the NIC (the flag form without -f suspends link-local; or
// link-local still probing), and an application default route via a
// gateway, packets to a 169.254/16 peer go straight to the peer's MAC (RFC
// 3927 §2.6.2 "This MUST be done whether the interface is configured with a
// Link-Local or a routable IPv4 address"), never to the gateway.
func TestR27_LinkLocalPeersOnLinkWithRoutableOnly(t *testing.T) {
	slow := fastTiming()
	slow.ProbeWait, slow.ProbeMin, slow.ProbeMax = time.Minute, time.Minute, time.Minute
	for _, tc := range []struct {
		name  string
		cfg   stack.ClientConfig
		state autoip.State
	}{
		{"yielding to the routable address", stack.ClientConfig{Engine: autoip.Config{YieldToRoutable: true}}, autoip.StateSuspended},
		{"while probing", stack.ClientConfig{Engine: autoip.Config{Timing: slow}}, autoip.StateWaiting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := netip.MustParsePrefix(ourRoutable)
			s := newSegment(t, hostOpts{cfg: tc.cfg, static: &p})
			s.h.st.GVisor().AddRoute(tcpip.Route{Destination: header0(), Gateway: tcpip.AddrFrom4(netip.MustParseAddr(gatewayIP).As4()), NIC: s.h.st.NIC()})
			waitFor(t, 5*time.Second, "link up", func() bool { return s.h.client().Status().State == tc.state })
			from := s.dialPeer(t, netip.Addr{}, peerLLIP, 7001)
			if !strings.HasPrefix(from, p.Addr().String()+":") {
				t.Fatalf("peer %v saw the connection from %s, want our routable %v", peerLLIP, from, p.Addr())
			}
			s.waitDirect(t, p.Addr(), peerLLIP)
			s.noLinkLocalToGateway(t)
			if st := s.h.client().Status(); st.State != tc.state || st.Configured.IsValid() {
				t.Errorf("client %v, configured %v: the test ran in the wrong state", st.State, st.Configured)
			}
		})
	}
}

// TestR28_LinkLocalSourceNeverToRouter: bound to a link-local address only,
// with a default route via a gateway, a connection from the link-local
// address to a peer outside 169.254/16 goes to the peer's own MAC after
// ARP (RFC 3927 §2.6.2: "MUST ARP for the destination address and then send
// its datagram ... directly to its destination ... MUST NOT send the packet
// to any router for forwarding").
func TestR28_LinkLocalSourceNeverToRouter(t *testing.T) {
	s := newSegment(t, hostOpts{})
	x := s.h.waitBound(10 * time.Second)
	s.h.st.GVisor().AddRoute(tcpip.Route{Destination: header0(), Gateway: tcpip.AddrFrom4(netip.MustParseAddr(gatewayLL).As4()), NIC: s.h.st.NIC()})
	from := s.dialPeer(t, x, peerOffLink, 7002)
	if !strings.HasPrefix(from, x.String()+":") {
		t.Fatalf("peer saw the connection from %s, want %v", from, x)
	}
	s.waitDirect(t, x, peerOffLink)
	s.noLinkLocalToGateway(t)
}

// TestR29_ImpossibleSenderConflictOnTheWire: an ARP announcement of our
// address whose sender hardware address is zero (then broadcast) is a
// conflict: the first is defended on the wire, the second, inside
// DEFEND_INTERVAL, makes us give the address up; the kernel then gets no
// answer for it.
func TestR29_ImpossibleSenderConflictOnTheWire(t *testing.T) {
	first := netip.MustParseAddr("169.254.29.29")
	h := newHost(t, nil, "", hostOpts{create: true, cfg: stack.ClientConfig{Engine: autoip.Config{Initial: first}}})
	w := h.kernelSide(kernLL.String() + "/16")
	if a := h.waitBound(10 * time.Second); a != first {
		t.Fatalf("bound %v, want %v", a, first)
	}
	time.Sleep(200 * time.Millisecond) // announcements done
	start := time.Now()
	w.sendARP(t, acd.BroadcastMAC, peerMAC, acd.Announcement(acd.MAC{}, first))
	w.waitARP(t, "defence of "+first.String(), 3*time.Second, func(f acd.Frame) bool {
		return f.IsAnnouncement() && f.SenderIP == first && f.SenderHW == ourMAC && len(w.arpFramesSince(start)) > 0
	})
	w.sendARP(t, acd.BroadcastMAC, peerMAC, acd.Announcement(acd.BroadcastMAC, first))
	w.waitARP(t, "a probe for another address", 5*time.Second, func(f acd.Frame) bool {
		return f.IsProbe() && f.SenderHW == ourMAC && f.TargetIP != first
	})
	out, _ := h.ns.Exec("arping", "-c", "2", "-w", "3", "-I", h.name, first.String())
	if !strings.Contains(out, "Received 0 response") {
		t.Errorf("arping %v after the second conflict still got an answer:\n%s", first, out)
	}
	if st := h.client().Status(); st.Stats.BadSender < 2 {
		t.Errorf("bad-sender count %d, want the two frames counted", st.Stats.BadSender)
	}
}

// arpFramesSince returns the ARP frames seen from t on.
func (w *wire) arpFramesSince(t time.Time) []acd.Frame {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []acd.Frame
	for _, s := range w.frames {
		if f, err := acd.DecodeFrame(s.bytes); err == nil && !s.at.Before(t) {
			out = append(out, f)
		}
	}
	return out
}

// TestR30_KernelConnectionResetOnTheWire: a kernel TCP connection to our
// link-local address gets a RST when a conflict makes us give the address
// up (RFC 3927 §2.5 "hosts SHOULD actively attempt to reset any existing
// connections using that address"), instead of hanging.
func TestR30_KernelConnectionResetOnTheWire(t *testing.T) {
	first := netip.MustParseAddr("169.254.30.30")
	h := newHost(t, nil, "", hostOpts{create: true, cfg: stack.ClientConfig{Engine: autoip.Config{Initial: first, Defend: acd.Abandon}}})
	w := h.kernelSide(kernLL.String() + "/16")
	if a := h.waitBound(10 * time.Second); a != first {
		t.Fatalf("bound %v, want %v", a, first)
	}
	ln, err := gonet.ListenTCP(h.st.GVisor(), tcpip.FullAddress{NIC: h.st.NIC(), Addr: tcpip.AddrFrom4(first.As4()), Port: 7030}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			close(accepted)
			defer c.Close()
			buf := make([]byte, 64)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}
	}()
	var kc net.Conn
	if err := h.ns.Do(func() (err error) {
		kc, err = net.DialTimeout("tcp", netip.AddrPortFrom(first, 7030).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	select { // the connection exists on our side too
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("netstack never accepted the kernel's connection")
	}
	w.sendARP(t, acd.BroadcastMAC, peerMAC, acd.Announcement(peerMAC, first))
	kc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = kc.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("kernel read after we gave %v up: %v, want connection reset; status %+v", first, err, h.client().Status())
	}
	waitFor(t, 2*time.Second, "RST from our address on the wire", func() bool { return w.sentRST(first) })
}

// sentRST reports whether the netstack sent a TCP RST from a.
func (w *wire) sentRST(a netip.Addr) bool {
	rst := false
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.frames {
		b := s.bytes
		if len(b) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.TCPMinimumSize || header.Ethernet(b).Type() != header.IPv4ProtocolNumber {
			continue
		}
		ip := header.IPv4(b[header.EthernetMinimumSize:])
		if ip.TransportProtocol() == header.TCPProtocolNumber && netip.AddrFrom4(ip.SourceAddress().As4()) == a &&
			header.TCP(ip.Payload()).Flags().Contains(header.TCPFlagRst) {
			rst = true
		}
	}
	return rst
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
