package scenario

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/pcapfile"
	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
)

// runOut is everything one run produces.
type runOut struct {
	sim    *sim.Sim
	rep    *report.Report
	pcap   []byte
	trace  []byte
	svg    []byte
	report []byte
	events []sim.Event
}

// run runs sc with every output captured. The simulation is closed when
// the test ends.
func run(t *testing.T, sc *Scenario) runOut {
	t.Helper()
	return runWith(t, sc, Options{})
}

// runWith is run with the options of out (its writers are replaced).
func runWith(t *testing.T, sc *Scenario, out Options) runOut {
	t.Helper()
	var pcap, trace, svg, rep bytes.Buffer
	out.PCAP, out.Trace = &pcap, &trace
	s, r, err := Run(sc, out)
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := report.WriteSVG(&svg, s, report.SVGOptions{}); err != nil {
		t.Fatalf("svg: %v", err)
	}
	if err := r.WriteJSON(&rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	return runOut{sim: s, rep: r, pcap: pcap.Bytes(), trace: trace.Bytes(), svg: svg.Bytes(), report: rep.Bytes(), events: s.Events()}
}

func load(t *testing.T, path string) *Scenario {
	t.Helper()
	sc, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// libraryDir holds the scenario library.
const libraryDir = "../testdata/scenarios"

func scenarioFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(libraryDir + "/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", libraryDir, err)
	}
	return files
}

// bugClassChecks holds, for the scenarios that reproduce a known bug class
// of other implementations, assertions beyond the file's expectations.
var bugClassChecks = map[string]func(t *testing.T, o runOut){
	// A host must never take its own echoed frame for another host's.
	"own-frame-echo": func(t *testing.T, o runOut) {
		for _, e := range o.events {
			if e.Kind == sim.EventConflict && e.Host != 5 {
				t.Errorf("host %d had a conflict on %v at %v: only host 5, arriving late, may", e.Host, e.Addr, e.At)
			}
		}
		if o.rep.Delivery.Echoed == 0 {
			t.Error("nothing was echoed")
		}
	},
	// The first host to probe keeps the address; the three others see its
	// probe before they probe and move on, each exactly once.
	"simultaneous-probe": func(t *testing.T, o runOut) {
		first := -1
		var firstAt time.Duration
		for _, e := range o.events {
			if e.Kind == sim.EventProbe && e.Addr == netip.MustParseAddr("169.254.50.50") && (first < 0 || e.At < firstAt) {
				first, firstAt = e.Host, e.At
			}
		}
		if h, _ := o.sim.Host(first); h.Addr != netip.MustParseAddr("169.254.50.50") {
			t.Errorf("host %d probed first but holds %v", first, h.Addr)
		}
	},
	// No candidate survives while the rogue answers probes; attempts are
	// rate-limited (the invariant checker verifies the spacing).
	"probe-denial": func(t *testing.T, o runOut) {
		for _, e := range o.events {
			if e.Kind == sim.EventBind && e.At < 3*time.Minute {
				t.Errorf("host %d bound %v at %v while every probe was answered", e.Host, e.Addr, e.At)
			}
		}
		perHost := map[int]int{}
		for _, e := range o.events {
			if e.Kind == sim.EventRateLimit {
				perHost[e.Host]++
			}
		}
		for h := 0; h < 3; h++ {
			if perHost[h] < 2 {
				t.Errorf("host %d was rate-limited %d times, want at least 2", h, perHost[h])
			}
		}
	},
	// After MAX_CONFLICTS, first probes of consecutive attempts are at
	// least RATE_LIMIT_INTERVAL apart.
	"rate-limit": func(t *testing.T, o runOut) {
		for h := 0; h < 2; h++ {
			conflicts, last := 0, time.Duration(-1)
			limited := 0
			for _, e := range o.sim.HostEvents(h) {
				switch e.Kind {
				case sim.EventConflict:
					conflicts++
				case sim.EventProbe:
					if conflicts >= 4 && last >= 0 {
						limited++
						if e.At-last < 30*time.Second {
							t.Errorf("host %d: attempt at %v only %v after the previous one, with %d conflicts", h, e.At, e.At-last, conflicts)
						}
					}
					last = e.At
				}
			}
			if limited < 2 {
				t.Errorf("host %d: %d rate-limited attempts, want at least 2", h, limited)
			}
		}
	},
	// The host whose cable moved re-probed its old address after link-up.
	"cable-change": func(t *testing.T, o runOut) {
		reprobed := false
		up := time.Duration(-1)
		for _, e := range o.sim.HostEvents(0) {
			if e.Kind == sim.EventLinkUp {
				up = e.At
			}
			if e.Kind == sim.EventProbe && up >= 0 && e.At > up && e.Addr == netip.MustParseAddr("169.254.33.33") {
				reprobed = true
			}
		}
		if !reprobed {
			t.Error("host 0 did not probe its last address again after link-up")
		}
		h2, _ := o.sim.Host(2)
		if h2.MAC.String() != "02:aa:bb:cc:dd:02" {
			t.Errorf("host 2 has MAC %v after the restart", h2.MAC)
		}
	},
	// Both pairs held their address twice at the moment of the merge.
	"partition-merge": func(t *testing.T, o runOut) {
		for _, pair := range [][2]int{{0, 1}, {2, 3}} {
			for _, h := range pair {
				bound := false
				for _, e := range o.sim.HostEvents(h) {
					if e.Kind == sim.EventBind && e.At < 30*time.Second {
						bound = true
					}
				}
				if !bound {
					t.Errorf("host %d was not bound before the merge", h)
				}
			}
		}
	},
	// Defending once keeps the address; abandoning gives it up.
	"rogue-host": func(t *testing.T, o runOut) {
		for h := 0; h < 4; h++ {
			if n := len(o.rep.HostDetail[h].BoundAddrs); n != 1 {
				t.Errorf("host %d bound %d addresses, want 1 (it defends)", h, n)
			}
		}
	},
}

// TestScenarioLibrary runs every scenario in testdata/scenarios twice:
// the outcome must match the file's expectations (and the invariants), the
// bug-class assertions above, and both runs must produce byte-identical
// pcap, trace, report and picture.
func TestScenarioLibrary(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range scenarioFiles(t) {
		sc := load(t, f)
		seen[sc.Name] = true
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); sc.Name != want {
			t.Errorf("%s: name %q, want %q", f, sc.Name, want)
		}
		t.Run(sc.Name, func(t *testing.T) {
			a := run(t, sc)
			for _, msg := range sc.CheckExpect(a.rep) {
				t.Error(msg)
			}
			if check := bugClassChecks[sc.Name]; check != nil {
				check(t, a)
			}
			b := run(t, load(t, f))
			for _, c := range []struct {
				what string
				x, y []byte
			}{{"pcap", a.pcap, b.pcap}, {"trace", a.trace, b.trace}, {"report", a.report, b.report}, {"svg", a.svg, b.svg}} {
				if !bytes.Equal(c.x, c.y) {
					t.Errorf("%s differs between two runs: %s vs %s", c.what, digest(c.x), digest(c.y))
				}
			}
			if len(a.pcap) <= pcapfile.HeaderLen {
				t.Error("empty pcap")
			}
		})
	}
	for name := range bugClassChecks {
		if !seen[name] {
			t.Errorf("bug class scenario %s.json is missing", name)
		}
	}
}

// TestFilteredEqualsUnfiltered runs every scenario with and without
// delivery filtering: the frames on the segment, the events and the report
// must be the same, except for the number of deliveries (which is what the
// filter saves) and of deliveries lost (loss is drawn per delivery).
func TestFilteredEqualsUnfiltered(t *testing.T) {
	for _, f := range scenarioFiles(t) {
		sc := load(t, f)
		if testing.Short() && sc.NumHosts() > 50 {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			a := run(t, sc)
			un := load(t, f)
			un.Unfiltered = true
			b := run(t, un)
			if !bytes.Equal(a.pcap, b.pcap) {
				t.Errorf("pcap differs: filtered %s, unfiltered %s", digest(a.pcap), digest(b.pcap))
			}
			if !slices.Equal(a.events, b.events) {
				t.Errorf("events differ (%d vs %d)", len(a.events), len(b.events))
			}
			if ta, tb := dropRx(a.trace), dropRx(b.trace); ta != tb {
				t.Errorf("trace without rx lines differs")
			}
			ra, rb := *a.rep, *b.rep
			if rb.Delivery.Deliveries < ra.Delivery.Deliveries {
				t.Errorf("unfiltered made %d deliveries, fewer than filtered %d", rb.Delivery.Deliveries, ra.Delivery.Deliveries)
			}
			ra.Delivery.Deliveries, rb.Delivery.Deliveries = 0, 0
			ra.Delivery.Lost, rb.Delivery.Lost = 0, 0
			ra.Filtered, rb.Filtered = false, false
			ja, _ := json.Marshal(ra)
			jb, _ := json.Marshal(rb)
			if !bytes.Equal(ja, jb) {
				t.Errorf("reports differ: %s", firstDiff(ja, jb))
			}
		})
	}
}

// firstDiff shows where a and b first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n  %s\n  %s", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
}

func dropRx(trace []byte) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(trace), "\n") {
		if !strings.Contains(l, " rx ") {
			b.WriteString(l)
		}
	}
	return b.String()
}
