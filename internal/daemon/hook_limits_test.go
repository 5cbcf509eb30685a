package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 11 items 1 and 6: what a hook prints is capped, and nothing a hook
// starts outlives it or the daemon.

// TestHookOutputBufferCapsIOCopy: io.Copy into the capture buffer (what
// os/exec does with a hook's pipe) keeps at most hookOutputLimit bytes and
// counts the rest. A buffer that embeds bytes.Buffer gets its ReadFrom
// used by io.Copy, which bypasses the limiting Write.
func TestHookOutputBufferCapsIOCopy(t *testing.T) {
	const total = 3 << 20
	var b limitedBuffer
	n, err := io.Copy(&b, io.LimitReader(zeros{}, total))
	if err != nil || n != total {
		t.Fatalf("io.Copy = %d, %v; want all %d bytes drained", n, err, total)
	}
	if got := len(b.String()); got != hookOutputLimit {
		t.Errorf("kept %d bytes, want %d", got, hookOutputLimit)
	}
	if b.dropped != total-hookOutputLimit {
		t.Errorf("dropped %d bytes, want %d", b.dropped, total-hookOutputLimit)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestHookFloodIsCappedAndReported: a hook printing 5 MB runs to the end
// (its output is drained, not blocked), the log keeps only the first
// hookOutputLimit bytes of it and says how many were dropped.
func TestHookFloodIsCappedAndReported(t *testing.T) {
	const flood = 5_000_000
	var logs syncBuffer
	h := newHookRunner(writeScript(t, "yes 123456789 | head -c "+strconv.Itoa(flood)+"\necho done >&2\n"), "tap9", time.Minute, testLogger(&logs))
	h.enqueue(hookCall{event: HookBind})
	h.close(context.Background())
	out := logs.String()
	if !strings.Contains(out, `msg="hook ran"`) || !strings.Contains(out, `line=done`) {
		t.Fatalf("the flooding hook did not run to its end:\n%.2000s", out)
	}
	if want := "dropped_bytes=" + strconv.Itoa(flood-hookOutputLimit); !strings.Contains(out, `msg="hook stdout truncated"`) || !strings.Contains(out, want) {
		t.Errorf("log does not report the truncation with %s", want)
	}
	if kept := strings.Count(out, "line=123456789"); kept*10 > hookOutputLimit {
		t.Errorf("%d lines of hook output logged: more than the %d-byte cap", kept, hookOutputLimit)
	}
	if len(out) > 20*hookOutputLimit {
		t.Errorf("log grew to %d bytes for one hook run", len(out))
	}
}

// hookPIDs waits until the hook script has written its pid file (one pid
// a line) with n pids, and returns them.
func hookPIDs(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if f := strings.Fields(string(b)); len(f) >= n {
			var pids []int
			for _, s := range f[:n] {
				p, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("pid file %q", b)
				}
				pids = append(pids, p)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook wrote no %d pids to %s within 10 s (got %q)", n, path, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs (gone, or a zombie
// waiting for a reaper that is not us).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// waitGone waits up to 5 s for every pid to be gone.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for !processGone(p) {
			if time.Now().After(deadline) {
				syscall.Kill(p, syscall.SIGKILL)
				t.Errorf("%s: process %d still runs", what, p)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestHookChildrenDieWithTheHook: a hook that leaves a background child
// behind and exits: the child is killed with the hook's process group, and
// the hook still counts as having run.
func TestHookChildrenDieWithTheHook(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	var logs syncBuffer
	h := newHookRunner(writeScript(t, "sleep 1000 &\necho $! > "+pidFile+"\nexit 0\n"), "tap9", time.Minute, testLogger(&logs))
	h.enqueue(hookCall{event: HookBind})
	h.close(context.Background())
	waitGone(t, "the hook's background child", hookPIDs(t, pidFile, 1)...)
	if !strings.Contains(logs.String(), `msg="hook ran"`) {
		t.Errorf("hook not logged as run:\n%s", logs.String())
	}
}

// TestHookTimeoutKillsTheGroup: a hook that outlives -hook-timeout is
// killed with its children.
func TestHookTimeoutKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	var logs syncBuffer
	h := newHookRunner(writeScript(t, "echo $$ > "+pidFile+"\nsleep 1000 &\necho $! >> "+pidFile+"\nwait\n"), "tap9", 300*time.Millisecond, testLogger(&logs))
	h.enqueue(hookCall{event: HookBind})
	h.close(context.Background())
	waitGone(t, "the timed-out hook", hookPIDs(t, pidFile, 2)...)
	if !strings.Contains(logs.String(), "hook timed out and was killed") {
		t.Errorf("timeout not logged:\n%s", logs.String())
	}
}

// TestHookShutdownWaitsVisiblyThenKills: at shutdown the runner says which
// hook it waits for, and when the wait is cut short (a second SIGTERM) it
// kills the running hook's process group, drops the queued hooks and says
// so, instead of leaving them running after the daemon exits.
func TestHookShutdownWaitsVisiblyThenKills(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	var logs syncBuffer
	h := newHookRunner(writeScript(t, "echo $$ > "+pidFile+"\nsleep 1000 &\necho $! >> "+pidFile+"\nwait\n"), "tap9", time.Hour, testLogger(&logs))
	h.enqueue(hookCall{event: HookStop, addr: "169.254.9.9"})
	h.enqueue(hookCall{event: HookBind})
	pids := hookPIDs(t, pidFile, 2)

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	go func() { h.close(ctx); close(closed) }()
	waiting := regexp.MustCompile(`msg="waiting for hook" .*event=STOP .*pid=` + strconv.Itoa(pids[0]))
	deadline := time.Now().Add(10 * time.Second)
	for !waiting.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no log line says which hook shutdown waits for:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // the second SIGTERM
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return after its context ended")
	}
	waitGone(t, "the running hook and its child", pids...)
	out := logs.String()
	if !strings.Contains(out, "gave up waiting for hooks") || !strings.Contains(out, "dropped_queued=1") {
		t.Errorf("abort not logged with the dropped hook count:\n%s", out)
	}
	if strings.Contains(out, "event=BIND") {
		t.Errorf("the queued BIND hook was started after the abort:\n%s", out)
	}
}
