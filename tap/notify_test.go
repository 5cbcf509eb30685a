//go:build linux

package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/autoip-project/autoip/internal/netns"
)

// newBNS is newNS for this file's tests (namespaces and TAPs named aipb*).
func newBNS(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t, "aipbtap")
	ns.DisableIPv6(t)
	return ns
}

// nlLink builds one rtnetlink link message: type typ, ifindex index, and an
// IFLA_IFNAME attribute if name is not empty.
func nlLink(typ uint16, index int32, name string) []byte {
	var attrs []byte
	if name != "" {
		v := append([]byte(name), 0)
		a := make([]byte, rtaAlign(unix.SizeofRtAttr+len(v)))
		binary.NativeEndian.PutUint16(a[0:2], uint16(unix.SizeofRtAttr+len(v)))
		binary.NativeEndian.PutUint16(a[2:4], unix.IFLA_IFNAME)
		copy(a[unix.SizeofRtAttr:], v)
		// Another attribute first, so that the parser has to skip one.
		mtu := make([]byte, 8)
		binary.NativeEndian.PutUint16(mtu[0:2], 8)
		binary.NativeEndian.PutUint16(mtu[2:4], unix.IFLA_MTU)
		binary.NativeEndian.PutUint32(mtu[4:8], 1500)
		attrs = append(mtu, a...)
	}
	body := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(body[4:8], uint32(index))
	body = append(body, attrs...)
	m := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(m[0:4], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(m[4:6], typ)
	return append(m, body...)
}

func TestLinkMessageConcerns(t *testing.T) {
	cat := func(ms ...[]byte) []byte {
		var b []byte
		for _, m := range ms {
			b = append(b, m...)
		}
		return b
	}
	cases := []struct {
		name  string
		b     []byte
		index int32
		want  bool
	}{
		{"new link, our name", nlLink(unix.RTM_NEWLINK, 9, "aipt0"), 0, true},
		{"deleted, our name", nlLink(unix.RTM_DELLINK, 9, "aipt0"), 0, true},
		{"another name", nlLink(unix.RTM_NEWLINK, 9, "aipt01"), 0, false},
		{"a prefix of our name", nlLink(unix.RTM_NEWLINK, 9, "aipt"), 0, false},
		{"our index, renamed", nlLink(unix.RTM_NEWLINK, 7, "other"), 7, true},
		{"our index, no name", nlLink(unix.RTM_DELLINK, 7, ""), 7, true},
		{"index 0 means none", nlLink(unix.RTM_NEWLINK, 0, ""), 0, false},
		{"not a link message", nlLink(unix.RTM_NEWADDR, 7, "aipt0"), 7, false},
		{"ours second in a batch", cat(nlLink(unix.RTM_NEWLINK, 3, "eth0"), nlLink(unix.RTM_NEWLINK, 9, "aipt0")), 0, true},
		{"truncated", nlLink(unix.RTM_NEWLINK, 9, "aipt0")[:20], 0, false},
		{"garbage length", []byte{0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, c := range cases {
		if got := linkMessageConcerns(c.b, "aipt0", c.index); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	m := nlLink(unix.RTM_NEWLINK, 9, "aipt0")
	if a := testing.AllocsPerRun(100, func() { linkMessageConcerns(m, "aipt0", 0) }); a != 0 {
		t.Errorf("%v allocations per message", a)
	}
}

// TestLinkFollowsKernelWithoutPolling: with a CheckInterval of an hour the
// Link still notices, from the kernel's link notifications alone, the TAP
// coming up right after the open (the kernel marks it running a few ms
// after the open, after the first check), going down and up, being deleted
// and being re-created.
func TestLinkFollowsKernelWithoutPolling(t *testing.T) {
	ns := newBNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	setupKernelSide(t, ns, "aipbt0")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipbt0"}, MAC: ourMAC, CheckInterval: time.Hour,
		OnLinkChange: ev.fn, Logger: testLogger(t),
	})
	if l.polling.Load() {
		t.Fatal("the Link polls although link notifications are available")
	}
	ev.expect(t, true, stateTimeout)
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	exchangeARP(t, l, rec)

	ns.IP(t, "link", "set", "aipbt0", "down")
	ev.expect(t, false, stateTimeout)
	ns.IP(t, "link", "set", "aipbt0", "up")
	ev.expect(t, true, stateTimeout)
	ns.IP(t, "link", "del", "aipbt0")
	ev.expect(t, false, stateTimeout)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	setupKernelSide(t, ns, "aipbt0")
	ev.expect(t, true, stateTimeout)
	if s := l.Stats(); s.Reopens != 1 {
		t.Fatalf("Reopens = %d after re-creation, want 1", s.Reopens)
	}
	rec.reset()
	exchangeARP(t, l, rec)
}

// TestLinkPollingFallback: without link notifications the Link polls every
// CheckInterval and follows down/up, deletion and re-creation; right after
// an open it re-checks a TAP that is up but not yet running every 10 ms,
// so that even a CheckInterval of an hour does not leave it down.
func TestLinkPollingFallback(t *testing.T) {
	noNotify = true
	t.Cleanup(func() { noNotify = false })

	ns := newBNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	setupKernelSide(t, ns, "aipbt0")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn})
	if !l.polling.Load() {
		t.Fatal("the Link does not poll without notifications")
	}
	ev.expect(t, true, stateTimeout)
	ns.IP(t, "link", "set", "aipbt0", "down")
	ev.expect(t, false, stateTimeout)
	ns.IP(t, "link", "set", "aipbt0", "up")
	ev.expect(t, true, stateTimeout)
	ns.IP(t, "link", "del", "aipbt0")
	ev.expect(t, false, stateTimeout)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	setupKernelSide(t, ns, "aipbt0")
	ev.expect(t, true, stateTimeout)
	l.Close()

	ns.IP(t, "tuntap", "add", "dev", "aipbt1", "mode", "tap")
	setupKernelSide(t, ns, "aipbt1")
	ev2 := newLinkEvents()
	newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt1"}, MAC: ourMAC, CheckInterval: time.Hour, OnLinkChange: ev2.fn})
	ev2.expect(t, true, settleWindow+stateTimeout/2)
}

// TestLinkDeferOpen: with DeferOpen, NewLink touches no TAP (a TAP to be
// created is not there yet, an existing one has no carrier), its endpoint
// can be attached, and Open makes the first open, returning what NewLink
// would (a busy TAP's EBUSY); Open again does nothing, Open after Close
// fails.
func TestLinkDeferOpen(t *testing.T) {
	ns := newBNS(t)
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt0", Create: true}, MAC: ourMAC, DeferOpen: true, OnLinkChange: ev.fn})
	if existsInNS(t, ns, "aipbt0") {
		t.Fatal("NewLink with DeferOpen created the TAP")
	}
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	if l.Up() {
		t.Fatal("up before Open")
	}
	if err := l.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !existsInNS(t, ns, "aipbt0") {
		t.Fatal("Open did not create the TAP")
	}
	setupKernelSide(t, ns, "aipbt0")
	ev.expect(t, true, stateTimeout)
	exchangeARP(t, l, rec)
	if err := l.Open(); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if s := l.Stats(); s.Reopens != 0 {
		t.Fatalf("second Open re-opened: %+v", s)
	}
	l.Close()
	if err := l.Open(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Open after Close: %v, want net.ErrClosed", err)
	}

	// A TAP someone else holds: the error comes from Open, not NewLink.
	ns.IP(t, "tuntap", "add", "dev", "aipbt1", "mode", "tap")
	openInNS(t, ns, Config{Name: "aipbt1"})
	busy := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt1"}, MAC: ourMAC, DeferOpen: true})
	if err := busy.Open(); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Open of a held TAP: %v, want EBUSY", err)
	}
}

// TestEndpointInboundHook: the hook sees every frame that passed the MAC
// filter before the dispatcher; what it consumes never reaches the
// dispatcher and is counted in RxHooked (and RxFrames).
func TestEndpointInboundHook(t *testing.T) {
	ns := newBNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt0"}, MAC: ourMAC, OnLinkChange: ev.fn})
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	seen := make(chan byte, 16)
	l.Endpoint().SetInboundHook(func(frame []byte) bool {
		if header.Ethernet(frame).Type() != testEtherType {
			return true
		}
		id := frame[header.EthernetMinimumSize]
		seen <- id
		return id%2 == 0 // keep even ids, consume odd ones
	})
	ns.IP(t, "link", "set", "aipbt0", "up")
	ev.expect(t, true, stateTimeout)
	ps := newPacketSender(t, ns, "aipbt0")
	src := tcpip.LinkAddress("\x02\x00\x00\x00\xcc\x03")
	for id := byte(1); id <= 4; id++ {
		if err := ps.send(markedFrame(header.EthernetBroadcastAddress, src, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.send(markedFrame(otherMAC, src, 9)); err != nil { // filtered before the hook
		t.Fatal(err)
	}
	marked := func(id byte) func([]byte) bool {
		return func(f []byte) bool {
			return len(f) > header.EthernetMinimumSize && header.Ethernet(f).Type() == testEtherType && f[header.EthernetMinimumSize] == id
		}
	}
	waitFor(t, stateTimeout, "frames 2 and 4", func() bool { return rec.count(marked(2)) == 1 && rec.count(marked(4)) == 1 })
	waitFor(t, stateTimeout, "RxHooked 2", func() bool { return l.Stats().RxHooked == 2 })
	for _, id := range []byte{1, 3, 9} {
		if rec.count(marked(id)) != 0 {
			t.Errorf("frame %d reached the dispatcher", id)
		}
	}
	close(seen)
	var ids []byte
	for id := range seen {
		ids = append(ids, id)
	}
	if string(ids) != "\x01\x02\x03\x04" {
		t.Errorf("the hook saw %v, want 1 2 3 4", ids)
	}
	l.Endpoint().SetInboundHook(nil)
	if err := ps.send(markedFrame(header.EthernetBroadcastAddress, src, 5)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stateTimeout, "frame 5 without a hook", func() bool { return rec.count(marked(5)) == 1 })
}

// TestDeviceCloseOnExec: the TAP fd is close-on-exec, so that a hook or any
// other program the daemon starts does not inherit it (and keep the TAP
// attached, busy for a restarted daemon, after the daemon is gone).
func TestDeviceCloseOnExec(t *testing.T) {
	ns := newBNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipbt0", "mode", "tap")
	d := openInNS(t, ns, Config{Name: "aipbt0"})
	rc, err := d.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Error("the TAP fd is not close-on-exec")
	}
	if p, err := d.persistent(); err != nil || !p {
		t.Errorf("attaching changed the persistence of the TAP: persistent %v, %v", p, err)
	}
}

// TestLinkRetriesBusyTAP: a TAP that appears but cannot be opened at once
// (another fd still holds it, as `ip tuntap add` does for a moment) is
// retried without waiting for another notification: here none comes (the
// TAP stays down, so its carrier changes are not reported), and the
// CheckInterval of an hour rules polling out.
func TestLinkRetriesBusyTAP(t *testing.T) {
	ns := newBNS(t)
	logs := &lockedBuffer{}
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipbt0"}, MAC: ourMAC, CheckInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	var holder *Device
	if err := ns.Do(func() (err error) { holder, err = Open(Config{Name: "aipbt0", Create: true}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	// Persistent, so that it outlives the holder.
	rc, err := holder.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	if err := rc.Control(func(fd uintptr) { perr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 1) }); err != nil || perr != nil {
		t.Fatal(err, perr)
	}
	t.Cleanup(func() { ns.IPExec("link", "del", "aipbt0") })
	opened := func() bool { dev, _ := l.current(); return dev != nil }
	waitFor(t, stateTimeout, "a failed open (busy)", func() bool { return strings.Contains(logs.String(), "TAP open failed") })
	time.Sleep(100 * time.Millisecond)
	if opened() {
		t.Fatal("opened a TAP another fd holds")
	}
	holder.Close()
	waitFor(t, stateTimeout, "the Link to open the TAP once it is free", opened)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
