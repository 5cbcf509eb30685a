package sim_test

import (
	"fmt"
	"testing"

	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
)

// BenchmarkBootStorm boots N hosts at the same instant on an ideal segment
// and runs until every one is bound. Run it once per size:
//
//	go test -bench BootStorm -benchtime 1x -run '^$' ./sim/
//
// It reports wall time (wall-s: build and run; build-s: building the
// netstacks), simulated time over wall time (sim/wall), live heap per host
// after garbage collection (heap-KiB/host) and the process's peak resident
// set (peak-RSS-MiB, reset before each size where the kernel allows).
func BenchmarkBootStorm(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				report.ResetPeakRSS()
				base := report.HeapInUse()
				b.StartTimer()
				s, err := sim.New(sim.Config{Seed: uint64(i + 1), Name: "boot-storm"})
				if err != nil {
					b.Fatal(err)
				}
				for h := 0; h < n; h++ {
					if _, err := s.AddHost(sim.HostConfig{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				p := report.Measure(s, base)
				r := report.Build(s, report.Options{Check: sim.CheckOptions{AllBound: true}})
				if r.Bound != n || r.Unique != n || len(r.Violations) != 0 {
					b.Fatalf("%d/%d bound, %d unique, violations %v", r.Bound, n, r.Unique, r.Violations)
				}
				b.ReportMetric(p.WallS, "wall-s")
				b.ReportMetric(p.BuildS, "build-s")
				b.ReportMetric(p.SimPerWall, "sim/wall")
				b.ReportMetric(p.HeapPerHostKiB, "heap-KiB/host")
				b.ReportMetric(p.PeakRSSMiB, "peak-RSS-MiB")
				b.ReportMetric(float64(r.Frames.Total), "frames")
				b.ReportMetric(float64(r.Delivery.Deliveries), "deliveries")
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
