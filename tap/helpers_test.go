//go:build linux

package tap

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/internal/netns"
)

var (
	ourMAC   = tcpip.LinkAddress("\x02\x00\x00\x00\xaa\x01")
	otherMAC = tcpip.LinkAddress("\x02\x00\x00\x00\xbb\x02")
	ourIP    = netip.MustParseAddr("169.254.77.1")
	kernIP   = netip.MustParseAddr("169.254.77.2")
)

// testEtherType is an IEEE "local experimental" EtherType used to mark test
// frames.
const testEtherType = 0x88b5

// arpFrame builds an Ethernet+ARP frame.
func arpFrame(op header.ARPOp, src, dst, sha tcpip.LinkAddress, spa netip.Addr, tha tcpip.LinkAddress, tpa netip.Addr) []byte {
	b := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: src, DstAddr: dst, Type: header.ARPProtocolNumber})
	a := header.ARP(b[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	copy(a.HardwareAddressSender(), sha)
	copy(a.ProtocolAddressSender(), spa.AsSlice())
	copy(a.HardwareAddressTarget(), tha)
	copy(a.ProtocolAddressTarget(), tpa.AsSlice())
	return b
}

// arpRequestFromUs asks the kernel side for kernIP's MAC.
func arpRequestFromUs() []byte {
	return arpFrame(header.ARPRequest, ourMAC, header.EthernetBroadcastAddress, ourMAC, ourIP, "\x00\x00\x00\x00\x00\x00", kernIP)
}

// isKernelARPReply reports whether frame is the kernel's ARP reply to
// arpRequestFromUs.
func isKernelARPReply(frame []byte) bool {
	if len(frame) < header.EthernetMinimumSize+header.ARPSize {
		return false
	}
	eth := header.Ethernet(frame)
	if eth.Type() != header.ARPProtocolNumber || eth.DestinationAddress() != ourMAC {
		return false
	}
	a := header.ARP(frame[header.EthernetMinimumSize:])
	return a.IsValid() && a.Op() == header.ARPReply &&
		netip.AddrFrom4([4]byte(a.ProtocolAddressSender())) == kernIP &&
		tcpip.LinkAddress(a.HardwareAddressTarget()) == ourMAC
}

// markedFrame builds a frame with testEtherType whose payload starts with id.
func markedFrame(dst, src tcpip.LinkAddress, id byte) []byte {
	b := make([]byte, 60)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: src, DstAddr: dst, Type: testEtherType})
	b[header.EthernetMinimumSize] = id
	return b
}

// setupKernelSide brings the kernel side of TAP name up with kernIP/16.
func setupKernelSide(t *testing.T, ns *netns.NS, name string) {
	t.Helper()
	ns.IP(t, "link", "set", name, "up")
	ns.IP(t, "addr", "add", kernIP.String()+"/16", "dev", name)
}

// newNS creates a test namespace with IPv6 disabled (no RS/MLD noise).
func newNS(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t, "aiptap")
	ns.DisableIPv6(t)
	return ns
}

// openInNS opens a Device inside ns and closes it at cleanup.
func openInNS(t *testing.T, ns *netns.NS, cfg Config) *Device {
	t.Helper()
	var d *Device
	if err := ns.Do(func() (err error) { d, err = Open(cfg); return err }); err != nil {
		t.Fatalf("Open(%+v) in %s: %v", cfg, ns.Name(), err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newLinkInNS creates a Link inside ns and closes it at cleanup.
func newLinkInNS(t *testing.T, ns *netns.NS, cfg LinkConfig) *Link {
	t.Helper()
	var l *Link
	if err := ns.Do(func() (err error) { l, err = NewLink(cfg); return err }); err != nil {
		t.Fatalf("NewLink in %s: %v", ns.Name(), err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// existsInNS reports whether interface name exists in ns.
func existsInNS(t *testing.T, ns *netns.NS, name string) bool {
	t.Helper()
	var ok bool
	if err := ns.Do(func() error { ok = Exists(name); return nil }); err != nil {
		t.Fatal(err)
	}
	return ok
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSender is a kernel-side AF_PACKET socket on one interface of a
// namespace: frames it sends are transmitted by the kernel on that
// interface, i.e. for a TAP they are what the TAP fd reads.
type packetSender struct {
	fd int
	to unix.SockaddrLinklayer
}

func newPacketSender(t testing.TB, ns *netns.NS, ifname string) *packetSender {
	t.Helper()
	ps := &packetSender{fd: -1}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		// Protocol 0: the socket sends but receives nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ps.fd = fd
		ps.to = unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.Name(), err)
	}
	t.Cleanup(func() { unix.Close(ps.fd) })
	return ps
}

func (ps *packetSender) send(frame []byte) error {
	to := ps.to
	return unix.Sendto(ps.fd, frame, 0, &to)
}

// recorder is a stack.NetworkDispatcher that keeps copies of the frames
// delivered to it (the whole frame when attached to the channel endpoint
// directly).
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	v := pkt.ToView()
	b := append([]byte(nil), v.AsSlice()...)
	v.Release()
	r.mu.Lock()
	r.frames = append(r.frames, b)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// find returns the first recorded frame for which match is true.
func (r *recorder) find(match func([]byte) bool) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.frames {
		if match(f) {
			return f
		}
	}
	return nil
}

func (r *recorder) count(match func([]byte) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.frames {
		if match(f) {
			n++
		}
	}
	return n
}

// writeFrame writes a raw Ethernet frame through the Link's endpoint, as a
// stack (through ethernet.Endpoint) would.
func writeFrame(t *testing.T, l *Link, frame []byte) {
	t.Helper()
	if n, err := tryWrite(l, frame); err != nil || n != 1 {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
}

// writeRefused writes frame and wants the Link to refuse it, as it must
// while there is no usable TAP: the caller learns the frame was not sent.
func writeRefused(t *testing.T, l *Link, frame []byte) {
	t.Helper()
	n, err := tryWrite(l, frame)
	if _, ok := err.(*tcpip.ErrClosedForSend); !ok || n != 0 {
		t.Fatalf("WritePackets while the TAP is unusable = %d, %v; want 0, ErrClosedForSend", n, err)
	}
}

func tryWrite(l *Link, frame []byte) (int, tcpip.Error) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	defer pkt.DecRef()
	var list stack.PacketBufferList
	list.PushBack(pkt)
	return l.Endpoint().WritePackets(list)
}

// waitFor polls cond until it is true or timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkEvents collects OnLinkChange calls.
type linkEvents struct {
	ch chan bool
}

func newLinkEvents() *linkEvents { return &linkEvents{ch: make(chan bool, 64)} }

func (e *linkEvents) fn(up bool) { e.ch <- up }

// expect waits for the next OnLinkChange call and checks its value.
func (e *linkEvents) expect(t *testing.T, want bool, timeout time.Duration) {
	t.Helper()
	select {
	case got := <-e.ch:
		if got != want {
			t.Fatalf("OnLinkChange(%v), want OnLinkChange(%v)", got, want)
		}
	case <-time.After(timeout):
		t.Fatalf("no OnLinkChange(%v) within %v", want, timeout)
	}
}

// none checks that no OnLinkChange call arrives within d.
func (e *linkEvents) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-e.ch:
		t.Fatalf("unexpected OnLinkChange(%v)", got)
	case <-time.After(d):
	}
}
