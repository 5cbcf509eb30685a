package hardening

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 11, as an operator meets the daemon: real signals to the built
// binary, a hook that hangs at stop, hostile files next to -wait, and a
// run as an unprivileged user on a TAP made for it.

// processGone reports whether pid no longer runs (gone, or a zombie).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// TestHungStopHookSecondSIGTERMStopsAtOnce (item 6): with a STOP hook that
// hangs (and has a child) and a one-hour -hook-timeout, SIGTERM saves the
// state and logs that it waits for the hook; a second SIGTERM kills the
// hook's process group and exits 0 at once; nothing the hook started is
// left running.
func TestHungStopHookSecondSIGTERMStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := newDenv(t, 0x61, 0)
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	hook := filepath.Join(dir, "hook")
	body := "#!/bin/sh\n[ \"$1\" = STOP ] || exit 0\necho $$ > " + pids + "\nsleep 1000 &\necho $! >> " + pids + "\nwait\n"
	if err := os.WriteFile(hook, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p := e.start(append([]string{"-hook", hook, "-hook-timeout", "1h"}, fastArgs...)...)
	addr := e.waitBound(20 * time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "a log line saying shutdown waits for the STOP hook", func() bool {
		return strings.Contains(p.out.String(), `msg="waiting for hook"`) && strings.Contains(p.out.String(), "event=STOP")
	})
	s, ok := checkStateFile(t, e.statePath())
	if !ok || s.Addr != addr {
		t.Errorf("state before the second SIGTERM: %+v (exists %v), want address %v saved", s, ok, addr)
	}
	var hookPIDs []int
	for _, f := range strings.Fields(readFile(pids)) {
		n, _ := strconv.Atoi(f)
		hookPIDs = append(hookPIDs, n)
	}
	if len(hookPIDs) != 2 {
		t.Fatalf("hook pids %v", hookPIDs)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if c := p.state.ExitCode(); c != 0 {
			t.Errorf("exit %d after the second SIGTERM, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not stop the daemon within 10 s")
	}
	waitFor(t, 5*time.Second, "the hook and its child to be killed", func() bool {
		return processGone(hookPIDs[0]) && processGone(hookPIDs[1])
	})
	if !strings.Contains(p.out.String(), "killed the running hook's process group") {
		t.Errorf("the kill is not logged:\n%s", p.out.String())
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestWaitLogThroughSymlinkRefused (item 2): -wait does not append its
// daemon's log through a link planted at STATE/IFACE.log.
func TestWaitLogThroughSymlinkRefused(t *testing.T) {
	t.Parallel()
	e := newDenv(t, 0x62, 0)
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(e.state, e.tap+".log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // code that followed the link left a daemon running
		if pid, err := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(e.state, e.tap+".lock")))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	p := e.start(append([]string{"-wait", "-wait-timeout", "2s"}, fastArgs...)...)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("-wait did not return")
	}
	if c := p.state.ExitCode(); c != 1 || !strings.Contains(p.out.String(), "symbolic link") {
		t.Errorf("-wait with a linked log: exit %d, want 1 naming the link:\n%s", c, p.out.String())
	}
	if got := readFile(target); got != "precious\n" {
		t.Errorf("the link's target was written: %q", got)
	}
}

// TestUnprivilegedOnPreMadeTAP (operator's kit): a TAP made for user 65534
// (ip tuntap add ... user 65534) is enough for autoipd run as that user,
// with a state directory of its own: it claims an address the kernel side
// pings, answers -status for its user, and stops with exit 0.
func TestUnprivilegedOnPreMadeTAP(t *testing.T) {
	t.Parallel()
	e := newDenv(t, 0x63, 0)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run as another user")
	}
	// The harness's TAP belongs to root: make one for user 65534.
	e.wire.close()
	e.ns.IP(t, "link", "del", e.tap)
	e.ns.IP(t, "tuntap", "add", "dev", e.tap, "mode", "tap", "user", "65534")
	e.ns.IP(t, "link", "set", e.tap, "up")
	e.ns.IP(t, "addr", "add", kernelLL+"/16", "dev", e.tap)
	bin := autoipd(t)
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil { // others may run the binary
		t.Fatal(err)
	}
	if err := os.Chmod(e.state, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(e.state, "nobody")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(state, 65534, 65534)
	nobody := []string{"netns", "exec", e.ns.Name(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin}
	run := append([]string{"ip"}, append(nobody, "-i", e.tap, "-state-dir", state, "-check-interval", "50ms", "-s", "169.254.20.63", "-o", "delay=50", "-w", "1")...)
	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		// Debian makes /dev/net/tun 0666; some containers make it 0600.
		// Give the daemon a 0666 node in a mount namespace of its own
		// rather than touch the host's.
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("/dev/net/tun is not usable by other users here and unshare(1) is missing to make a private one")
		}
		run = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs -o mode=755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200 && exec "$@"`, "sh"}, run...)
	}
	cmd := exec.Command(run[0], run[1:]...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("autoipd as uid 65534:\n%s", out.String())
		}
	}()
	var report string
	waitFor(t, 20*time.Second, "a bound address", func() bool {
		b, err := exec.Command("ip", append(nobody, "-status", "-i", e.tap, "-state-dir", state)...).Output()
		report = string(b)
		return err == nil && strings.Contains(report, `"configured": "169.254.20.63"`)
	})
	if err := e.ping(netipMust("169.254.20.63")); err != nil {
		t.Errorf("kernel side cannot ping the unprivileged daemon: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("exit after SIGTERM: %v", waitErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if fi, err := os.Stat(filepath.Join(state, e.tap+".state.json")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("state file not saved by uid 65534: %v", err)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
