package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

func TestParseBenchAndMedian(t *testing.T) {
	out := `goos: linux
BenchmarkEngineFrameUnrelated-2   	22113746	        57.22 ns/op	1048.57 MB/s	       0 B/op	       0 allocs/op
BenchmarkEngineFrameUnrelated-2   	22113746	        60.00 ns/op	1048.57 MB/s	       0 B/op	       0 allocs/op
BenchmarkEngineFrameUnrelated-2   	22113746	        50.00 ns/op	1048.57 MB/s	       0 B/op	       0 allocs/op
BenchmarkDetectorHandleFrameConflict/suppressed-2         	15578845	        75.48 ns/op	       0 B/op	       0 allocs/op
BenchmarkTAPFloodConflictDetection-2   	       1	1164135134 ns/op	         1.000 conflicts-detected	    212729 frames/s	         8.053 p50-ms
--- FAIL: BenchmarkSomething
PASS
`
	set, err := parseBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if v, n := set.get("BenchmarkEngineFrameUnrelated", "ns/op"); v != 57.22 || n != 3 {
		t.Errorf("median %v of %d, want 57.22 of 3", v, n)
	}
	if v, _ := set.get("BenchmarkDetectorHandleFrameConflict/suppressed", "allocs/op"); v != 0 {
		t.Errorf("allocs %v", v)
	}
	if v, _ := set.get("BenchmarkTAPFloodConflictDetection", "frames/s"); v != 212729 {
		t.Errorf("frames/s %v", v)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median %v, want 2.5", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// The virtual-time schedule is a property of MAC and timing only, and a
// restart (pause and resume at the start) draws PROBE_WAIT again.
func TestScheduledClaim(t *testing.T) {
	mac := acd.MAC{0x02, 0xb0, 0, 0, 0, 1}
	fast := autoip.QNXOptions{DelayMS: 1, Probes: 1, Announces: 1, WaitSeconds: 1}
	d, a, err := scheduledClaim(mac, fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d < time.Second || d > time.Second+time.Millisecond || !autoip.InRange(a) {
		t.Errorf("fast claim %v of %v, want 1 s .. 1.001 s", d, a)
	}
	rfc, _, err := scheduledClaim(mac, autoip.DefaultQNXOptions(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// PROBE_WAIT 0..1 s + 2 gaps of 1..2 s + ANNOUNCE_WAIT 2 s.
	if rfc < 4*time.Second || rfc > 7*time.Second {
		t.Errorf("RFC claim %v, want 4..7 s", rfc)
	}
	again, _, _ := scheduledClaim(mac, autoip.DefaultQNXOptions(), 1)
	restarted, _, _ := scheduledClaim(mac, autoip.DefaultQNXOptions(), 2)
	if again != rfc || restarted == rfc {
		t.Errorf("same run %v vs %v; restarted %v", rfc, again, restarted)
	}
}

func TestParseDaemonLog(t *testing.T) {
	log := `{"time":"2026-11-23T12:03:37.256352971Z","level":"INFO","msg":"link state changed","iface":"x","up":true}
{"time":"2026-11-23T12:03:37.257360741Z","level":"INFO","msg":"autoip started","iface":"x"}
{"time":"2026-11-23T12:03:37.257509652Z","level":"INFO","msg":"state","from":"stopped","to":"waiting","addr":"169.254.122.4"}
{"time":"2026-11-23T12:03:37.257609652Z","level":"INFO","msg":"state","from":"waiting","to":"link-down","addr":""}
{"time":"2026-11-23T12:03:37.257709652Z","level":"INFO","msg":"state","from":"link-down","to":"waiting","addr":"169.254.122.4"}
autoipd: not json
{"time":"2026-11-23T12:03:38.260824394Z","level":"INFO","msg":"BIND","addr":"169.254.122.4"}
{"time":"2026-11-23T12:03:38.265839048Z","level":"INFO","msg":"state","from":"probing","to":"announcing","addr":"169.254.122.4"}
{"time":"2026-11-23T12:03:40.265839048Z","level":"INFO","msg":"state","from":"announcing","to":"bound","addr":"169.254.122.4"}
`
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	lg, err := parseDaemonLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if lg.bindAddr != "169.254.122.4" || lg.waitingStates != 2 || lg.engineStart.Nanosecond() != 257509652 || lg.attached.Nanosecond() != 257360741 ||
		lg.boundState.Nanosecond() != 265839048 || lg.linkUp.Nanosecond() != 256352971 {
		t.Errorf("%+v", lg)
	}
}

func TestTableWithoutResults(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"engine", "flood", "paced", "tcp", "crowd", "claim-rfc", "claim-fast", "claim-wait", "sim", "size", "idle"} {
		if err := os.WriteFile(filepath.Join(dir, s+".skip"), []byte("needs root\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := tableMain([]string{"-dir", dir}, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "skipped: needs root") || !strings.Contains(b.String(), "| # | figure |") {
		t.Errorf("table:\n%s", b.String())
	}
}
