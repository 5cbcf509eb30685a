package hardening

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// full reports whether the full sizes are selected (AIP_HARDEN_FULL=1, as
// `make hardening` sets).
func full() bool {
	v := os.Getenv("AIP_HARDEN_FULL")
	return v != "" && v != "0" && v != "false"
}

// size returns the integer knob name, else the full or short default.
func size(t testing.TB, name string, short, long int) int {
	t.Helper()
	def := short
	if full() {
		def = long
	}
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// duration returns the duration knob name, else the full or short default.
func duration(t testing.TB, name string, short, long time.Duration) time.Duration {
	t.Helper()
	def := short
	if full() {
		def = long
	}
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration", name, v)
	}
	return d
}

// float returns the float knob name, else def.
func float(t testing.TB, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		t.Fatalf("%s=%q: want a probability in 0..1", name, v)
	}
	return f
}

// flag returns the boolean knob name, else def.
func flag(name string, def bool) bool {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	return v != "0" && v != "false"
}

// seed returns AIP_HARDEN_SEED, else a fixed seed, and logs it so that a
// failure can be replayed.
func seed(t testing.TB) uint64 {
	t.Helper()
	s := uint64(20250301)
	if v := os.Getenv("AIP_HARDEN_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("AIP_HARDEN_SEED=%q: want an unsigned integer", v)
		}
		s = n
	}
	t.Logf("seed %d (AIP_HARDEN_SEED replays it)", s)
	return s
}
