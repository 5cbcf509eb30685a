package daemon

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/netns"
)

// runningDaemon is Run running on a goroutine inside a throw-away network
// namespace, for tests of start-up and of the files the daemon keeps. The
// namespace holds no TAP unless the test makes one: the daemon then waits
// for it, which is enough for everything but the protocol.
type runningDaemon struct {
	t      *testing.T
	ns     *netns.NS
	state  string
	iface  string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
	code   int
	exited bool
}

// newNS makes this package's kind of namespace.
func newNS(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t, "aiphu")
	ns.DisableIPv6(t)
	return ns
}

// privateStateDir returns a fresh, short state directory (mode 0700, owned
// by us) for a daemon: the status socket path must stay under 108 bytes.
func privateStateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aiphu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startRun runs Run in ns with -i aiphu0 -state-dir state, a fast
// -check-interval and args.
func startRun(t *testing.T, ns *netns.NS, state string, args ...string) *runningDaemon {
	t.Helper()
	return startRunEvery(t, ns, state, "50ms", args...)
}

// startRunEvery is startRun with -check-interval every.
func startRunEvery(t *testing.T, ns *netns.NS, state, every string, args ...string) *runningDaemon {
	t.Helper()
	full := append([]string{"-i", "aiphu0", "-state-dir", state, "-check-interval", every}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDaemon{t: t, ns: ns, state: state, iface: "aiphu0", stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		code := -1
		if err := ns.Do(func() error {
			code = Run(ctx, full, &syncBuffer{}, r.stderr)
			return nil
		}); err != nil {
			r.stderr.Write([]byte("netns: " + err.Error()))
		}
		r.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if !r.exited {
			select {
			case r.code = <-r.done:
				r.exited = true
			case <-time.After(15 * time.Second):
				t.Errorf("Run %q did not return after cancel", args)
			}
		}
		if t.Failed() {
			t.Logf("Run %q log:\n%s", args, r.stderr.String())
		}
	})
	return r
}

// wait waits up to d for Run to return and returns its exit code; it
// fails the test if Run does not return.
func (r *runningDaemon) wait(d time.Duration) int {
	r.t.Helper()
	if r.exited {
		return r.code
	}
	select {
	case r.code = <-r.done:
		r.exited = true
		return r.code
	case <-time.After(d):
		r.t.Fatalf("Run still running after %v; log:\n%s", d, r.stderr.String())
		return -1
	}
}

// stop cancels Run (as SIGTERM would) and returns its exit code.
func (r *runningDaemon) stop() int {
	r.t.Helper()
	r.cancel()
	return r.wait(15 * time.Second)
}

// waitLog waits up to 10 s for the log to contain s.
func (r *runningDaemon) waitLog(s string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), s) {
		if r.exited || time.Now().After(deadline) {
			r.t.Fatalf("log never contained %q:\n%s", s, r.stderr.String())
		}
		select {
		case r.code = <-r.done:
			r.exited = true
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitServing waits until the daemon answers on its status socket.
func (r *runningDaemon) waitServing() *StatusReport {
	r.t.Helper()
	sock := r.path(".sock")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, rep, err := queryStatus(sock, time.Second)
		if err == nil {
			return rep
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no status on %s within 10 s (%v); log:\n%s", sock, err, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *runningDaemon) path(suffix string) string {
	return filepath.Join(r.state, r.iface+suffix)
}

// asNobody runs a command as uid/gid 65534 with no supplementary groups
// and returns its combined output and error.
func asNobody(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to act as another user")
	}
	cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// permOf returns the permission bits of path (not following a last
// symlink).
func permOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
