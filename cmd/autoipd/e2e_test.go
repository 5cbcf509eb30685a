package main

// End-to-end tests of the built autoipd binary, run as root in throw-away
// aip* network namespaces (`ip netns exec NS autoipd ...`), against the
// kernel side of a real TAP. Without root they skip, saying so.

import (
	"bufio"
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
	"strconv"
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

// bin is the autoipd binary built by TestMain (empty when not root).
var bin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "autoipd-e2e")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			bin = filepath.Join(dir, "autoipd")
			out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
			if err != nil {
				// -race needs cgo; fall back to a plain build.
				out, err = exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "go build autoipd: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

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

// env is one test's namespace and state directory.
type env struct {
	t     *testing.T
	ns    *netns.NS
	state string
	tap   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	netns.RequireRoot(t)
	if bin == "" {
		t.Fatal("autoipd binary was not built")
	}
	ns := netns.New(t, "aipd")
	ns.DisableIPv6(t)
	// A short state directory: it holds the status socket (108-byte limit).
	state, err := os.MkdirTemp("", "aipd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	return &env{t: t, ns: ns, state: state, tap: "aipt0"}
}

// proc is a running autoipd.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	code   int
	killed bool
}

// start runs autoipd in the namespace with -state-dir and -check-interval
// added.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	full := append([]string{"netns", "exec", e.ns.Name(), bin, "-state-dir", e.state, "-check-interval", "50ms"}, args...)
	p := &proc{cmd: exec.Command("ip", full...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = -1
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("autoipd %q output:\n%s", args, p.out.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("autoipd did not exit within %v; output:\n%s", d, p.out.String())
		return -1
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kernelSide waits for the TAP, gives its kernel side an address of its own
// and brings it up.
func (e *env) kernelSide(addr string) {
	e.t.Helper()
	waitFor(e.t, 10*time.Second, "TAP "+e.tap, func() bool {
		_, err := e.ns.IPExec("link", "show", e.tap)
		return err == nil
	})
	e.ns.IP(e.t, "addr", "add", addr+"/16", "dev", e.tap)
	e.ns.IP(e.t, "link", "set", e.tap, "up")
}

// status asks the daemon's status socket (a file: no namespace involved).
func (e *env) status() (*daemon.StatusReport, error) {
	c, err := net.DialTimeout("unix", filepath.Join(e.state, e.tap+".sock"), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var r daemon.StatusReport
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// waitBound waits until the daemon has an address configured and returns it.
func (e *env) waitBound(d time.Duration) string {
	e.t.Helper()
	var addr string
	waitFor(e.t, d, "a bound address", func() bool {
		r, err := e.status()
		if err == nil && r.Configured != "" {
			addr = r.Configured
			return true
		}
		return false
	})
	return addr
}

// ping pings addr once from the kernel side, inside the namespace: with
// ping(8) if it is installed, else with a raw ICMP socket made in the
// namespace.
func (e *env) ping(addr string) error {
	if _, err := exec.LookPath("ping"); err == nil {
		_, err := e.ns.Exec("ping", "-c1", "-W1", addr)
		return err
	}
	return e.pingRaw(addr)
}

// pingRaw sends one ICMP echo request from a raw socket made in the
// namespace and waits a second for the reply.
func (e *env) pingRaw(addr string) error {
	var conn net.PacketConn
	if err := e.ns.Do(func() (err error) {
		conn, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	id := uint16(os.Getpid())
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'a', 'i', 'p'}
	var sum uint32
	for i := 0; i+1 < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	sum += uint32(msg[len(msg)-1]) << 8
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(msg[2:], ^uint16(sum))
	dst := &net.IPAddr{IP: net.ParseIP(addr)}
	if _, err := conn.WriteTo(msg, dst); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s: %w", addr, err)
		}
		if from.String() == addr && n >= 8 && buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id {
			return nil
		}
	}
}

// sendFrame writes a raw Ethernet frame onto the kernel side of the TAP
// (an AF_PACKET socket made in the namespace): another host on the link.
func (e *env) sendFrame(frame []byte) {
	e.t.Helper()
	err := e.ns.Do(func() error {
		ifi, err := net.InterfaceByName(e.tap)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	})
	if err != nil {
		e.t.Fatalf("send frame: %v", err)
	}
}

// hook writes a hook script that appends "$1 $2 $3" (and the conflict's
// MAC and packet kind, if any) to a file, and returns both paths.
func (e *env) hook() (script, log string) {
	dir := e.t.TempDir()
	script, log = filepath.Join(dir, "hook"), filepath.Join(dir, "events")
	body := "#!/bin/sh\necho \"$1 $2 $3${AUTOIPD_CONFLICT_MAC:+ $AUTOIPD_CONFLICT_MAC $AUTOIPD_PACKET_KIND}\" >> " + log + "\n"
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

func equalLines(got []string, want ...string) bool {
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

// fast is the quick timing every test uses: probes 25..50 ms apart, one
// second of ANNOUNCE_WAIT.
var fast = []string{"-o", "delay=50", "-w", "1"}

// TestR23_ClaimPingHooksStatusStop: the daemon creates the TAP, claims the
// -s address, the kernel side pings it, -status reports it, SIGHUP
// re-announces, and SIGTERM withdraws it, saves state, runs the STOP hook
// and exits 0 (R13, R26).
func TestR23_ClaimPingHooksStatusStop(t *testing.T) {
	e := newEnv(t)
	hook, events := e.hook()
	pcap := filepath.Join(t.TempDir(), "wire.pcap")
	p := e.start(append([]string{"-create", "-i", e.tap, "-s", "169.254.20.20", "-hook", hook, "-pcap", pcap}, fast...)...)
	e.kernelSide("169.254.77.2")
	if got := e.waitBound(15 * time.Second); got != "169.254.20.20" {
		t.Fatalf("bound %s, want the -s address 169.254.20.20", got)
	}
	if err := e.ping("169.254.20.20"); err != nil {
		t.Fatalf("kernel side cannot ping the claimed address: %v", err)
	}
	if err := e.pingRaw("169.254.20.20"); err != nil {
		t.Fatalf("raw ICMP echo to the claimed address: %v", err)
	}
	waitFor(t, 5*time.Second, "BIND hook", func() bool { return len(readLines(events)) >= 1 })

	// autoipd -status -i IFACE prints the JSON report.
	out, err := e.ns.Exec(bin, "-status", "-i", e.tap, "-state-dir", e.state)
	if err != nil {
		t.Fatalf("-status: %v", err)
	}
	var r daemon.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-status printed %q: %v", out, err)
	}
	if !strings.HasPrefix(r.State, "bound") && r.State != "announcing" || r.Address != "169.254.20.20" || r.PID != p.cmd.Process.Pid || r.Counters.Engine.Binds != 1 {
		t.Errorf("-status: %+v", r)
	}

	sent := r.Counters.Engine.Sent
	p.signal(t, syscall.SIGHUP)
	waitFor(t, 5*time.Second, "SIGHUP re-announcement", func() bool {
		r, err := e.status()
		return err == nil && r.Counters.Engine.Sent > sent
	})

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if got := readLines(events); !equalLines(got, "BIND aipt0 169.254.20.20", "STOP aipt0 169.254.20.20") {
		t.Errorf("hook events %q, want BIND then STOP", got)
	}
	log := p.out.String()
	for _, w := range []string{"msg=BIND", "msg=STOP", "SIGHUP: address re-added", "stopping: withdrawing the address", "autoipd stopped"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q", w)
		}
	}
	st, err := os.ReadFile(filepath.Join(e.state, e.tap+".state.json"))
	if err != nil || !strings.Contains(string(st), `"address": "169.254.20.20"`) {
		t.Errorf("saved state %s, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(e.state, e.tap+".sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status socket left behind: %v", err)
	}
	// The pcap holds our probes for 169.254.20.20 first, with Ethernet headers.
	if first := firstProbe(t, pcap); first != "169.254.20.20" {
		t.Errorf("first probe in the capture is for %q, want 169.254.20.20", first)
	}
}

// firstProbe returns the target of the first ARP probe in a pcap file.
func firstProbe(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 {
		t.Fatalf("pcap %s: %v (%d bytes)", path, err, len(b))
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != 1 {
		t.Fatalf("pcap link type %d, want 1 (Ethernet)", lt)
	}
	for rest := b[24:]; len(rest) >= 16; {
		n := int(binary.LittleEndian.Uint32(rest[8:]))
		if n > len(rest)-16 {
			break
		}
		if f, err := acd.DecodeFrame(rest[16 : 16+n]); err == nil && f.Packet.IsProbe() {
			return f.Packet.TargetIP.String()
		}
		rest = rest[16+n:]
	}
	return ""
}

// TestR25_SecondInstanceRefused: a second daemon on the same interface exits
// 3 naming the first one's pid, before touching the TAP, and the first keeps
// working.
func TestR25_SecondInstanceRefused(t *testing.T) {
	e := newEnv(t)
	first := e.start(append([]string{"-create", "-i", e.tap, "-s", "169.254.20.30"}, fast...)...)
	e.kernelSide("169.254.77.2")
	addr := e.waitBound(15 * time.Second)
	before, err := e.status()
	if err != nil {
		t.Fatal(err)
	}

	second := e.start(append([]string{"-create", "-i", e.tap}, fast...)...)
	if code := second.wait(t, 10*time.Second); code != daemon.ExitLocked {
		t.Fatalf("second instance exit code %d, want %d; output:\n%s", code, daemon.ExitLocked, second.out.String())
	}
	msg := second.out.String()
	if !strings.Contains(msg, "pid "+strconv.Itoa(first.cmd.Process.Pid)) || !strings.Contains(msg, "interface aipt0") {
		t.Errorf("refusal message does not name the interface and pid %d:\n%s", first.cmd.Process.Pid, msg)
	}
	if strings.Contains(msg, "TAP opened") {
		t.Errorf("second instance opened the TAP:\n%s", msg)
	}
	if err := e.ping(addr); err != nil {
		t.Errorf("first instance no longer answers after the refusal: %v", err)
	}
	after, err := e.status()
	if err != nil || after.PID != first.cmd.Process.Pid || after.Configured != addr || after.Counters.Link.Reopens != before.Counters.Link.Reopens {
		t.Errorf("first instance disturbed: before %+v after %+v (%v)", before, after, err)
	}
	first.signal(t, syscall.SIGTERM)
	if code := first.wait(t, 15*time.Second); code != 0 {
		t.Errorf("first instance exit code %d", code)
	}
}

// TestR26_SIGTERMWithdrawsAndR19_LinkDownUp: on an existing (persistent)
// TAP, link down withdraws the address (UNBIND) and link up claims it again;
// SIGTERM withdraws it for good: the kernel side's pings stop being
// answered.
func TestR26_SIGTERMWithdrawsAndR19_LinkDownUp(t *testing.T) {
	e := newEnv(t)
	e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap")
	hook, events := e.hook()
	p := e.start(append([]string{"-i", e.tap, "-s", "169.254.20.40", "-hook", hook}, fast...)...)
	e.kernelSide("169.254.77.2")
	addr := e.waitBound(15 * time.Second)
	if err := e.ping(addr); err != nil {
		t.Fatalf("ping before: %v", err)
	}

	e.ns.IP(t, "link", "set", e.tap, "down")
	waitFor(t, 5*time.Second, "UNBIND on link down", func() bool {
		r, err := e.status()
		return err == nil && r.Configured == "" && !r.LinkUp
	})
	e.ns.IP(t, "link", "set", e.tap, "up")
	if again := e.waitBound(15 * time.Second); again != addr {
		t.Errorf("after link up bound %s, want %s again (last address first)", again, addr)
	}
	if err := e.ping(addr); err != nil {
		t.Fatalf("ping after link up: %v", err)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if err := e.ping(addr); err == nil {
		t.Error("the address still answers after SIGTERM")
	}
	want := []string{"BIND aipt0 " + addr, "UNBIND aipt0 " + addr, "BIND aipt0 " + addr, "STOP aipt0 " + addr}
	if got := readLines(events); !equalLines(got, want...) {
		t.Errorf("hook events %q, want %q", got, want)
	}
	if _, err := e.ns.IPExec("link", "show", e.tap); err != nil {
		t.Errorf("the persistent TAP was removed: %v", err)
	}
}

// TestR04_RestartReusesAddress: after a restart without -s the daemon
// claims the address it held last.
func TestR04_RestartReusesAddress(t *testing.T) {
	e := newEnv(t)
	e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap")
	e.kernelSide("169.254.77.2")
	p := e.start(append([]string{"-i", e.tap, "-s", "169.254.20.50"}, fast...)...)
	first := e.waitBound(15 * time.Second)
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	mac, _ := os.ReadFile(filepath.Join(e.state, e.tap+".mac"))

	hook, events := e.hook()
	p2 := e.start(append([]string{"-i", e.tap, "-hook", hook}, fast...)...)
	if second := e.waitBound(15 * time.Second); second != first {
		t.Errorf("after restart bound %s, want %s", second, first)
	}
	r, err := e.status()
	if err != nil || r.Counters.Engine.Attempts != 1 || r.MAC != strings.TrimSpace(string(mac)) {
		t.Errorf("restart: %+v (%v); want one attempt and the stored MAC %s", r, err, mac)
	}
	p2.signal(t, syscall.SIGINT)
	if code := p2.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
	if got := readLines(events); !equalLines(got, "BIND aipt0 "+first, "STOP aipt0 "+first) {
		t.Errorf("hook events %q", got)
	}
}

// TestR16_FormsBehaveAlike: -o ip=/-s give the same first probe; -o abandon
// and -d both give the address up at the first conflict (CONFLICT hook with
// the other host's MAC and packet kind), while the default defends it.
func TestR16_FormsBehaveAlike(t *testing.T) {
	other := acd.MAC{0x02, 0xbb, 0, 0, 0, 0x99}
	cases := []struct {
		name    string
		args    func(tap string) []string
		abandon bool
	}{
		{"lsm-autoip -o", func(tap string) []string {
			return []string{"-o", "if=" + tap + ",ip=169.254.20.60,delay=50,abandon", "-w", "1"}
		}, true},
		{"autoipd flags", func(tap string) []string {
			return []string{"-dv", "-i", tap, "-s", "169.254.20.60", "-p", "2", "-w", "1"}
		}, true},
		{"default defends", func(tap string) []string {
			return []string{"-i", tap, "-s", "169.254.20.60", "-o", "delay=50", "-w", "1"}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap")
			e.kernelSide("169.254.77.2")
			hook, events := e.hook()
			pcap := filepath.Join(t.TempDir(), "wire.pcap")
			args := append([]string{"-hook", hook, "-pcap", pcap}, c.args(e.tap)...)
			p := e.start(args...)
			addr := e.waitBound(20 * time.Second)
			if addr != "169.254.20.60" {
				t.Fatalf("bound %s, want 169.254.20.60", addr)
			}
			waitFor(t, 5*time.Second, "BIND hook", func() bool { return len(readLines(events)) >= 1 })
			// Another host announces our address.
			ann := acd.BroadcastFrame(acd.Announcement(other, netip.MustParseAddr(addr))).AppendBinary(nil)
			e.sendFrame(ann)
			waitFor(t, 5*time.Second, "the conflict to be seen", func() bool {
				r, err := e.status()
				return err == nil && r.LastConflict != nil
			})
			r, err := e.status()
			if err != nil {
				t.Fatal(err)
			}
			if c := r.LastConflict; c.MAC != other.String() || c.PacketKind != "announcement" || c.Phase != "bound" {
				t.Errorf("last conflict %+v, want %v announcement while bound", c, other)
			}
			if c.abandon {
				if r.LastConflict.Event != "CONFLICT" || r.Configured == addr {
					t.Errorf("abandon: status %+v, want the address given up", r)
				}
				waitFor(t, 5*time.Second, "CONFLICT hook", func() bool { return len(readLines(events)) >= 2 })
				if got := readLines(events); got[1] != "CONFLICT aipt0 "+addr+" "+other.String()+" announcement" {
					t.Errorf("hook events %q", got)
				}
			} else if r.LastConflict.Event != "DEFEND" || r.Configured != addr {
				t.Errorf("defend: status %+v, want the address kept", r)
			}
			if !strings.Contains(p.out.String(), "from="+other.String()) || !strings.Contains(p.out.String(), "packet=announcement") {
				t.Errorf("the conflict's MAC and packet kind are not logged:\n%s", p.out.String())
			}
			p.signal(t, syscall.SIGTERM)
			if code := p.wait(t, 15*time.Second); code != 0 {
				t.Errorf("exit code %d", code)
			}
			if first := firstProbe(t, pcap); first != "169.254.20.60" {
				t.Errorf("first probe for %q, want 169.254.20.60", first)
			}
		})
	}
}

// TestWaitPrintsAddressAndLeavesDaemon: -wait returns 0 with the address
// once the background daemon holds it; -wait-timeout exits 4 and leaves the
// daemon trying.
func TestWaitPrintsAddressAndLeavesDaemon(t *testing.T) {
	e := newEnv(t)
	e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap")
	killDaemon := func() {
		b, _ := os.ReadFile(filepath.Join(e.state, e.tap+".lock"))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGTERM)
			waitFor(t, 10*time.Second, "the background daemon to stop", func() bool {
				return syscall.Kill(pid, 0) != nil
			})
		}
	}
	t.Cleanup(killDaemon)

	// The link is down (no kernel side): the wait times out.
	p := e.start(append([]string{"-wait", "-wait-timeout", "500ms", "-i", e.tap}, fast...)...)
	if code := p.wait(t, 10*time.Second); code != daemon.ExitWaitTimeout {
		t.Fatalf("exit code %d, want %d; output:\n%s", code, daemon.ExitWaitTimeout, p.out.String())
	}
	r, err := e.status()
	if err != nil || r.LinkUp || r.State != "link-down" {
		t.Fatalf("after the timeout the daemon should still run, link down: %+v %v", r, err)
	}
	killDaemon()

	p = e.start(append([]string{"-wait", "-wait-timeout", "20s", "-i", e.tap, "-s", "169.254.20.70"}, fast...)...)
	e.kernelSide("169.254.77.2")
	if code := p.wait(t, 25*time.Second); code != 0 {
		t.Fatalf("-wait exit code %d; output:\n%s", code, p.out.String())
	}
	if got := strings.TrimSpace(p.out.String()); got != "169.254.20.70" {
		t.Errorf("-wait printed %q, want the address", got)
	}
	if err := e.ping("169.254.20.70"); err != nil {
		t.Errorf("the background daemon does not answer: %v", err)
	}
	logb, _ := os.ReadFile(filepath.Join(e.state, e.tap+".log"))
	if !bytes.Contains(logb, []byte("msg=BIND")) {
		t.Errorf("daemon log lacks BIND:\n%s", logb)
	}
}

// TestUsageExitCodes: bad input exits 2 from the binary too.
func TestUsageExitCodes(t *testing.T) {
	netns.RequireRoot(t)
	for _, args := range [][]string{{"-i", "aipt0", "-a", "0"}, {"-o", "if=aipt0,delay=9000"}, {"-i", "x", "-o", "if=y"}} {
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stderr = &out
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != daemon.ExitUsage {
			t.Errorf("%q: %v, want exit %d", args, err, daemon.ExitUsage)
		}
		sc := bufio.NewScanner(&out)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "autoipd: ") {
			t.Errorf("%q: stderr %q", args, out.String())
		}
	}
}

// TestR21_YieldToRoutable: in the autoipd flag form a routable address on
// the NIC (-addr) keeps autoipd from claiming, -f claims anyway, and the
// lsm-autoip form coexists by default.
func TestR21_YieldToRoutable(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		claim bool
	}{
		// No -o here: any -o selects the lsm-autoip defaults (coexist).
		{"flags yield", []string{"-s", "169.254.20.80", "-p", "1", "-w", "1"}, false},
		{"-f forces", []string{"-f", "-s", "169.254.20.80", "-p", "1", "-w", "1"}, true},
		{"-o coexists", []string{"-o", "ip=169.254.20.80,delay=50", "-w", "1"}, true},
		{"-o old yields", []string{"-o", "ip=169.254.20.80,old,delay=50", "-w", "1"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap")
			e.kernelSide("169.254.77.2")
			args := append([]string{"-i", e.tap, "-addr", "192.0.2.10/24"}, c.args...)
			p := e.start(args...)
			if c.claim {
				if got := e.waitBound(15 * time.Second); got != "169.254.20.80" {
					t.Errorf("bound %s, want 169.254.20.80", got)
				}
			} else {
				waitFor(t, 10*time.Second, "the daemon to come up", func() bool {
					r, err := e.status()
					return err == nil && r.LinkUp
				})
				time.Sleep(1500 * time.Millisecond) // more than PROBE_WAIT of either form
				r, err := e.status()
				if err != nil || r.State != "suspended" || r.Configured != "" || r.Counters.Engine.Attempts != 0 {
					t.Errorf("with a routable address: %+v (%v), want suspended without probing", r, err)
				}
			}
			p.signal(t, syscall.SIGTERM)
			if code := p.wait(t, 15*time.Second); code != 0 {
				t.Errorf("exit code %d", code)
			}
		})
	}
}
