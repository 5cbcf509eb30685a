package autoip

import (
	"fmt"
	"net/netip"
	"time"
)

// SavedState is what the engine keeps across restarts (R04, R11). The
// engine never writes it anywhere: it emits OutSaveState whenever it
// changes, and the caller stores it (see package persist).
type SavedState struct {
	// Addr is the address held last, tried first after a restart.
	Addr netip.Addr
	// Initial is the configured initial address when Addr was held. It
	// tells a changed configuration from an unchanged one.
	Initial netip.Addr
	// Conflicts counts conflicts since the host last held an address for
	// RATE_LIMIT_INTERVAL.
	Conflicts int
	// LastAttempt is when the last attempt's first probe was sent.
	LastAttempt time.Time
}

// Check reports the first problem with s that would make the engine ignore
// part of it: an address outside the usable range or a negative count.
func (s SavedState) Check() error {
	if s.Addr.IsValid() && !InRange(s.Addr) {
		return fmt.Errorf("saved address %v is outside %v-%v", s.Addr, FirstAddr, LastAddr)
	}
	if s.Initial.IsValid() && !InRange(s.Initial) {
		return fmt.Errorf("saved initial address %v is outside %v-%v", s.Initial, FirstAddr, LastAddr)
	}
	if s.Conflicts < 0 {
		return fmt.Errorf("saved conflict count %d is negative", s.Conflicts)
	}
	return nil
}
