package hardening

import (
	"bytes"
	"encoding/json"
	"errors"
	goflag "flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/internal/daemon"
	"github.com/autoip-project/autoip/sim/scenario"
	"github.com/autoip-project/autoip/tap"
)

// FuzzDaemonParse feeds autoipd's command-line parser (daemon.Parse: the
// QNX flags, getopt-style clusters, the lsm-autoip -o option string and the
// long flags) arbitrary argument lists, one argument per line. It never
// panics; it fails only with flag.ErrHelp or a *daemon.UsageError that
// says something; and what it accepts is a configuration the daemon can run
// with: an interface name a TAP can have, an initial address in the usable
// range (R03), timing that maps onto valid RFC constants (R05), values
// within their documented ranges. Parsing is deterministic.
func FuzzDaemonParse(f *testing.F) {
	for _, args := range [][]string{
		{"-i", "tap0"},
		{"-dfv", "-i", "tap0", "-a3", "-p", "2", "-s", "169.254.20.20", "-t", "5", "-w", "1"},
		{"-dvi", "tap0"},
		{"-o", "if=en0,ip=169.254.7.7,debug,delay=200,abandon,force,old,route"},
		{"-oif=en0,debug", "-o", "delay=50,", "-s", "169.254.7.8"},
		{"-i", "tap0", "-o", "if=tap1"},
		{"-status", "-i", "tap0", "-state-dir", "/tmp/x"},
		{"-wait", "-wait-timeout", "2s", "-i", "tap0", "-hook", "/bin/true", "-hook-timeout", "1ms"},
		{"-i", "tap0", "-mac", "02:00:5e:00:00:01", "-seed", "0x10", "-check-interval", "10ms", "-addr", "192.0.2.1/24", "-addr", "10.0.0.1/8"},
		{"-i", "tap0", "-log-format", "json", "-pcap", "/tmp/p", "-create", "-f=false", "-d=true", "--", "x"},
		{"-h"}, {"-i", "x", "-a", "0"}, {"-o", "if=aipt0,delay=9000"}, {"-s", "169.254.255.1", "-i", "t"},
	} {
		f.Add(strings.Join(args, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\n")
		cfg, err := daemon.Parse(args)
		cfg2, err2 := daemon.Parse(args)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cfg, cfg2) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("Parse(%q) is not deterministic: %+v, %v; then %+v, %v", args, cfg, err, cfg2, err2)
		}
		if err != nil {
			var ue *daemon.UsageError
			if !errors.Is(err, goflag.ErrHelp) && !errors.As(err, &ue) {
				t.Fatalf("Parse(%q): error %v (%T) is neither flag.ErrHelp nor a *UsageError", args, err, err)
			}
			if cfg != nil || strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("Parse(%q): config %+v with error %q", args, cfg, err)
			}
			return
		}
		if err := tap.ValidateName(cfg.Iface); err != nil || cfg.Iface == "" {
			t.Fatalf("Parse(%q) accepted interface %q: %v", args, cfg.Iface, err)
		}
		if cfg.Initial.IsValid() && !autoip.InRange(cfg.Initial) {
			t.Fatalf("R03: Parse(%q) accepted initial address %v outside the usable range", args, cfg.Initial)
		}
		if _, _, err := cfg.QNX.Timing(); err != nil {
			t.Fatalf("R05: Parse(%q) accepted timing the engine refuses: %v", args, err)
		}
		if cfg.Status && cfg.Wait {
			t.Fatalf("Parse(%q) accepted -status with -wait", args)
		}
		if cfg.Defend != acd.DefendOnce && cfg.Defend != acd.Abandon {
			t.Fatalf("Parse(%q): defend policy %v", args, cfg.Defend)
		}
		if !cfg.MAC.IsZero() && !cfg.MAC.IsUnicast() {
			t.Fatalf("Parse(%q) accepted MAC %v", args, cfg.MAC)
		}
		if cfg.HookTimeout < time.Millisecond || cfg.HookTimeout > daemon.MaxHookTimeout ||
			cfg.WaitTimeout < 0 || cfg.WaitTimeout > daemon.MaxWaitTimeout ||
			cfg.CheckInterval != 0 && (cfg.CheckInterval < daemon.MinCheckInterval || cfg.CheckInterval > daemon.MaxCheckInterval) {
			t.Fatalf("Parse(%q): durations out of range: %+v", args, cfg)
		}
		if cfg.LogFormat != "text" && cfg.LogFormat != "json" || cfg.StateDir == "" {
			t.Fatalf("Parse(%q): log format %q, state dir %q", args, cfg.LogFormat, cfg.StateDir)
		}
		for _, p := range cfg.Addrs {
			if !p.Addr().Is4() || autoip.LinkLocalPrefix.Contains(p.Addr()) {
				t.Fatalf("Parse(%q) accepted static address %v", args, p)
			}
		}
	})
}

// FuzzScenarioParse feeds the simulator's scenario parser
// (scenario.Parse) arbitrary bytes. It never panics; what it accepts
// validates, survives a JSON round trip unchanged (marshal, parse,
// marshal gives the same bytes), and (when small) builds
// and runs for a few virtual minutes without an operation failing: nothing
// Validate lets through breaks later.
func FuzzScenarioParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "sim", "testdata", "scenarios", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"name":"x","hosts":[{"count":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := scenario.Parse(b)
		if err != nil {
			if sc != nil || err.Error() == "" {
				t.Fatalf("scenario %+v with error %q", sc, err)
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("ParseScenario accepted a scenario Validate refuses: %v", err)
		}
		j, err := json.Marshal(sc)
		if err != nil {
			t.Fatalf("marshal an accepted scenario: %v", err)
		}
		sc2, err := scenario.Parse(j)
		if err != nil {
			t.Fatalf("an accepted scenario, marshalled, is refused: %v\n%s", err, j)
		}
		if j2, err := json.Marshal(sc2); err != nil || !bytes.Equal(j, j2) {
			t.Fatalf("scenario changed in a JSON round trip:\n%s\n%s", j, j2)
		}
		if sc.NumHosts() > 64 || len(sc.Actors) > 16 {
			return // building a million hosts proves nothing more and takes long
		}
		s, err := sc.Build(scenario.Options{})
		if err != nil {
			t.Fatalf("an accepted scenario does not build: %v\n%s", err, b)
		}
		defer s.Close()
		// Run small scenarios until just after their last scheduled
		// operation (whose errors only show when it runs), unless a
		// malformed actor would send millions of frames meanwhile.
		end := time.Second
		for _, ev := range sc.Events {
			end = max(end, time.Duration(ev.At)+time.Duration(ev.For)+time.Second)
		}
		for _, a := range sc.Actors {
			if a.Kind == "malformed" && a.Interval != 0 && time.Duration(a.Interval) < time.Millisecond && a.Count == 0 {
				return
			}
		}
		if sc.NumHosts() > 8 || len(sc.Actors) > 4 || end > time.Hour {
			return
		}
		if err := s.RunUntil(end); err != nil {
			t.Fatalf("an accepted scenario fails while running: %v\n%s", err, b)
		}
	})
}

// FuzzPersistLoad writes arbitrary bytes as a state file and loads it as a
// restart would (persist.File.Load). It never panics; a file it refuses is
// reported as empty or corrupt (never fatal, R04) with the zero state; a
// state it accepts is valid JSON and passes SavedState.Check, and saving it
// and loading it again gives the same state.
func FuzzPersistLoad(f *testing.F) {
	for _, s := range []string{
		"{\n  \"version\": 1,\n  \"address\": \"169.254.20.20\",\n  \"initial\": \"169.254.7.7\",\n  \"conflicts\": 3,\n  \"last_attempt\": \"2025-03-01T12:00:00.123456789Z\"\n}\n",
		`{"version":1,"conflicts":0}`, `{"version":2,"conflicts":0}`, `{"version":1,"conflicts":-1}`,
		`{"version":1,"address":"169.254.0.1","conflicts":0}`, `{"version":1,"address":"10.0.0.1"}`,
		`{"version":1,"unknown":1}`, `{"version":1} {}`, `{"version":1,"last_attempt":"yesterday"}`,
		"", " \n", "{", "null", "[]", `{"version":1,"address":"::1"}`,
	} {
		f.Add([]byte(s))
	}
	// One file per fuzzing process (its inputs run one at a time).
	path := filepath.Join(f.TempDir(), "aiph0.state.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		st := persist.NewFile(path)
		s, err := st.Load()
		if err != nil {
			if !errors.Is(err, persist.ErrEmpty) && !errors.Is(err, persist.ErrCorrupt) {
				t.Fatalf("Load(%q): error %v is neither ErrEmpty nor ErrCorrupt", b, err)
			}
			if !reflect.DeepEqual(s, autoip.SavedState{}) {
				t.Fatalf("Load(%q) returned %+v with error %v", b, s, err)
			}
			return
		}
		if !json.Valid(bytes.TrimSpace(b)) {
			t.Fatalf("Load accepted invalid JSON %q", b)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("Load(%q) accepted a state that fails Check: %+v: %v", b, s, err)
		}
		if s.Addr.IsValid() && !s.Addr.Is4() || s.Initial.IsValid() && !s.Initial.Is4() {
			t.Fatalf("Load(%q) accepted addresses %v, %v", b, s.Addr, s.Initial)
		}
		if err := st.Save(s); err != nil {
			t.Fatalf("Save of a loaded state %+v: %v", s, err)
		}
		s2, err := st.Load()
		if err != nil || s2.Addr != s.Addr || s2.Initial != s.Initial || s2.Conflicts != s.Conflicts || !s2.LastAttempt.Equal(s.LastAttempt) {
			t.Fatalf("round trip of %q: %+v, then %+v (%v)", b, s, s2, err)
		}
	})
}

// TestScenarioValidateRefusesMulticastRestartMAC: a scenario whose restart
// event gives a multicast MAC is refused by ParseScenario, naming the
// field, rather than accepted and failing 40 virtual seconds into the run
// (found by FuzzScenarioParse).
func TestScenarioValidateRefusesMulticastRestartMAC(t *testing.T) {
	b := []byte(`{"name": "x", "hosts": [{"count": 3}],
		"events": [{"at": "40s", "op": "restart", "hosts": [2], "mac": "01:00:00:00:00:00"}]}`)
	sc, err := scenario.Parse(b)
	if err != nil {
		if !strings.Contains(err.Error(), "01:00:00:00:00:00") && !strings.Contains(err.Error(), "unicast") {
			t.Errorf("refused, but the error does not say why: %v", err)
		}
		return
	}
	s, err := sc.Build(scenario.Options{})
	if err != nil {
		t.Fatalf("accepted, then Build fails: %v", err)
	}
	defer s.Close()
	t.Errorf("ParseScenario accepted a restart with a multicast MAC; running it: %v", s.Run())
}
