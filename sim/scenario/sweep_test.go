package scenario

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/splitmix"
	"github.com/autoip-project/autoip/sim"
)

// sweepScenario builds a random scenario for seed: a handful of hosts, a
// random arrival pattern, some forced collisions (shared initial
// addresses or engine seeds), a random fault model without loss, and
// sometimes a flap or a partition that heals.
func sweepScenario(seed uint64, lossy bool) *Scenario {
	r := splitmix.Source{State: seed * splitmix.Golden}
	pick := func(n uint64) int { return int(r.Next() % n) }
	sc := &Scenario{Name: fmt.Sprintf("sweep-%d", seed), Seed: seed, Duration: Duration(5 * time.Minute)}
	n := 4 + pick(8)
	starts := []string{"all", "staggered", "random"}
	for n > 0 {
		k := min(n, 1+pick(4))
		hs := HostSpec{Count: k, Start: starts[pick(3)], Interval: Duration(time.Duration(1+pick(2000)) * time.Millisecond), Window: Duration(time.Duration(1+pick(20)) * time.Second)}
		switch pick(4) {
		case 0:
			hs.Initial = fmt.Sprintf("169.254.%d.%d", 1+pick(3), pick(3))
		case 1:
			hs.EngineSeed = uint64(1 + pick(3))
		}
		if pick(4) == 0 {
			hs.Timing = &TimingSpec{QNXDelayMS: 100 + pick(3000)}
		}
		if pick(5) == 0 {
			hs.Defend = "abandon"
		}
		if pick(6) == 0 {
			hs.LinkUpDelay = Duration(time.Duration(pick(3000)) * time.Millisecond)
		}
		sc.Hosts = append(sc.Hosts, hs)
		n -= k
	}
	if pick(2) == 0 {
		sc.Link = LinkSpec{
			Latency: Duration(time.Duration(pick(2000)) * time.Microsecond), Jitter: Duration(time.Duration(pick(3000)) * time.Microsecond),
			Dup: float64(pick(3)) / 10, Reorder: float64(pick(3)) / 10, Echo: float64(pick(3)) / 4,
		}
	}
	if lossy {
		sc.Link.Loss = 0.05 + float64(pick(10))/100
	}
	total := sc.NumHosts()
	switch pick(3) {
	case 0:
		sc.Events = append(sc.Events, EventSpec{At: Duration(time.Duration(5+pick(20)) * time.Second), Op: "flap", Hosts: []int{pick(uint64(total))}, For: Duration(time.Duration(1+pick(3000)) * time.Millisecond)})
	case 1:
		var a, b []int
		for i := 0; i < total; i++ {
			if pick(2) == 0 {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		sc.Events = append(sc.Events,
			EventSpec{At: 0, Op: "partition", Groups: [][]int{a, b}},
			EventSpec{At: Duration(30 * time.Second), Op: "merge"},
			EventSpec{At: Duration(30 * time.Second), Op: "flap", All: true, For: Duration(time.Second)})
	}
	return sc
}

// TestInvariantSweep runs random scenarios over many seeds: at the end no
// two hosts share an address, every host is bound, and the RFC timing and
// rate limits held throughout (see Check).
func TestInvariantSweep(t *testing.T) {
	seeds := uint64(60)
	if testing.Short() {
		seeds = 12
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		sc := sweepScenario(seed, false)
		if err := sc.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s, r, err := Run(sc, Options{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, v := range r.Violations {
			t.Errorf("seed %d (%d hosts): %v", seed, sc.NumHosts(), v)
		}
		if !r.Quiet {
			t.Errorf("seed %d: not quiet after %v", seed, time.Duration(sc.Duration))
		}
		s.Close()
	}
}

// TestInvariantSweepLossy repeats the sweep with 5-15% loss. Loss can hide
// a conflict, so uniqueness and liveness are not required; the RFC timing
// and rate limits still are.
func TestInvariantSweepLossy(t *testing.T) {
	seeds := uint64(30)
	if testing.Short() {
		seeds = 6
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		sc := sweepScenario(seed, true)
		s, err := sc.Build(Options{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, v := range s.Check(sim.CheckOptions{}) {
			if v.Rule != "unique" {
				t.Errorf("seed %d: %v", seed, v)
			}
		}
		s.Close()
	}
}

// TestQueuesNeverOverflow: with the smallest queue, a storm of conflicts
// loses no frame, because the hub drains a host after every step.
func TestQueuesNeverOverflow(t *testing.T) {
	sc := load(t, libraryDir+"/kitchen-sink.json")
	sc.Queue = 2
	o := run(t, sc)
	if d := o.rep.Delivery; d.NoBufferSpace != 0 {
		t.Errorf("%d frames dropped on full queues", d.NoBufferSpace)
	}
	full := load(t, libraryDir+"/kitchen-sink.json")
	if p := run(t, full); !bytes.Equal(p.pcap, o.pcap) {
		t.Error("queue size changed the run")
	}
}
