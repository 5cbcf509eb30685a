package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 11 items 7, 9, 10, 11 and 14: failures are correct and explained.

// TestFatalErrorsOnceInTheLogFormat: a fatal error is written exactly once,
// and with -log-format json every line on stderr is a JSON object, fatal
// errors, usage errors and -status errors included.
func TestFatalErrorsOnceInTheLogFormat(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	held := t.TempDir()
	l, err := lockIface(filepath.Join(held, "tap0.lock"), "tap0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-i", "tap0", "-state-dir", notDir}, ExitFailure, "not a directory"},
		{[]string{"-i", "tap0", "-state-dir", held}, ExitLocked, "already managed by another autoipd (pid " + strconv.Itoa(os.Getpid())},
		{[]string{"-i", "tap0", "-a", "0"}, ExitUsage, "1..100"},
		{[]string{"-status", "-i", "tap0", "-state-dir", t.TempDir()}, ExitFailure, "no autoipd answers"},
	}
	for _, c := range cases {
		for _, format := range []string{"text", "json"} {
			args := append([]string{"-log-format", format}, c.args...)
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), args, &stdout, &stderr); code != c.code {
				t.Errorf("%q: exit %d, want %d:\n%s", args, code, c.code, stderr.String())
			}
			out := stderr.String()
			if n := strings.Count(out, c.want); n != 1 {
				t.Errorf("%q: %q appears %d times, want once:\n%s", args, c.want, n, out)
			}
			if format != "json" {
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Errorf("%q: stderr line is not JSON: %q", args, line)
				} else if m["level"] == "ERROR" && !strings.Contains(m["msg"].(string), c.want) {
					t.Errorf("%q: the ERROR line lacks %q: %q", args, c.want, line)
				}
			}
		}
	}
}

// TestStateDirRemovedWhileRunning: when the state directory disappears
// under a running daemon (a hook's rm -r), the daemon puts back its lock,
// status socket and MAC file: -status answers again, a second daemon is
// refused with exit 3 naming the first, no new MAC is written, and the
// state is saved at stop.
func TestStateDirRemovedWhileRunning(t *testing.T) {
	ns := newNS(t)
	state := privateStateDir(t)
	r := startRun(t, ns, state)
	first := r.waitServing()
	os.RemoveAll(state)
	again := r.waitServing()
	if again.PID != first.PID || again.MAC != first.MAC {
		t.Errorf("status after removal %+v, want the same daemon as %+v", again, first)
	}
	if b, err := os.ReadFile(r.path(".lock")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file after removal: %q, %v", b, err)
	}
	second := startRun(t, ns, state)
	if code := second.wait(10 * time.Second); code != ExitLocked || !strings.Contains(second.stderr.String(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second daemon: exit %d, want %d naming pid %d:\n%s", code, ExitLocked, os.Getpid(), second.stderr.String())
	}
	if b, _ := os.ReadFile(r.path(".mac")); strings.TrimSpace(string(b)) != first.MAC {
		t.Errorf("MAC file holds %q, want the running daemon's %s", b, first.MAC)
	}
	os.RemoveAll(state) // again, right before the stop
	if code := r.stop(); code != ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
	if _, err := os.Stat(r.path(".state.json")); err != nil {
		t.Errorf("state not saved at stop: %v", err)
	}
}

// tapInNS makes the TAP aiphu0 in ns with its kernel side up.
func tapInNS(t *testing.T, r interface {
	IP(testing.TB, ...string) string
}) {
	t.Helper()
	r.IP(t, "tuntap", "add", "dev", "aiphu0", "mode", "tap")
	r.IP(t, "addr", "add", "169.254.77.2/16", "dev", "aiphu0")
	r.IP(t, "link", "set", "aiphu0", "up")
}

// waitStatus polls the status until cond holds.
func (r *runningDaemon) waitStatus(what string, cond func(raw []byte, rep *StatusReport) bool) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, rep, err := queryStatus(r.path(".sock"), time.Second)
		if err == nil && cond(raw, rep) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; last status %s (%v); log:\n%s", what, raw, err, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var fastRun = []string{"-o", "delay=20", "-w", "1"}

// TestStateNotSavedAtStopExits1: when the state cannot be saved at stop,
// the daemon exits 1 and says what was lost.
func TestStateNotSavedAtStopExits1(t *testing.T) {
	ns := newNS(t)
	tapInNS(t, ns)
	r := startRun(t, ns, privateStateDir(t), append([]string{"-s", "169.254.20.91"}, fastRun...)...)
	r.waitStatus("the address", func(_ []byte, rep *StatusReport) bool { return rep.Configured == "169.254.20.91" })
	path := r.path(".state.json")
	// The state is written off the protocol path: wait until the save of
	// the claim is on disk, or it could re-create the file under the test.
	waitUntil(t, "the claim saved", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(b), "169.254.20.91")
	})
	os.RemoveAll(path)
	if err := os.Mkdir(path, 0o700); err != nil { // rename(2) cannot replace a directory
		t.Fatal(err)
	}
	if code := r.stop(); code != ExitFailure {
		t.Errorf("exit %d after a failed save, want %d", code, ExitFailure)
	}
	msg := r.stderr.String()
	for _, w := range []string{"state not saved", path, "lost", "169.254.20.91"} {
		if !strings.Contains(msg, w) {
			t.Errorf("log lacks %q", w)
		}
	}
}

// TestSuspendedSaysWhy: the flag form with a routable -addr stays
// suspended, and both the log (WARN) and -status say why and what to do.
func TestSuspendedSaysWhy(t *testing.T) {
	ns := newNS(t)
	tapInNS(t, ns)
	r := startRun(t, ns, privateStateDir(t), "-addr", "10.0.0.1/24", "-p", "1", "-w", "1")
	r.waitStatus("suspended with a reason", func(raw []byte, rep *StatusReport) bool {
		var m map[string]any
		json.Unmarshal(raw, &m)
		why, _ := m["reason"].(string)
		return rep.State == "suspended" && strings.Contains(why, "10.0.0.1/24") && strings.Contains(why, "-f")
	})
	r.waitLog("level=WARN")
	var warn string
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "10.0.0.1/24") {
			warn = line
		}
	}
	if !strings.Contains(warn, "-f") || !strings.Contains(warn, "-o") {
		t.Errorf("no WARN line names the routable address and the way out (-f or -o):\n%s", r.stderr.String())
	}
}

// TestTAPHeldByAnotherProcess: a second daemon with another state
// directory on a TAP the first holds exits 3 and says which process holds
// the TAP, writing no MAC file and no state file and running no hook
// (its client was attached before the open was refused).
func TestTAPHeldByAnotherProcess(t *testing.T) {
	ns := newNS(t)
	tapInNS(t, ns)
	first := startRun(t, ns, privateStateDir(t))
	first.waitServing()
	hookDir := t.TempDir()
	hook := filepath.Join(hookDir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1\" >> "+filepath.Join(hookDir, "ran")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	second := startRun(t, ns, privateStateDir(t), "-hook", hook)
	if code := second.wait(10 * time.Second); code != ExitLocked {
		t.Errorf("exit %d, want %d", code, ExitLocked)
	}
	msg := second.stderr.String()
	for _, w := range []string{"TAP aiphu0 is held by another process", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
	if _, err := os.Stat(second.path(".mac")); err == nil {
		t.Error("the refused daemon wrote a MAC file")
	}
	if _, err := os.Stat(second.path(".state.json")); err == nil {
		t.Error("the refused daemon wrote a state file")
	}
	if b, err := os.ReadFile(filepath.Join(hookDir, "ran")); err == nil {
		t.Errorf("the refused daemon ran its hook: %q", b)
	}
}

// TestCreateBringsTheTAPUp: -create makes the TAP and brings it up (it is
// ours); a TAP someone else left down is waited for, and the log says so.
func TestCreateBringsTheTAPUp(t *testing.T) {
	ns := newNS(t)
	r := startRun(t, ns, privateStateDir(t), "-create")
	r.waitStatus("the created TAP up", func(_ []byte, rep *StatusReport) bool { return rep.LinkUp })
	if out := ns.IP(t, "link", "show", "aiphu0"); !strings.Contains(out, ",UP") {
		t.Errorf("created TAP not up: %s", out)
	}
	r.stop()

	ns.IP(t, "tuntap", "add", "dev", "aiphu0", "mode", "tap")
	down := startRun(t, ns, privateStateDir(t))
	down.waitLog("ip link set aiphu0 up")
	down.waitStatus("the reason", func(raw []byte, rep *StatusReport) bool {
		return !rep.LinkUp && bytes.Contains(raw, []byte(`"reason": "the TAP aiphu0 is down`))
	})
	if out := ns.IP(t, "link", "show", "aiphu0"); strings.Contains(out, ",UP") {
		t.Errorf("a TAP the daemon did not create was brought up: %s", out)
	}
}
