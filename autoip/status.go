package autoip

import (
	"net/netip"
	"time"
)

// State is where the engine is.
type State uint8

// Engine states.
const (
	StateStopped    State = iota // not started or stopped
	StateLinkDown                // started; waiting for the link
	StateSuspended               // started; yielding to a routable address or held back by DHCP (Engine.SetHeld)
	StateWaiting                 // waiting before the first probe (PROBE_WAIT, -t, rate limit)
	StateProbing                 // probing, or waiting ANNOUNCE_WAIT after the last probe
	StateAnnouncing              // bound; announcements still going out
	StateBound                   // bound and defending
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateLinkDown:
		return "link-down"
	case StateSuspended:
		return "suspended"
	case StateWaiting:
		return "waiting"
	case StateProbing:
		return "probing"
	case StateAnnouncing:
		return "announcing"
	case StateBound:
		return "bound"
	}
	return "state(?)"
}

// IsBound reports whether the address is configured in this state.
func (s State) IsBound() bool { return s == StateAnnouncing || s == StateBound }

// Stats counts what the engine saw and did since it was made.
type Stats struct {
	Frames             uint64 `json:"frames"`              // frames handed to HandleFrame or HandleARP
	NotARP             uint64 `json:"not_arp"`             // Ethernet frames that were not ARP
	Malformed          uint64 `json:"malformed"`           // ARP that failed to decode (R24)
	Own                uint64 `json:"own"`                 // our own frames looped back (R09)
	BadSender          uint64 `json:"bad_sender"`          // zero, broadcast or multicast sender MACs
	Attempts           uint64 `json:"attempts"`            // candidates probed (first probe sent)
	ProbeConflicts     uint64 `json:"probe_conflicts"`     // conflicts while probing
	BoundConflicts     uint64 `json:"bound_conflicts"`     // conflicts while bound, defended or not
	Defences           uint64 `json:"defences"`            // defensive announcements sent
	DefencesSuppressed uint64 `json:"defences_suppressed"` // conflicts inside DEFEND_INTERVAL under DefendForever
	Binds              uint64 `json:"binds"`               // addresses claimed
	RateLimited        uint64 `json:"rate_limited"`        // attempts delayed by RATE_LIMIT_INTERVAL
	Sent               uint64 `json:"sent"`                // ARP frames sent (asked for, less NotSent)
	NotSent            uint64 `json:"not_sent"`            // ARP frames the link did not send (Engine.NotSent)
}

// Status is a snapshot of the engine.
type Status struct {
	State State
	// Addr is the candidate being probed or the bound address.
	Addr netip.Addr
	// Conflicts is the count that drives rate limiting (SavedState).
	Conflicts int
	// RateLimitedUntil is set while an attempt waits for the rate limit.
	RateLimitedUntil time.Time
	// LastConflict is the last EventConflict or EventDefend, if any.
	LastConflict *Event
	Stats        Stats
}
