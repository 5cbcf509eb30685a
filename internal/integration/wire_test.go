package integration

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/netns"
)

// wire is an AF_PACKET socket on the kernel side of a TAP: it sees every
// frame the netstack sends and can put arbitrary frames on the wire towards
// the netstack, from any source MAC.
type wire struct {
	fd      int
	ifindex int
	mac     acd.MAC // the kernel side's own MAC

	mu     sync.Mutex
	frames []seen
	stop   chan struct{}
	done   chan struct{}
}

// seen is one frame the netstack sent, with when the wire saw it.
type seen struct {
	at    time.Time
	bytes []byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openWire opens the socket inside ns on interface ifname and starts
// capturing.
func openWire(t testing.TB, ns *netns.NS, ifname string) *wire {
	t.Helper()
	w := &wire{stop: make(chan struct{}), done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		copy(w.mac[:], ifi.HardwareAddr)
		w.ifindex = ifi.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		w.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("open wire on %s: %v", ifname, err)
	}
	go w.capture()
	t.Cleanup(w.close)
	return w
}

func (w *wire) capture() {
	defer close(w.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the kernel side's own transmissions
		}
		f := append([]byte(nil), buf[:n]...)
		w.mu.Lock()
		w.frames = append(w.frames, seen{at: time.Now(), bytes: f})
		w.mu.Unlock()
	}
}

// stopCapture stops recording frames; the wire can still send.
func (w *wire) stopCapture() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	<-w.done
}

func (w *wire) close() {
	w.stopCapture()
	unix.Close(w.fd)
}

// send puts frame on the wire towards the netstack.
func (w *wire) send(frame []byte) error {
	var dst [8]byte
	copy(dst[:], frame[:6])
	return unix.Sendto(w.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: w.ifindex, Halen: 6, Addr: dst})
}

// sendARP sends p in a frame from src to dst.
func (w *wire) sendARP(t testing.TB, dst, src acd.MAC, p acd.Packet) {
	t.Helper()
	b := acd.Frame{Dst: dst, Src: src, Packet: p}.AppendBinary(nil)
	if err := w.send(b); err != nil {
		t.Fatalf("send ARP on the wire: %v", err)
	}
}

// arpFrames returns the decoded ARP frames the netstack has sent so far.
func (w *wire) arpFrames() []acd.Frame {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []acd.Frame
	for _, s := range w.frames {
		if f, err := acd.DecodeFrame(s.bytes); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// waitARP waits until some captured ARP frame satisfies match.
func (w *wire) waitARP(t testing.TB, what string, timeout time.Duration, match func(acd.Frame) bool) acd.Frame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, f := range w.arpFrames() {
			if match(f) {
				return f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no ARP frame on the wire within %v: %s; saw %d ARP frames", timeout, what, len(w.arpFrames()))
	return acd.Frame{}
}

// listenTCP listens on a:port; call it inside ns.Do so the socket lives in
// the namespace.
func listenTCP(a netip.Addr, port uint16) (net.Listener, error) {
	return net.Listen("tcp", netip.AddrPortFrom(a, port).String())
}
