package autoip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// MaxLinkUpDelay bounds Config.LinkUpDelay (autoipd -t).
const MaxLinkUpDelay = time.Hour

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = acd.ErrInvalidConfig

// Config configures an Engine. The zero value of every field except HW is
// usable and documented.
type Config struct {
	// HW is the interface's hardware address. Required; must be unicast.
	HW acd.MAC
	// Seed keys the candidate sequence, and only that. Zero means
	// SeedFromMAC(HW). Giving two hosts the same Seed forces them onto the
	// same candidates (a collision test); their delays still differ.
	Seed uint64
	// Initial is tried first (QNX ip=, autoipd -s; R03). It must lie in
	// 169.254.1.0-169.254.254.255; the zero Addr means none.
	Initial netip.Addr
	// Saved is the state stored by a previous run (R04, R11). Parts that
	// fail SavedState.Check are ignored, never fatal.
	Saved SavedState
	// Timing holds the RFC constants; zero fields take RFC defaults.
	Timing acd.Timing
	// LinkUpDelay is waited after the link comes up (and at Start) before
	// PROBE_WAIT begins (autoipd -t). 0..MaxLinkUpDelay.
	LinkUpDelay time.Duration
	// Defend is the policy on conflicts while bound: acd.DefendOnce (the
	// default) or acd.Abandon. acd.DefendForever is refused: RFC 3927 §2.5
	// allows only those two for link-local addresses.
	Defend acd.DefendPolicy
	// YieldToRoutable suspends the engine, withdrawing the address, while
	// SetRoutable reports a routable address on the interface.
	YieldToRoutable bool
	// Rand draws the random delays. Nil means a PCG keyed by the seed and
	// HW, so that the same seed and MAC always give the same run, and two
	// hosts given the same Seed still draw different delays.
	Rand *rand.Rand
}

// Validate reports the first invalid field, naming its value and what is
// accepted; the error wraps ErrInvalidConfig. NewEngine calls it; callers
// that build configurations ahead of time (the simulator) call it too.
func (c Config) Validate() error {
	if !c.HW.IsUnicast() {
		return fmt.Errorf("%w: hardware address %v is not unicast", ErrInvalidConfig, c.HW)
	}
	if c.Initial.IsValid() && !InRange(c.Initial) {
		return fmt.Errorf("%w: initial address %v is outside %v-%v", ErrInvalidConfig, c.Initial, FirstAddr, LastAddr)
	}
	if err := c.Timing.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.LinkUpDelay < 0 || c.LinkUpDelay > MaxLinkUpDelay {
		return fmt.Errorf("%w: link-up delay %v, want 0..%v", ErrInvalidConfig, c.LinkUpDelay, MaxLinkUpDelay)
	}
	if c.Defend == acd.DefendForever {
		// RFC 3927 §2.5 allows only (a) and (b) for link-local
		// addresses; (c) is for addresses checked with acd directly.
		return fmt.Errorf("%w: defend policy %v is not allowed for link-local addresses (RFC 3927 §2.5 allows abandon or defend-once)", ErrInvalidConfig, c.Defend)
	}
	if c.Defend > acd.DefendForever {
		return fmt.Errorf("%w: defend policy %d unknown", ErrInvalidConfig, c.Defend)
	}
	return nil
}

// sanitizeSaved drops the parts of s that fail their checks.
func sanitizeSaved(s SavedState) SavedState {
	if s.Addr.IsValid() && !InRange(s.Addr) {
		s.Addr = netip.Addr{}
	}
	if s.Initial.IsValid() && !InRange(s.Initial) {
		s.Initial = netip.Addr{}
	}
	if s.Conflicts < 0 {
		s.Conflicts = 0
	}
	return s
}

var errNotRunning = errors.New("engine not started")
