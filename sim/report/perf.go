package report

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/autoip-project/autoip/sim"
)

// Perf holds the wall-clock and memory figures of a run. They vary from
// run to run and machine to machine, so they are kept out of reports
// unless asked for.
type Perf struct {
	Hosts int `json:"hosts"`
	// WallS is the wall time Run took; BuildS the part of it spent
	// building netstacks; RunS the rest.
	WallS  float64 `json:"wall_s"`
	BuildS float64 `json:"build_s"`
	RunS   float64 `json:"run_s"`
	// SimPerWall is simulated time divided by wall time.
	SimPerWall float64 `json:"sim_per_wall"`
	// HeapMiB is the live heap after garbage collection, with the
	// simulation still alive, minus the heap measured before it was built;
	// HeapPerHostKiB divides it by the number of hosts.
	HeapMiB        float64 `json:"heap_mib"`
	HeapPerHostKiB float64 `json:"heap_per_host_kib"`
	// PeakRSSMiB is the process's peak resident set (VmHWM), 0 if unknown.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Goroutines int     `json:"goroutines"`
}

// HeapInUse returns the live heap after two garbage collections.
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// PeakRSS returns the process's peak resident set size (VmHWM in
// /proc/self/status) in bytes.
func PeakRSS() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmHWM:") {
			continue
		}
		fields := strings.Fields(line[len("VmHWM:"):])
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("peak RSS: cannot parse %q", line)
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peak RSS: cannot parse %q: %w", line, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM line in /proc/self/status")
}

// Measure measures the run so far. baseline is HeapInUse() taken before
// the simulation was built. It forces garbage collections.
func Measure(s *sim.Sim, baseline uint64) *Perf {
	heap := HeapInUse()
	run, build := s.WallTimes()
	n := s.NumHosts()
	p := &Perf{
		Hosts:      n,
		WallS:      run.Seconds(),
		BuildS:     build.Seconds(),
		RunS:       (run - build).Seconds(),
		Goroutines: runtime.NumGoroutine(),
	}
	if run > 0 {
		p.SimPerWall = float64(s.Now()) / float64(run)
	}
	if heap > baseline {
		p.HeapMiB = float64(heap-baseline) / (1 << 20)
		if n > 0 {
			p.HeapPerHostKiB = float64(heap-baseline) / 1024 / float64(n)
		}
	}
	if rss, err := PeakRSS(); err == nil {
		p.PeakRSSMiB = float64(rss) / (1 << 20)
	}
	return p
}

// ResetPeakRSS resets the process's peak resident set size (VmHWM) to the
// current one, where the kernel allows it (writing 5 to
// /proc/self/clear_refs, Linux 4.0 and later). It reports whether it did.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
