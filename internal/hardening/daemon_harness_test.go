package hardening

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/daemon"
	"github.com/autoip-project/autoip/internal/netns"
)

// The autoipd binary, built once for the privileged tests (with -race when
// the tests run with it), in a directory TestMain removes.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// autoipd returns the path of the built daemon, building it on first use.
func autoipd(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		defer func() {
			t.Logf("built autoipd (race %v) in %v", raceEnabled, time.Since(start).Round(time.Millisecond))
		}()
		binDir, binErr = os.MkdirTemp("", "aiphard")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "autoipd")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/autoip-project/autoip/cmd/autoipd")...).CombinedOutput()
		if err != nil && raceEnabled { // -race needs cgo; fall back to a plain build
			out, err = exec.Command("go", "build", "-o", binPath, "github.com/autoip-project/autoip/cmd/autoipd").CombinedOutput()
		}
		if err != nil {
			binErr = fmt.Errorf("go build autoipd: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Fast timing for every daemon: probes 25..50 ms apart, one second of
// ANNOUNCE_WAIT and ANNOUNCE_INTERVAL (the minimum of -w).
var fastArgs = []string{"-o", "delay=50", "-w", "1"}

const kernelLL = "169.254.77.2" // the kernel side's own address

// denv is one daemon test's world: a namespace with a persistent TAP whose
// kernel side is up with kernelLL, a state directory, the netstack's MAC
// and a wire on the kernel side.
type denv struct {
	t     *testing.T
	ns    *netns.NS
	tap   string
	state string
	mac   acd.MAC // the daemon's (netstack's) MAC, given with -mac
	wire  *wire
}

// newDenv builds the world. txqueuelen sizes the TAP's queue (0: default).
func newDenv(t *testing.T, macTail byte, txqueuelen int) *denv {
	t.Helper()
	netns.RequireRoot(t)
	autoipd(t) // build it now: a build failure is reported before anything else
	ns := netns.New(t, "aiphd")
	ns.DisableIPv6(t)
	// A short state directory: it holds the status socket (108-byte limit).
	state, err := os.MkdirTemp("", "aiph")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	e := &denv{t: t, ns: ns, tap: "aiph0", state: state, mac: acd.MAC{0x02, 0x00, 0x5e, 0x48, 0x44, macTail}}
	e.createTAP(txqueuelen)
	return e
}

// createTAP makes the persistent TAP, opens the wire on it while it is
// still down (so that it sees the daemon's very first frame), brings it up
// and gives the kernel side kernelLL.
func (e *denv) createTAP(txqueuelen int) {
	e.t.Helper()
	e.ns.IP(e.t, "tuntap", "add", "dev", e.tap, "mode", "tap")
	if txqueuelen > 0 {
		e.ns.IP(e.t, "link", "set", e.tap, "txqueuelen", fmt.Sprint(txqueuelen))
	}
	e.wire = openWire(e.t, e.ns, e.tap)
	e.ns.IP(e.t, "link", "set", e.tap, "up")
	e.ns.IP(e.t, "addr", "add", kernelLL+"/16", "dev", e.tap)
}

func (e *denv) statePath() string { return filepath.Join(e.state, e.tap+".state.json") }

// syncBuffer collects a process's output.
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

// proc is a running autoipd.
type proc struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	started time.Time
	done    chan struct{}
	state   *os.ProcessState
}

// start runs autoipd in the namespace on the TAP with -mac, -state-dir and
// a fast -check-interval, plus args. `ip netns exec` execs the daemon, so
// the process is the daemon itself (signals reach it directly).
func (e *denv) start(args ...string) *proc {
	e.t.Helper()
	full := append([]string{"netns", "exec", e.ns.Name(), autoipd(e.t),
		"-i", e.tap, "-mac", e.mac.String(), "-state-dir", e.state, "-check-interval", "50ms"}, args...)
	p := &proc{cmd: exec.Command("ip", full...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.kill()
		if e.t.Failed() {
			out := p.out.String()
			if len(out) > 20000 {
				out = "...\n" + out[len(out)-20000:]
			}
			e.t.Logf("autoipd %q output:\n%s", args, out)
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process; it is idempotent.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits up to d for exit 0.
func (p *proc) stop(t testing.TB, d time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if c := p.state.ExitCode(); c != 0 {
			t.Errorf("autoipd exited %d after SIGTERM", c)
		}
	case <-time.After(d):
		t.Fatalf("autoipd did not exit within %v of SIGTERM", d)
	}
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// status asks the daemon's status socket directly (fast; for polling).
func (e *denv) status() (*daemon.StatusReport, error) {
	c, err := net.DialTimeout("unix", filepath.Join(e.state, e.tap+".sock"), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var r daemon.StatusReport
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// statusCLI runs `autoipd -status` and returns the decoded report and the
// raw JSON as a generic map (for fields the typed report may not have).
func (e *denv) statusCLI() (*daemon.StatusReport, map[string]any) {
	e.t.Helper()
	out, err := exec.Command(autoipd(e.t), "-status", "-i", e.tap, "-state-dir", e.state).Output()
	if err != nil {
		e.t.Fatalf("autoipd -status: %v\n%s", err, out)
	}
	var r daemon.StatusReport
	var raw map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		e.t.Fatalf("autoipd -status printed %q: %v", out, err)
	}
	_ = json.Unmarshal(out, &raw)
	return &r, raw
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitBound waits until the daemon reports an address configured and
// bound (announcements done) and returns it.
func (e *denv) waitBound(d time.Duration) netip.Addr {
	e.t.Helper()
	var a netip.Addr
	waitFor(e.t, d, "a bound address", func() bool {
		r, err := e.status()
		if err != nil || r.Configured == "" || r.State != "bound" {
			return false
		}
		a = netip.MustParseAddr(r.Configured)
		return true
	})
	return a
}

// ping pings a once from the kernel side.
func (e *denv) ping(a netip.Addr) error {
	_, err := e.ns.Exec("ping", "-c", "1", "-W", "2", "-I", e.tap, a.String())
	return err
}

// hook writes a hook script that appends "EVENT IFACE ADDR" lines to a file,
// and returns both paths.
func (e *denv) hook() (script, log string) {
	dir := e.t.TempDir()
	script, log = filepath.Join(dir, "hook"), filepath.Join(dir, "events")
	body := "#!/bin/sh\necho \"$1 $2 $3\" >> " + log + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return script, log
}

func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// kernelTxStats returns the kernel side's tx packets and drops on the TAP
// (frames towards the daemon).
func (e *denv) kernelTxStats() (packets, dropped uint64) {
	e.t.Helper()
	out := e.ns.IP(e.t, "-j", "-s", "link", "show", "dev", e.tap)
	var v []struct {
		Stats64 struct {
			TX struct {
				Packets uint64 `json:"packets"`
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
		e.t.Fatalf("ip -j -s link show: %v\n%s", err, out)
	}
	return v[0].Stats64.TX.Packets, v[0].Stats64.TX.Dropped
}

// seenFrame is one frame the daemon sent, with the kernel's receive time.
type seenFrame struct {
	at time.Time
	f  acd.Frame
}

// wire is the kernel side of the TAP as the rest of the link: a capture
// socket that records the ARP frames the daemon sends, with kernel
// timestamps, and calls onFrame for each; and a send socket that puts
// arbitrary frames on the wire towards the daemon.
type wire struct {
	rx, tx  int
	ifindex int
	mac     acd.MAC

	mu      sync.Mutex
	frames  []seenFrame
	onFrame func(seenFrame) // called on the capture goroutine

	stop, done chan struct{}
	closeOnce  sync.Once
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openWire(t *testing.T, ns *netns.NS, ifname string) *wire {
	t.Helper()
	w := &wire{stop: make(chan struct{}), done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		copy(w.mac[:], ifi.HardwareAddr)
		w.ifindex = ifi.Index
		rx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return fmt.Errorf("capture socket: %w", err)
		}
		w.rx = rx
		if err := unix.Bind(rx, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
			unix.Close(rx)
			return fmt.Errorf("bind capture socket: %w", err)
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		_ = unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		_ = unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		_ = unix.SetsockoptInt(rx, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		_ = unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		// The send socket receives nothing (protocol 0).
		tx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			unix.Close(rx)
			return fmt.Errorf("send socket: %w", err)
		}
		w.tx = tx
		_ = unix.SetsockoptInt(tx, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
		return nil
	})
	if err != nil {
		t.Fatalf("open wire on %s: %v", ifname, err)
	}
	go w.capture()
	t.Cleanup(w.close)
	return w
}

func (w *wire) setOnFrame(f func(seenFrame)) {
	w.mu.Lock()
	w.onFrame = f
	w.mu.Unlock()
}

func (w *wire) capture() {
	defer close(w.done)
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(w.rx, buf, oob, 0)
		if err != nil {
			// ENETDOWN is reported once when the interface goes down;
			// the socket works again when it comes back up.
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENETDOWN) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		at := time.Now()
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_TIMESTAMPNS && len(cm.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(cm.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(cm.Data[8:16]))
					at = time.Unix(sec, nsec)
				}
			}
		}
		f, err := acd.DecodeFrame(buf[:n])
		if err != nil {
			continue
		}
		s := seenFrame{at: at, f: f}
		w.mu.Lock()
		w.frames = append(w.frames, s)
		cb := w.onFrame
		w.mu.Unlock()
		if cb != nil {
			cb(s)
		}
	}
}

// close stops the capture and closes the sockets; it is idempotent.
func (w *wire) close() {
	w.closeOnce.Do(func() {
		close(w.stop)
		<-w.done
		unix.Close(w.rx)
		unix.Close(w.tx)
	})
}

// send puts frame on the wire towards the daemon, retrying while the
// socket's buffer or the TAP's qdisc is full.
func (w *wire) send(frame []byte) error {
	var dst [8]byte
	copy(dst[:], frame[:min(6, len(frame))])
	for tries := 0; ; tries++ {
		err := unix.Sendto(w.tx, frame, 0, &unix.SockaddrLinklayer{Ifindex: w.ifindex, Halen: 6, Addr: dst})
		if err == nil || tries > 20000 || !(errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN)) {
			return err
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// sent returns the ARP frames from mac (the daemon) seen since index from,
// and the index to continue from.
func (w *wire) sent(from int, mac acd.MAC) ([]seenFrame, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seenFrame
	for _, s := range w.frames[min(from, len(w.frames)):] {
		if s.f.SenderHW == mac {
			out = append(out, s)
		}
	}
	return out, len(w.frames)
}

// mark returns the index of the next captured frame.
func (w *wire) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.frames)
}

// probes returns the probes from mac seen since index from.
func (w *wire) probes(from int, mac acd.MAC) []seenFrame {
	all, _ := w.sent(from, mac)
	var out []seenFrame
	for _, s := range all {
		if s.f.IsProbe() {
			out = append(out, s)
		}
	}
	return out
}

// firstProbes returns the first probe of each attempt (a probe for another
// target than the probe before it, or after a gap of more than gap) from
// mac since index from.
func (w *wire) firstProbes(from int, mac acd.MAC, gap time.Duration) []seenFrame {
	var out []seenFrame
	var last seenFrame
	for i, p := range w.probes(from, mac) {
		if i == 0 || p.f.TargetIP != last.f.TargetIP || p.at.Sub(last.at) > gap {
			out = append(out, p)
		}
		last = p
	}
	return out
}

// waitProbe waits for a probe from mac at index from or later and returns
// it.
func (w *wire) waitProbe(t testing.TB, from int, mac acd.MAC, d time.Duration) seenFrame {
	t.Helper()
	var p seenFrame
	waitFor(t, d, "a probe on the wire", func() bool {
		ps := w.probes(from, mac)
		if len(ps) == 0 {
			return false
		}
		p = ps[0]
		return true
	})
	return p
}
