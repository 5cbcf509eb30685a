//go:build linux

package tap

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestMain turns on gVisor's reference leak checker: every PacketBuffer the
// Link creates or consumes must be released by the end of the run.
func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	runtime.GC()
	refs.DoLeakCheck()
	os.Exit(code)
}

const (
	testInterval = 50 * time.Millisecond
	// stateTimeout allows for linkwatch, which may delay IFF_RUNNING by ~1s.
	stateTimeout = 5 * time.Second
)

// testLogger sends the Link's log to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// exchangeARP sends an ARP request for kernIP through the Link and waits for
// the kernel's reply to come back through it.
func exchangeARP(t *testing.T, l *Link, rec *recorder) {
	t.Helper()
	deadline := time.Now().Add(stateTimeout)
	for rec.find(isKernelARPReply) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no ARP reply through the Link; stats %+v", l.Stats())
		}
		writeFrame(t, l, arpRequestFromUs())
		select {
		case <-rec.notify:
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.frames = nil
	r.mu.Unlock()
}

// TestLinkLifecycle: up when the kernel side is set up, down on link down,
// up again; down when the TAP is deleted; re-opened and up when it is
// re-created; frames flow before and after.
func TestLinkLifecycle(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval,
		OnLinkChange: ev.fn, Logger: testLogger(t),
	})
	if l.Name() != "aipt0" {
		t.Fatalf("Name() = %q", l.Name())
	}
	if mtu := ethernet.New(l.Endpoint()).MTU(); mtu != 1500 {
		t.Fatalf("ethernet MTU = %d, want 1500", mtu)
	}
	rec := newRecorder()
	l.Endpoint().Attach(rec)

	ev.none(t, 4*testInterval) // the TAP is down
	if l.Up() {
		t.Fatal("Up() with the TAP down")
	}
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	if !l.Up() {
		t.Fatal("Up() = false after OnLinkChange(true)")
	}
	exchangeARP(t, l, rec)

	ns.IP(t, "link", "set", "aipt0", "down")
	ev.expect(t, false, stateTimeout)
	ns.IP(t, "link", "set", "aipt0", "up")
	ev.expect(t, true, stateTimeout)

	ns.IP(t, "link", "del", "aipt0")
	ev.expect(t, false, stateTimeout)
	if s := l.Stats(); s.Reopens != 0 {
		t.Fatalf("Reopens = %d before re-creation", s.Reopens)
	}
	ev.none(t, 4*testInterval) // stays down while the TAP is missing

	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	if s := l.Stats(); s.Reopens != 1 {
		t.Fatalf("Reopens = %d after re-creation, want 1", s.Reopens)
	}
	rec.reset()
	exchangeARP(t, l, rec)

	// The kernel answers within our write(2), so the reply can be delivered
	// before the writer goroutine has counted the request.
	waitFor(t, time.Second, "TxFrames >= 2", func() bool { return l.Stats().TxFrames >= 2 })
	s := l.Stats()
	t.Logf("stats: %+v", s)
	if s.LinkChanges != 5 || s.TxFrames < 2 || s.RxFrames < 2 {
		t.Fatalf("stats %+v: want LinkChanges=5, TxFrames>=2, RxFrames>=2", s)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if l.Up() {
		t.Fatal("Up() after Close")
	}
	ev.none(t, 2*testInterval) // Close reports nothing
	if !existsInNS(t, ns, "aipt0") {
		t.Fatal("persistent TAP deleted by Link.Close")
	}
}

// TestLinkTxNotSentWhileDown: writes while the TAP is down are refused to
// the caller (so that nothing counts as sent that was not), counted, and the
// Link carries on.
func TestLinkTxNotSentWhileDown(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn,
	})
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	for i := 0; i < 5; i++ {
		writeRefused(t, l, arpRequestFromUs())
	}
	if n := l.Stats().TxNotSent; n != 5 {
		t.Fatalf("TxNotSent %d, want 5", n)
	}
	if s := l.Stats(); s.TxFrames != 0 || l.Up() {
		t.Fatalf("stats %+v, Up()=%v: want no frame sent and down", s, l.Up())
	}
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	exchangeARP(t, l, rec)

	// After the TAP is deleted, writes are not sent either.
	ns.IP(t, "link", "del", "aipt0")
	ev.expect(t, false, stateTimeout)
	before := l.Stats().TxNotSent
	writeRefused(t, l, arpRequestFromUs())
	if n := l.Stats().TxNotSent; n != before+1 {
		t.Fatalf("TxNotSent %d after deletion, want %d", n, before+1)
	}
	t.Logf("stats: %+v", l.Stats())
}

// TestLinkWaitsForTAP: with Create=false and no TAP, NewLink succeeds and the
// Link opens the TAP once it appears.
func TestLinkWaitsForTAP(t *testing.T) {
	ns := newNS(t)
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn,
	})
	ev.none(t, 4*testInterval)
	if existsInNS(t, ns, "aipt0") {
		t.Fatal("Link created the TAP with Create=false")
	}
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	exchangeARP(t, l, rec)
	if s := l.Stats(); s.Reopens != 0 {
		t.Fatalf("Reopens = %d for the first open", s.Reopens)
	}
}

// TestLinkCreate: with Create=true the Link creates the TAP inside the
// namespace it was made in and re-creates it there after deletion, although
// its goroutines run on threads of the root namespace.
func TestLinkCreate(t *testing.T) {
	ns := newNS(t)
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipt0", Create: true}, MAC: ourMAC, CheckInterval: testInterval,
		OnLinkChange: ev.fn, Logger: testLogger(t),
	})
	if !existsInNS(t, ns, "aipt0") {
		t.Fatal("TAP not created")
	}
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)

	ns.IP(t, "link", "del", "aipt0")
	ev.expect(t, false, stateTimeout)
	waitFor(t, stateTimeout, "re-creation", func() bool { return l.Stats().Reopens == 1 })
	if !existsInNS(t, ns, "aipt0") {
		t.Fatal("TAP not re-created in the namespace")
	}
	if Exists("aipt0") {
		t.Fatal("TAP re-created in the root namespace")
	}
	ev.none(t, 4*testInterval) // re-created TAPs start down
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	exchangeARP(t, l, rec)

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, 2*time.Second, "created TAP to vanish after Close", func() bool { return !existsInNS(t, ns, "aipt0") })
}

// TestLinkMACFilter: unicast to other MACs is dropped; ours, broadcast and
// multicast pass.
func TestLinkMACFilter(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{
		Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn,
	})
	rec := newRecorder()
	l.Endpoint().Attach(rec)
	ns.IP(t, "link", "set", "aipt0", "up")
	ev.expect(t, true, stateTimeout)

	ps := newPacketSender(t, ns, "aipt0")
	src := tcpip.LinkAddress("\x02\x00\x00\x00\xcc\x03")
	cases := []struct {
		dst  tcpip.LinkAddress
		pass bool
	}{
		{ourMAC, true},
		{otherMAC, false},
		{header.EthernetBroadcastAddress, true},
		{tcpip.LinkAddress("\x01\x00\x5e\x00\x00\x01"), true},
		{tcpip.LinkAddress("\x03\x00\x00\x00\x00\x07"), true}, // any group bit
	}
	for i, c := range cases {
		if err := ps.send(markedFrame(c.dst, src, byte(i+1))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	marked := func(f []byte) bool {
		return len(f) > header.EthernetMinimumSize && header.Ethernet(f).Type() == testEtherType
	}
	waitFor(t, stateTimeout, "marked frames", func() bool { return rec.count(marked) >= 4 })
	time.Sleep(100 * time.Millisecond)
	for i, c := range cases {
		got := rec.find(func(f []byte) bool { return marked(f) && f[header.EthernetMinimumSize] == byte(i+1) }) != nil
		if got != c.pass {
			t.Errorf("frame to %v: delivered=%v, want %v", c.dst, got, c.pass)
		}
	}
	if s := l.Stats(); s.RxFiltered < 1 {
		t.Errorf("RxFiltered = %d, want >= 1", s.RxFiltered)
	}
}

// TestLinkCloseStopsGoroutines: Close stops every goroutine the Link started,
// whatever state it is in, and closes the endpoint.
func TestLinkCloseStopsGoroutines(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	runtime.GC()
	before := runtime.NumGoroutine()

	ev := newLinkEvents()
	up := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn})
	waiting := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipnone0"}, MAC: ourMAC, CheckInterval: testInterval})
	created := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipt1", Create: true}, MAC: ourMAC, CheckInterval: testInterval})
	rec := newRecorder()
	up.Endpoint().Attach(rec)
	setupKernelSide(t, ns, "aipt0")
	ev.expect(t, true, stateTimeout)
	exchangeARP(t, up, rec)
	for i := 0; i < 10; i++ {
		writeRefused(t, waiting, arpRequestFromUs())
	}
	if n := runtime.NumGoroutine(); n < before+6 {
		t.Fatalf("goroutines: %d before, %d with 3 Links; want +6 (reader and monitor each)", before, n)
	}
	for _, l := range []*Link{up, waiting, created} {
		if err := l.Close(); err != nil {
			t.Fatalf("Close %s: %v", l.Name(), err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close %s: %v", l.Name(), err)
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{})
		var list stack.PacketBufferList
		list.PushBack(pkt)
		_, err := l.Endpoint().WritePackets(list)
		pkt.DecRef()
		if _, ok := err.(*tcpip.ErrClosedForSend); !ok {
			t.Fatalf("WritePackets after Close: %v, want ErrClosedForSend", err)
		}
	}
	var n int
	deadline := time.Now().Add(2 * time.Second)
	for n = runtime.NumGoroutine(); n > before && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after Close\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestNewLinkErrors(t *testing.T) {
	if _, err := NewLink(LinkConfig{Device: Config{Name: "a/b"}, MAC: ourMAC}); !errors.Is(err, errInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := NewLink(LinkConfig{Device: Config{Name: "aipt0"}, MAC: "\x01"}); err == nil {
		t.Error("short MAC accepted")
	}
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aiptun0", "mode", "tun")
	err := ns.Do(func() error {
		l, err := NewLink(LinkConfig{Device: Config{Name: "aiptun0"}, MAC: ourMAC})
		if err == nil {
			l.Close()
		}
		return err
	})
	if err == nil {
		t.Error("NewLink on a TUN succeeded")
	} else {
		t.Logf("NewLink on a TUN: %v", err)
	}
}
