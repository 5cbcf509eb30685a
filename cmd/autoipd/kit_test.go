package main

// The operator's kit (issue 11): the example hook, the systemd unit and the
// README lines that use them.

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/daemon"
)

const (
	exampleHook = "../../contrib/hook/autoipd-hook.sh"
	unitFile    = "../../contrib/systemd/autoipd@.service"
)

// TestExampleHookLogsEventAndVariables: the shipped hook prints the event
// and every AUTOIPD_* variable it is given, exits 0 for the four events and
// 1 for anything else.
func TestExampleHookLogsEventAndVariables(t *testing.T) {
	env := []string{"PATH=/usr/bin:/bin", "AUTOIPD_EVENT=CONFLICT", "AUTOIPD_IFACE=tap0", "AUTOIPD_ADDRESS=169.254.1.2",
		"AUTOIPD_MAC=02:00:00:00:00:01", "AUTOIPD_PID=42", "AUTOIPD_TIME=2026-01-01T00:00:00Z",
		"AUTOIPD_CONFLICT_MAC=02:00:00:00:00:99", "AUTOIPD_PACKET_KIND=probe", "AUTOIPD_PHASE=bound", "AUTOIPD_REASON=test"}
	for _, ev := range []string{"BIND", "CONFLICT", "UNBIND", "STOP"} {
		cmd := exec.Command(exampleHook, ev, "tap0", "169.254.1.2")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", ev, err, out)
		}
		if !strings.Contains(string(out), "autoipd "+ev+" on tap0: address 169.254.1.2") {
			t.Errorf("%s: event not logged:\n%s", ev, out)
		}
		for _, kv := range env[1:] {
			if !strings.Contains(string(out), "  "+kv+"\n") {
				t.Errorf("%s: %s not shown:\n%s", ev, kv, out)
			}
		}
	}
	var ee *exec.ExitError
	if err := exec.Command(exampleHook, "NONSENSE", "tap0", "").Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("unknown event: %v, want exit 1", err)
	}
}

// TestREADMEHookLineUsesTheShippedHook: the README's -hook examples name
// the example hook, which exists and is executable.
func TestREADMEHookLineUsesTheShippedHook(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "-hook ")
		if i < 0 || !strings.Contains(line, "autoipd ") {
			continue
		}
		n++
		if arg := strings.Fields(line[i+len("-hook "):])[0]; filepath.Base(arg) != "autoipd-hook.sh" {
			t.Errorf("README runs -hook %s, not the shipped contrib/hook/autoipd-hook.sh", arg)
		}
	}
	if n == 0 {
		t.Error("README has no autoipd command line with -hook")
	}
	if fi, err := os.Stat(exampleHook); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s: %v, mode %v; want an executable file", exampleHook, err, fi.Mode())
	}
}

// TestSystemdUnitVerifies: systemd-analyze verify accepts an instance of
// autoipd@.service, its ExecStart is a command line autoipd accepts, and
// it gives the 0700 state directory and TAP access the daemon needs.
func TestSystemdUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"StateDirectory=autoipd\n", "StateDirectoryMode=0700\n", "DeviceAllow=/dev/net/tun rw\n",
		"CapabilityBoundingSet=CAP_NET_ADMIN\n", "-state-dir /var/lib/autoipd"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	var execStart []string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(rest)
		}
	}
	if len(execStart) < 2 {
		t.Fatalf("no ExecStart in %s", unitFile)
	}
	var args []string
	for _, a := range execStart[1:] {
		if a != "$OPTIONS" { // empty without /etc/default/autoipd-IFACE
			args = append(args, strings.ReplaceAll(a, "%I", "tap0"))
		}
	}
	if cfg, err := daemon.Parse(args); err != nil || cfg.Iface != "tap0" || cfg.StateDir != "/var/lib/autoipd" {
		t.Errorf("autoipd %q: %+v, %v", args, cfg, err)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); the unit was only checked as text")
	}
	// verify checks that ExecStart's program exists: point it at one that
	// does (this test binary) in a copy of the unit.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyUnit := strings.ReplaceAll(string(unit), execStart[0], self)
	if err := os.WriteFile(filepath.Join(dir, "autoipd@.service"), []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "autoipd@tap0.service")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestExampleHookUnderTheDaemon: the README's command line with the
// shipped hook: the daemon's log shows the hook's event and variables.
func TestExampleHookUnderTheDaemon(t *testing.T) {
	e := newEnv(t)
	hook, err := filepath.Abs(exampleHook)
	if err != nil {
		t.Fatal(err)
	}
	p := e.start(append([]string{"-create", "-i", e.tap, "-s", "169.254.20.21", "-hook", hook}, fast...)...)
	e.kernelSide("169.254.77.2")
	e.waitBound(15 * time.Second)
	waitFor(t, 10*time.Second, "the hook's output in the log", func() bool {
		return strings.Contains(p.out.String(), `line="  AUTOIPD_ADDRESS=169.254.20.21"`)
	})
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{`line="autoipd BIND on aipt0: address 169.254.20.21"`, `line="autoipd STOP on aipt0: address 169.254.20.21"`, `line="  AUTOIPD_MAC=`} {
		if !strings.Contains(p.out.String(), w) {
			t.Errorf("log lacks %s", w)
		}
	}
}
