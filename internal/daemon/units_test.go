package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/pcapfile"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (slog handlers
// on several goroutines).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHookEventMapping(t *testing.T) {
	tests := []struct {
		ev   autoip.Event
		want string
	}{
		{autoip.Event{Kind: autoip.EventBind}, HookBind},
		{autoip.Event{Kind: autoip.EventConflict, Phase: acd.PhaseBound}, HookConflict},
		{autoip.Event{Kind: autoip.EventConflict, Phase: acd.PhaseProbing}, ""},
		{autoip.Event{Kind: autoip.EventUnbind}, HookUnbind},
		{autoip.Event{Kind: autoip.EventStop}, HookStop},
		{autoip.Event{Kind: autoip.EventProbe}, ""},
		{autoip.Event{Kind: autoip.EventDefend, Phase: acd.PhaseBound}, ""},
		{autoip.Event{Kind: autoip.EventRateLimit}, ""},
	}
	for _, tt := range tests {
		if got := hookEvent(tt.ev); got != tt.want {
			t.Errorf("hookEvent(%v/%v) = %q, want %q", tt.ev.Kind, tt.ev.Phase, got, tt.want)
		}
	}
}

// TestR18_HookOrderArgsAndEnv: hooks run in order, one at a time, with
// EVENT IFACE ADDRESS and the AUTOIPD_* environment; the conflict's MAC and
// packet kind reach the CONFLICT hook.
func TestR18_HookOrderArgsAndEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "events")
	t.Setenv("AUTOIPD_STALE", "x")
	hook := writeScript(t, `echo "$1 $2 $3 $AUTOIPD_EVENT $AUTOIPD_IFACE $AUTOIPD_ADDRESS mac=$AUTOIPD_CONFLICT_MAC kind=$AUTOIPD_PACKET_KIND phase=$AUTOIPD_PHASE stale=$AUTOIPD_STALE" >> `+out+`
sleep 0.05
echo "done $1" >> `+out+`
echo "to stdout $1"
echo "to stderr $1" >&2
`)
	var logs syncBuffer
	h := newHookRunner(hook, "tap9", 5*time.Second, testLogger(&logs))
	addr := netip.MustParseAddr("169.254.9.9")
	other := acd.MAC{2, 0, 0, 0, 0, 0x99}
	conflict := autoip.Event{Kind: autoip.EventConflict, Phase: acd.PhaseBound, Addr: addr, From: other,
		Frame: acd.BroadcastFrame(acd.Announcement(other, addr))}
	for _, ev := range []autoip.Event{
		{Kind: autoip.EventBind, Addr: addr},
		conflict,
		{Kind: autoip.EventStop},
	} {
		name := hookEvent(ev)
		h.enqueue(hookCall{event: name, addr: addrString(ev.Addr), env: hookEnv(name, "tap9", "02:00:00:00:00:01", ev)})
	}
	h.close(context.Background())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "BIND tap9 169.254.9.9 BIND tap9 169.254.9.9 mac= kind= phase= stale=\n" +
		"done BIND\n" +
		"CONFLICT tap9 169.254.9.9 CONFLICT tap9 169.254.9.9 mac=02:00:00:00:00:99 kind=announcement phase=bound stale=\n" +
		"done CONFLICT\n" +
		"STOP tap9  STOP tap9  mac= kind= phase= stale=\n" +
		"done STOP\n"
	if string(b) != want {
		t.Errorf("hook saw:\n%s\nwant:\n%s", b, want)
	}
	for _, w := range []string{`msg="hook stdout"`, `line="to stdout BIND"`, `msg="hook stderr"`, `line="to stderr STOP"`, `msg="hook ran"`} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %s:\n%s", w, logs.String())
		}
	}
}

// TestHookFailuresAreLoggedNotFatal: a missing hook, a failing hook and a
// hook that outlives its timeout (with a child) are logged, and the queue
// goes on.
func TestHookFailuresAreLoggedNotFatal(t *testing.T) {
	var logs syncBuffer
	log := testLogger(&logs)

	missing := newHookRunner(filepath.Join(t.TempDir(), "nope"), "tap9", time.Second, log)
	missing.enqueue(hookCall{event: HookBind})
	missing.close(context.Background())
	if !strings.Contains(logs.String(), "hook could not be run") {
		t.Errorf("missing hook not logged:\n%s", logs.String())
	}

	failing := newHookRunner(writeScript(t, "exit 7\n"), "tap9", time.Second, log)
	failing.enqueue(hookCall{event: HookBind})
	failing.close(context.Background())
	if !strings.Contains(logs.String(), "exit=7") {
		t.Errorf("failing hook not logged with its exit code:\n%s", logs.String())
	}

	out := filepath.Join(t.TempDir(), "after")
	slow := newHookRunner(writeScript(t, `if [ "$1" = BIND ]; then sleep 30 & sleep 30; fi
echo "$1" >> `+out+"\n"), "tap9", 200*time.Millisecond, log)
	start := time.Now()
	slow.enqueue(hookCall{event: HookBind})
	slow.enqueue(hookCall{event: HookStop})
	slow.close(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("timed-out hook held the queue for %v", took)
	}
	if !strings.Contains(logs.String(), "hook timed out and was killed") {
		t.Errorf("timeout not logged:\n%s", logs.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "STOP\n" {
		t.Errorf("hook after the timed-out one wrote %q, want STOP", b)
	}
}

// TestHookQueueNeverBlocks: enqueue returns at once while a hook runs.
func TestHookQueueNeverBlocks(t *testing.T) {
	var logs syncBuffer
	h := newHookRunner(writeScript(t, "sleep 0.3\n"), "tap9", 5*time.Second, testLogger(&logs))
	start := time.Now()
	for i := 0; i < 100; i++ {
		h.enqueue(hookCall{event: HookBind})
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("100 enqueues took %v", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	h.close(ctx) // gives up waiting; the rest still drains in the background
	if !strings.Contains(logs.String(), "gave up waiting for hooks") {
		t.Errorf("close with an expired context did not say so:\n%s", logs.String())
	}
}

// TestR25_LockRefusesSecondInstance: the lock is exclusive, names the
// holder's pid, and the refused caller leaves the holder's file intact.
func TestR25_LockRefusesSecondInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap0.lock")
	l, err := lockIface(path, "tap0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockIface(path, "tap0")
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "tap0") {
		t.Errorf("error %q (pid %d), want the interface and pid %d", err, le.PID, os.Getpid())
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q after a refused attempt", b)
	}
	l.release()
	l2, err := lockIface(path, "tap0")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
	if _, err := lockIface(filepath.Join(t.TempDir(), "no", "such", "dir.lock"), "tap0"); err == nil {
		t.Error("lock in a missing directory succeeded")
	}
}

// TestMACPersistence: a stored MAC is loaded as it is; a missing file is
// no error (the caller generates and stores one); an unusable file is
// refused, never silently replaced (issue 11 item 8).
func TestMACPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap0.mac")
	if _, found, err := loadMAC(path, acd.MAC{}); found || err != nil {
		t.Fatalf("missing file: found %v, %v", found, err)
	}
	m1, err := newMAC(acd.MAC{})
	if err != nil {
		t.Fatal(err)
	}
	if err := storeMAC(path, m1); err != nil {
		t.Fatal(err)
	}
	if m2, found, err := loadMAC(path, acd.MAC{}); !found || err != nil || m2 != m1 {
		t.Errorf("load gave %v, %v, %v; want %v", m2, found, err, m1)
	}
	// The kernel TAP's MAC is never ours: refused, not replaced.
	if _, _, err := loadMAC(path, m1); err == nil || !strings.Contains(err.Error(), "kernel TAP's own MAC") {
		t.Errorf("stored MAC equal to the kernel's: %v", err)
	}
	os.WriteFile(path, []byte("garbage\n"), 0o600)
	if _, _, err := loadMAC(path, acd.MAC{}); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Errorf("corrupt file: %v; want an error that does not quote the file", err)
	}
	for i := 0; i < 200; i++ {
		m, err := newMAC(m1)
		if err != nil || !m.IsUnicast() || m[0]&2 == 0 || m == m1 {
			t.Fatalf("newMAC = %v, %v", m, err)
		}
	}
}

// TestPcapCapturesBothDirectionsWithEthernetHeaders: the capture is a valid
// LINKTYPE_ETHERNET pcap holding whole frames, inbound and outbound, the
// Shim's injected ARP included.
func TestPcapCapturesBothDirectionsWithEthernetHeaders(t *testing.T) {
	mac := acd.MAC{2, 0, 0, 0, 0, 1}
	ch := channel.New(16, 1514, "\x02\x00\x00\x00\x00\x01")
	var buf syncBuffer
	var logs syncBuffer
	wt, err := newWireTap(ch, &buf, testLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.New(stack.Options{Link: wt, NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Outbound: an injected probe.
	probe := acd.BroadcastFrame(acd.Probe(mac, netip.MustParseAddr("169.254.3.4")))
	if err := st.Shim().InjectOutbound(probe.AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	// Inbound: another host's announcement.
	other := acd.MAC{2, 0, 0, 0, 0, 2}
	ann := acd.BroadcastFrame(acd.Announcement(other, netip.MustParseAddr("169.254.5.6"))).AppendBinary(nil)
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(ann)})
	ch.InjectInbound(header.ARPProtocolNumber, pkt)
	pkt.DecRef()
	if out := ch.Read(); out == nil {
		t.Fatal("injected frame did not reach the link")
	} else {
		out.DecRef()
	}

	b := []byte(buf.String())
	if len(b) < 24 || binary.LittleEndian.Uint32(b[0:]) != pcapfile.MagicMicro || binary.LittleEndian.Uint32(b[20:]) != pcapfile.LinkTypeEthernet {
		t.Fatalf("bad pcap header % x", b[:min(len(b), 24)])
	}
	var frames [][]byte
	for rest := b[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			t.Fatalf("truncated record header")
		}
		incl := binary.LittleEndian.Uint32(rest[8:])
		orig := binary.LittleEndian.Uint32(rest[12:])
		if incl != orig || int(incl) > len(rest)-16 {
			t.Fatalf("record lengths incl=%d orig=%d, %d bytes left", incl, orig, len(rest)-16)
		}
		frames = append(frames, rest[16:16+incl])
		rest = rest[16+incl:]
	}
	if len(frames) != 2 || wt.captured() != 2 {
		t.Fatalf("captured %d frames (counter %d), want 2", len(frames), wt.captured())
	}
	for i, want := range []acd.Frame{probe, acd.BroadcastFrame(acd.Announcement(other, netip.MustParseAddr("169.254.5.6")))} {
		got, err := acd.DecodeFrame(frames[i])
		if err != nil || got != want {
			t.Errorf("frame %d = %+v, %v; want %+v", i, got, err, want)
		}
	}
	for _, w := range []string{"dir=out kind=probe", "dir=in kind=announcement", "sender_mac=02:00:00:00:00:02"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("debug log lacks %q:\n%s", w, logs.String())
		}
	}
}

// failWriter fails every write after the first n.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestPcapWriteFailureIsNotFatal(t *testing.T) {
	var logs syncBuffer
	ch := channel.New(16, 1514, "\x02\x00\x00\x00\x00\x01")
	wt, err := newWireTap(ch, &failWriter{n: 1}, testLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	st, err := stack.New(stack.Options{Link: wt, NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	frame := acd.BroadcastFrame(acd.Probe(acd.MAC{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("169.254.3.4"))).AppendBinary(nil)
	for i := 0; i < 3; i++ {
		if err := st.Shim().InjectOutbound(frame); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "pcap write failed"); n != 1 {
		t.Errorf("write failure logged %d times, want once:\n%s", n, logs.String())
	}
	if _, err := newWireTap(ch, &failWriter{}, nil); err == nil {
		t.Error("header write failure not reported")
	}
}

// TestStatusSocketRoundTrip: the socket answers JSON with state, address,
// counters and the last conflict (who and what).
func TestStatusSocketRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "tap0.sock")
	os.WriteFile(sock, nil, 0o644) // stale file from a crashed daemon
	addr := netip.MustParseAddr("169.254.9.9")
	other := acd.MAC{2, 0, 0, 0, 0, 0x99}
	st := stack.Status{Status: autoip.Status{State: autoip.StateBound, Addr: addr,
		LastConflict: &autoip.Event{Kind: autoip.EventDefend, Addr: addr, Phase: acd.PhaseBound, From: other,
			Frame: acd.BroadcastFrame(acd.Announcement(other, addr))},
		Stats: autoip.Stats{Binds: 1, Defences: 1}}, Configured: addr}
	report := func() StatusReport {
		return buildReport("tap0", time.Unix(0, 0), "02:00:00:00:00:01", 7, st, tap.LinkStats{RxFrames: 5}, true, 0)
	}
	var logs syncBuffer
	srv, err := listenStatus(sock, report, nil, testLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	raw, r, err := queryStatus(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "bound" || r.Address != "169.254.9.9" || r.Configured != "169.254.9.9" || r.Counters.Engine.Binds != 1 || r.Counters.Link.RxFrames != 5 || !r.LinkUp {
		t.Errorf("report %+v", r)
	}
	if c := r.LastConflict; c == nil || c.MAC != "02:00:00:00:00:99" || c.PacketKind != "announcement" || c.Event != "DEFEND" {
		t.Errorf("last conflict %+v", c)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"state", "address", "counters", "last_conflict", "pid", "mac"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, raw)
		}
	}
	srv.close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after close: %v", err)
	}
	if _, _, err := queryStatus(sock, time.Second); err == nil {
		t.Error("query after close succeeded")
	}
	long := filepath.Join(dir, strings.Repeat("x", 120)+".sock")
	if _, err := listenStatus(long, report, nil, testLogger(&logs)); err == nil || !strings.Contains(err.Error(), "-state-dir") {
		t.Errorf("over-long socket path: %v", err)
	}
}

// TestControlAnsweredFromTheFirstConnection: a control request sent the
// moment the socket exists is handed to the daemon's handler. The handler
// used to be set on the server after it had started serving, so an early
// -alias was refused ("takes no control requests") and raced under -race
// (seen in CI: autoipd -alias right after start).
func TestControlAnsweredFromTheFirstConnection(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "tap0.sock")
	var logs syncBuffer
	var calls atomic.Int32
	control := func(req ControlRequest) ControlReply {
		calls.Add(1)
		return ControlReply{OK: req.Op == "alias"}
	}
	srv, err := listenStatus(sock, func() StatusReport { return StatusReport{Interface: "tap0"} }, control, testLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	r, err := sendControl(sock, ControlRequest{Op: "alias", Prefix: "10.0.0.1/24"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Error != "" || calls.Load() != 1 {
		t.Errorf("first request: reply %+v, handler called %d times; want OK from the handler once", r, calls.Load())
	}
}

// TestRunUsageErrorsExit2 runs Run itself on bad command lines.
func TestRunUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"-a", "0", "-i", "tap0"}, {}, {"-o", "if=tap0,delay=0"}, {"-i", "tap0", "-o", "if=tap1"}} {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, &out, &errb); code != ExitUsage {
			t.Errorf("Run(%q) = %d, want %d; stderr %s", args, code, ExitUsage, errb.String())
		}
		if !strings.Contains(errb.String(), "autoipd: ") || out.Len() != 0 {
			t.Errorf("Run(%q): stdout %q stderr %q", args, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"-h"}, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "Exit codes:") {
		t.Errorf("-h: code %d, stdout %q", code, out.String())
	}
}

// TestRunStatusWithoutDaemon: -status with nothing running fails clearly.
func TestRunStatusWithoutDaemon(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"-status", "-i", "tap0", "-state-dir", t.TempDir()}, &out, &errb)
	if code != ExitFailure || !strings.Contains(errb.String(), "no autoipd answers for interface tap0") {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
}

// TestDHCPTransactionIDsDifferAtEachStart: without -seed, two starts of the
// same MAC draw different DHCP transaction IDs (RFC 2131: "a random number
// chosen by the client", a new one at each restart); an auditor saw the
// same xid and the same first delay at every restart, predictable from the
// MAC on the wire. With -seed the draws repeat, for reproducible runs.
func TestDHCPTransactionIDsDifferAtEachStart(t *testing.T) {
	if a, b := dhcpRand(0).Uint32(), dhcpRand(0).Uint32(); a == b {
		t.Errorf("two starts drew the same first value %#x", a)
	}
	if a, b := dhcpRand(42).Uint32(), dhcpRand(42).Uint32(); a != b {
		t.Errorf("-seed 42 drew %#x then %#x; want the same", a, b)
	}
	d := &daemon{cfg: &Config{DHCP: true, DHCPInitDelay: 7 * time.Second}}
	if c := d.dhcpConfig(); c.Rand == nil || c.InitDelay != 7*time.Second {
		t.Errorf("DHCP config: Rand %v, InitDelay %v; want a random source and 7s", c.Rand, c.InitDelay)
	}
}

// TestNoAnswerSaysPermissionDenied: a user the status socket refuses is
// told so, not that no daemon answers (an operator was sent looking for a
// daemon that ran all along).
func TestNoAnswerSaysPermissionDenied(t *testing.T) {
	cfg := &Config{Iface: "tap0", StateDir: "/var/lib/autoipd"}
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	if msg := noAnswer(cfg, "/var/lib/autoipd/tap0.sock", denied); !strings.Contains(msg, "permission denied") || strings.Contains(msg, "no autoipd answers") || !strings.Contains(msg, "only root and the daemon's user") {
		t.Errorf("EACCES: %s", msg)
	}
	gone := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}
	if msg := noAnswer(cfg, "/var/lib/autoipd/tap0.sock", gone); !strings.Contains(msg, "no autoipd answers") {
		t.Errorf("ENOENT: %s", msg)
	}
}
