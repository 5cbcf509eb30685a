package splitmix

import "testing"

// TestGolden pins the outputs: candidate addresses and every simulation
// depend on them, so they must never change.
func TestGolden(t *testing.T) {
	if got := Mix(0); got != 0 {
		t.Errorf("Mix(0) = %#x, want 0", got)
	}
	if got := Mix(1); got != 0x5692161d100b05e5 {
		t.Errorf("Mix(1) = %#x", got)
	}
	// The first outputs of SplitMix64 seeded with 0 (the reference
	// implementation's test vector).
	s := Source{}
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := s.Next(); got != want {
			t.Errorf("Next #%d = %#x, want %#x", i, got, want)
		}
	}
	if got := Derive(1, 2, 3); got != 0x50cce0dd1079ecea {
		t.Errorf("Derive(1, 2, 3) = %#x", got)
	}
}

// TestDeriveIndependent: changing any of seed, index or stream changes the
// key.
func TestDeriveIndependent(t *testing.T) {
	seen := map[uint64][3]uint64{}
	for seed := uint64(0); seed < 4; seed++ {
		for idx := uint64(0); idx < 64; idx++ {
			for st := uint64(0); st < 16; st++ {
				k := Derive(seed, idx, st)
				if prev, dup := seen[k]; dup {
					t.Fatalf("Derive(%d, %d, %d) = Derive%v", seed, idx, st, prev)
				}
				seen[k] = [3]uint64{seed, idx, st}
			}
		}
	}
}

func TestUnit(t *testing.T) {
	if Unit(0) != 0 {
		t.Errorf("Unit(0) = %v", Unit(0))
	}
	if u := Unit(^uint64(0)); u >= 1 || u < 0.9999999 {
		t.Errorf("Unit(max) = %v, want just below 1", u)
	}
	if Unit(1<<63) != 0.5 {
		t.Errorf("Unit(2^63) = %v, want 0.5", Unit(1<<63))
	}
}
