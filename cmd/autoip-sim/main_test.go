package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scenarios = "../../sim/testdata/scenarios/"

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-progress", "0"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestFlagValidation: every bad flag value exits 2 with a message naming
// the value and the accepted range.
func TestFlagValidation(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-hosts", "0"}, "-hosts 0 is out of range 1..1048576"},
		{[]string{"-hosts", "2000000"}, "-hosts 2000000 is out of range 1..1048576"},
		{[]string{"-start", "later"}, `-start "later": want all, staggered or random`},
		{[]string{"-interval", "0s"}, "-interval 0s is out of range (0, 24h0m0s]"},
		{[]string{"-window", "48h"}, "-window 48h0m0s is out of range (0, 24h0m0s]"},
		{[]string{"-same-initial", "169.254.0.5"}, `-same-initial "169.254.0.5" is not an address in 169.254.1.0-169.254.254.255`},
		{[]string{"-defend", "fight"}, `-defend "fight": want once or abandon (RFC 3927 §2.5)`},
		{[]string{"-delay", "9000"}, "-delay 9000 ms is out of range 1..8000 ms"},
		{[]string{"-duration", "0s"}, "-duration 0s is out of range (0, 720h0m0s]"},
		{[]string{"-latency", "2m"}, "-latency 2m0s is out of range 0..1m0s"},
		{[]string{"-jitter", "-1s"}, "-jitter -1s is out of range 0..1m0s"},
		{[]string{"-loss", "1.5"}, "-loss 1.5 is out of range 0..1"},
		{[]string{"-dup", "-0.1"}, "-dup -0.1 is out of range 0..1"},
		{[]string{"-reorder", "NaN"}, "-reorder NaN is out of range 0..1"},
		{[]string{"-echo", "2"}, "-echo 2 is out of range 0..1"},
		{[]string{"-queue", "5000"}, "-queue 5000 is out of range 1..4096"},
		{[]string{"-report", "xml"}, `-report "xml": want text, json or none`},
		{[]string{"-svg-rows", "0"}, "-svg-rows 0 is out of range 1..10000"},
		{[]string{"-progress", "2h"}, "-progress 2h0m0s is out of range 0..1h"},
		{[]string{"-memlimit", "-1"}, "-memlimit -1 MiB is out of range"},
		{[]string{"-trace-hosts", "0,10"}, `-trace-hosts: "10" is not a host index 0..9`},
		{[]string{"-hosts", "3", "-trace-hosts", "x"}, `-trace-hosts: "x" is not a host index 0..2`},
		{[]string{"-trace-frames", "rx"}, `-trace-frames "rx": want all, sent or none`},
		{[]string{"-hold"}, "-hold needs -tap"},
		{[]string{"-tap", "a/b"}, `-tap "a/b": `},
		{[]string{"-tap", "much-too-long-name"}, `-tap "much-too-long-name": `},
		{[]string{"-scenario", scenarios + "rogue-host.json", "-hosts", "3"}, "-hosts describes the hosts and cannot be combined with -scenario"},
		{[]string{"-scenario", "/nonexistent.json"}, "-scenario /nonexistent.json: load scenario"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-hosts", "x"}, `invalid value "x" for flag -hosts`},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestHelp(t *testing.T) {
	code, _, stderr := runCLI(t, "-h")
	if code != 0 || !strings.Contains(stderr, "usage: autoip-sim") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestFlagRun runs a forced-collision boot storm from flags.
func TestFlagRun(t *testing.T) {
	code, out, stderr := runCLI(t, "-hosts", "5", "-same-initial", "169.254.7.7", "-latency", "1ms", "-jitter", "1ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"bound         5/5   unique addresses 5", "conflicts     4 (0 while bound)", "invariants    ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestScenarioOutputs writes every output of a scenario twice and checks
// they are well-formed and identical.
func TestScenarioOutputs(t *testing.T) {
	outputs := func(dir string) map[string][]byte {
		code, stdout, stderr := runCLI(t, "-scenario", scenarios+"partition-merge.json", "-report", "json", "-host-detail",
			"-pcap", filepath.Join(dir, "run.pcap"), "-svg", filepath.Join(dir, "run.svg"),
			"-trace", filepath.Join(dir, "run.trace"), "-trace-hosts", "0,1", "-json", filepath.Join(dir, "run.json"))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		m := map[string][]byte{"stdout": []byte(stdout)}
		for _, f := range []string{"run.pcap", "run.svg", "run.trace", "run.json"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: %v (%d bytes)", f, err, len(b))
			}
			m[f] = b
		}
		return m
	}
	a, b := outputs(t.TempDir()), outputs(t.TempDir())
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between two runs", k)
		}
	}
	var rep struct {
		Name       string `json:"name"`
		Bound      int    `json:"bound"`
		HostDetail []struct {
			Addr string `json:"addr"`
		} `json:"host_detail"`
	}
	if err := json.Unmarshal(a["run.json"], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Name != "partition-merge" || rep.Bound != 8 || len(rep.HostDetail) != 8 || rep.HostDetail[0].Addr != "169.254.77.77" {
		t.Errorf("report: %+v", rep)
	}
	if !bytes.Equal(a["stdout"], a["run.json"]) {
		t.Error("-json file and stdout differ")
	}
	if !bytes.Contains(a["run.trace"], []byte(" h1    CONFLICT   169.254.77.77 (probing)")) {
		t.Errorf("trace lacks host 1's conflict:\n%s", a["run.trace"])
	}
}

// TestTraceFrames: -trace-frames chooses the frames the trace shows:
// "none" tells the story of the events alone (what autoip-trace printed).
func TestTraceFrames(t *testing.T) {
	for _, c := range []struct {
		mode   string
		tx, rx bool
	}{{"all", true, true}, {"sent", true, false}, {"none", false, false}} {
		code, out, stderr := runCLI(t, "-hosts", "4", "-same-initial", "169.254.20.20", "-trace", "-", "-trace-frames", c.mode, "-report", "none")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.mode, code, stderr)
		}
		if got := strings.Contains(out, " tx "); got != c.tx {
			t.Errorf("%s: tx lines %v, want %v", c.mode, got, c.tx)
		}
		if got := strings.Contains(out, " rx "); got != c.rx {
			t.Errorf("%s: rx lines %v, want %v", c.mode, got, c.rx)
		}
		if strings.Count(out, "CONFLICT   169.254.20.20 (probing)") != 3 || strings.Count(out, " BIND ") != 4 {
			t.Errorf("%s: the story lacks three conflicts and four binds:\n%s", c.mode, out)
		}
	}
}

// TestTapMissing: -tap on a TAP that does not exist fails (exit 1) naming
// it; without the privileges to open TAPs it fails too, saying why.
func TestTapMissing(t *testing.T) {
	code, _, stderr := runCLI(t, "-tap", "aipsnone0", "-hosts", "2")
	if code != 1 || !strings.Contains(stderr, "-tap aipsnone0: ") {
		t.Errorf("exit %d, stderr %q; want 1 naming the TAP", code, stderr)
	}
}

// TestExpectationFailure: a scenario whose expectation does not hold
// exits 1 and says why.
func TestExpectationFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wrong.json")
	doc := `{"name": "wrong", "hosts": [{"count": 2, "initial": "169.254.8.8"}], "expect": {"holders": {"169.254.8.8": 2}}}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "-scenario", path, "-report", "none")
	if code != 1 || !strings.Contains(stderr, "169.254.8.8 is held by 1 hosts, want 2") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "-scenario", path, "-report", "none", "-check=false"); code != 0 {
		t.Errorf("-check=false: exit %d", code)
	}
}

// TestPerf: -perf adds the wall-clock and memory figures.
func TestPerf(t *testing.T) {
	code, out, stderr := runCLI(t, "-hosts", "20", "-perf")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "sim/wall") || !strings.Contains(out, "KiB/host") || !strings.Contains(out, "peak RSS") {
		t.Errorf("no perf figures:\n%s", out)
	}
}
