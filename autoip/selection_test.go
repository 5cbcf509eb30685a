package autoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// attemptOrder runs cfg against a host claiming every address and returns
// the addresses of the first n attempts.
func attemptOrder(t *testing.T, cfg Config, n int) []netip.Addr {
	t.Helper()
	h := startedHarness(t, cfg)
	h.responders = append(h.responders, rogueReplier(rogueMAC))
	for len(events(h.outs, EventProbe)) < n {
		if !h.next() {
			t.Fatalf("engine went idle:\n%s", h.dump())
		}
	}
	return probedAddrs(h.outs)[:n]
}

// TestR03_InitialProbedFirst: the configured initial address is the first
// probed and, if free, the one bound.
func TestR03_InitialProbedFirst(t *testing.T) {
	initial := mustAddr("169.254.77.88")
	cfg := testConfig()
	cfg.Initial = initial
	h := startedHarness(t, cfg)
	got := h.runUntilBound()
	if got != initial {
		t.Fatalf("bound %v, want the initial address %v", got, initial)
	}
	probes := filter(h.outs, isOurProbe)
	if len(probes) == 0 || probes[0].Frame.TargetIP != initial {
		t.Fatalf("first probe %v, want one for %v", probes, initial)
	}
	for _, p := range probes {
		if p.Frame.TargetIP != initial {
			t.Errorf("probe for %v, want only %v", p.Frame.TargetIP, initial)
		}
	}
}

// TestR03_InitialTakenContinuesPseudoRandomly: when the initial address is
// taken, selection continues with Candidate(seed, 0), 1, ... and never
// probes the initial address again in that run.
func TestR03_InitialTakenContinuesPseudoRandomly(t *testing.T) {
	seed := SeedFromMAC(ourMAC)
	tests := []struct {
		name    string
		initial netip.Addr
	}{
		{"arbitrary", mustAddr("169.254.77.88")},
		// The initial address is also the first hashed candidate: the
		// hashed sequence must skip it.
		{"equal to Candidate(seed,0)", Candidate(seed, 0)},
		{"equal to Candidate(seed,3)", Candidate(seed, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Initial = tt.initial
			got := attemptOrder(t, cfg, 30)
			want := append([]netip.Addr{tt.initial}, candidates(seed, 29, tt.initial)...)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("attempts\n got %v\nwant %v", got, want)
			}
			for i, a := range got[1:] {
				if a == tt.initial {
					t.Errorf("attempt %d re-probes the initial address %v", i+1, a)
				}
			}
		})
	}

	// And when only the initial address is taken, the engine binds the
	// first hashed candidate.
	initial := mustAddr("169.254.77.88")
	cfg := testConfig()
	cfg.Initial = initial
	h := startedHarness(t, cfg)
	h.responders = append(h.responders, rogueFor(rogueMAC, initial))
	if got, want := h.runUntilBound(), Candidate(seed, 0); got != want {
		t.Fatalf("bound %v, want Candidate(seed, 0) = %v", got, want)
	}
	if n := len(filter(h.outs, isProbeOf(initial))); n != 1 {
		t.Errorf("%d probes for the taken initial address, want 1", n)
	}
}

// TestR03_InitialOutOfRangeRefused: NewEngine refuses an initial address
// outside the usable range and names it.
func TestR03_InitialOutOfRangeRefused(t *testing.T) {
	for _, s := range []string{"169.254.0.5", "169.254.255.1", "10.1.2.3", "169.254.0.0", "169.254.255.255", "fe80::1", "::ffff:169.254.1.1"} {
		t.Run(s, func(t *testing.T) {
			cfg := testConfig()
			cfg.Initial = mustAddr(s)
			e, err := NewEngine(cfg)
			if err == nil {
				t.Fatalf("NewEngine(Initial %s) succeeded", s)
			}
			if e != nil {
				t.Errorf("NewEngine returned an engine with error %v", err)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name the address %s", err, s)
			}
			if !strings.Contains(err.Error(), "169.254.1.0") || !strings.Contains(err.Error(), "169.254.254.255") {
				t.Errorf("error %q does not state the range", err)
			}
		})
	}
	for _, s := range []string{"169.254.1.0", "169.254.254.255"} {
		cfg := testConfig()
		cfg.Initial = mustAddr(s)
		if _, err := NewEngine(cfg); err != nil {
			t.Errorf("NewEngine(Initial %s): %v", s, err)
		}
	}
}

// TestR04_SavedAddressProbedFirst: the address held last is probed before
// the MAC-seeded candidate and bound if free.
func TestR04_SavedAddressProbedFirst(t *testing.T) {
	saved := mustAddr("169.254.200.1")
	cfg := testConfig()
	cfg.Saved = SavedState{Addr: saved}
	h := startedHarness(t, cfg)
	if got := h.runUntilBound(); got != saved {
		t.Fatalf("bound %v, want the saved address %v", got, saved)
	}
	got := attemptOrder(t, cfg, 4)
	want := append([]netip.Addr{saved}, candidates(SeedFromMAC(ourMAC), 3)...)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("attempts %v, want %v", got, want)
	}
}

// TestR04_InitialAndSavedOrder: the documented order rule between the
// configured initial address and the saved one.
func TestR04_InitialAndSavedOrder(t *testing.T) {
	seed := SeedFromMAC(ourMAC)
	ini := mustAddr("169.254.10.10")
	old := mustAddr("169.254.20.20") // another initial address, configured before
	sav := mustAddr("169.254.30.30")
	c := candidates(seed, 3)
	tests := []struct {
		name    string
		initial netip.Addr
		saved   SavedState
		want    []netip.Addr
	}{
		{"unchanged initial: saved address first", ini, SavedState{Addr: sav, Initial: ini}, []netip.Addr{sav, ini, c[0], c[1]}},
		{"changed initial: initial first", ini, SavedState{Addr: sav, Initial: old}, []netip.Addr{ini, sav, c[0], c[1]}},
		{"initial newly configured: initial first", ini, SavedState{Addr: sav}, []netip.Addr{ini, sav, c[0], c[1]}},
		{"initial was held: tried once", ini, SavedState{Addr: ini, Initial: ini}, []netip.Addr{ini, c[0], c[1], c[2]}},
		{"initial held under another initial", ini, SavedState{Addr: ini, Initial: old}, []netip.Addr{ini, c[0], c[1], c[2]}},
		{"initial removed from the configuration", netip.Addr{}, SavedState{Addr: sav, Initial: old}, []netip.Addr{sav, c[0], c[1], c[2]}},
		{"initial only", ini, SavedState{}, []netip.Addr{ini, c[0], c[1], c[2]}},
		{"nothing", netip.Addr{}, SavedState{}, []netip.Addr{c[0], c[1], c[2]}},
		{"saved equals Candidate(seed,0)", netip.Addr{}, SavedState{Addr: c[0]}, []netip.Addr{c[0], c[1], c[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Initial = tt.initial
			cfg.Saved = tt.saved
			got := attemptOrder(t, cfg, len(tt.want))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("attempts\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestR04_BadSavedStateIgnored: a saved address outside the range (or any
// other broken part) is ignored, never fatal.
func TestR04_BadSavedStateIgnored(t *testing.T) {
	first := Candidate(SeedFromMAC(ourMAC), 0)
	tests := []struct {
		name  string
		saved SavedState
	}{
		{"reserved low", SavedState{Addr: mustAddr("169.254.0.7")}},
		{"reserved high", SavedState{Addr: mustAddr("169.254.255.7")}},
		{"private", SavedState{Addr: mustAddr("10.0.0.1")}},
		{"ipv6", SavedState{Addr: mustAddr("fe80::1")}},
		{"bad initial", SavedState{Addr: mustAddr("169.254.255.1"), Initial: mustAddr("192.168.1.1")}},
		{"negative count", SavedState{Conflicts: -5, LastAttempt: t0.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.saved.Check() == nil {
				t.Errorf("SavedState.Check(%+v) = nil, want an error", tt.saved)
			}
			cfg := testConfig()
			cfg.Saved = tt.saved
			h := startedHarness(t, cfg)
			if got := h.runUntilBound(); got != first {
				t.Fatalf("bound %v, want Candidate(seed,0) %v", got, first)
			}
			if n := len(events(h.outs, EventRateLimit)); n != 0 {
				t.Errorf("%d rate-limit events", n)
			}
			for _, s := range filter(h.outs, isKind(OutSaveState)) {
				if err := s.Saved.Check(); err != nil {
					t.Errorf("engine saves a bad state: %v", err)
				}
			}
		})
	}
	if err := (SavedState{Addr: mustAddr("169.254.1.0"), Initial: mustAddr("169.254.254.255")}).Check(); err != nil {
		t.Errorf("Check of a good state: %v", err)
	}
}

// TestR04_SaveStateOnBind: binding emits OutSaveState with the bound
// address and the configured initial address, after OutAddAddress.
func TestR04_SaveStateOnBind(t *testing.T) {
	for _, initial := range []netip.Addr{{}, mustAddr("169.254.9.9")} {
		t.Run(fmt.Sprint(initial), func(t *testing.T) {
			cfg := testConfig()
			cfg.Initial = initial
			h := startedHarness(t, cfg)
			addr := h.runUntilBound()
			var bindStep []step
			for _, s := range h.outs {
				if s.Step == h.steps {
					bindStep = append(bindStep, s)
				}
			}
			saves := filter(bindStep, isKind(OutSaveState))
			if len(saves) != 1 {
				t.Fatalf("bind step has %d save-states:\n%s", len(saves), dumpSteps(bindStep))
			}
			sv := saves[0].Saved
			if sv.Addr != addr || sv.Initial != initial {
				t.Errorf("saved %+v, want Addr %v Initial %v", sv, addr, initial)
			}
			if sv.LastAttempt.IsZero() || sv.LastAttempt.After(h.now) {
				t.Errorf("saved LastAttempt %v, want the first probe's time", sv.LastAttempt)
			}
			if got := h.e.Saved(); got != sv {
				t.Errorf("Saved() = %+v, last OutSaveState %+v", got, sv)
			}
			// The saved state restarts on the same address.
			cfg.Saved = sv
			h2 := startedHarness(t, cfg)
			if got := h2.runUntilBound(); got != addr {
				t.Errorf("restart from saved state bound %v, want %v", got, addr)
			}
		})
	}
}
