package autoip

import (
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// OutputKind says what an Output asks of the caller.
type OutputKind uint8

// Output kinds.
const (
	// OutSendARP: send Frame on the link (it is always link-layer
	// broadcast, RFC 3927 §2.5). A failed send is "not sent", never fatal.
	OutSendARP OutputKind = iota + 1
	// OutAddAddress: configure Prefix (the claimed address, /16) on the
	// interface as an additional address, with an on-link route for
	// 169.254.0.0/16.
	OutAddAddress
	// OutRemoveAddress: remove Prefix's address (and only it) at once.
	OutRemoveAddress
	// OutEvent: report Event (log, hook, API).
	OutEvent
	// OutSaveState: store Saved persistently.
	OutSaveState
)

// String returns the kind's name.
func (k OutputKind) String() string {
	switch k {
	case OutSendARP:
		return "send-arp"
	case OutAddAddress:
		return "add-address"
	case OutRemoveAddress:
		return "remove-address"
	case OutEvent:
		return "event"
	case OutSaveState:
		return "save-state"
	}
	return "output(?)"
}

// Output is one thing the engine asks its caller to do. Only the field for
// its Kind is set. It is a plain struct, not an interface, so that queuing
// one never allocates.
type Output struct {
	Kind   OutputKind
	Frame  acd.Frame    // OutSendARP
	Prefix netip.Prefix // OutAddAddress, OutRemoveAddress
	Event  Event        // OutEvent
	Saved  SavedState   // OutSaveState
}

// EventKind names an event, in the vocabulary of avahi-autoipd and
// systemd-networkd where they have one.
type EventKind uint8

// Event kinds.
const (
	// EventProbe: an attempt on Addr began (first probe sent).
	EventProbe EventKind = iota + 1
	// EventBind: Addr was claimed and configured.
	EventBind
	// EventConflict: another host (From) uses Addr. In PhaseProbing the
	// engine moves to another candidate; in PhaseBound the address was
	// given up and removed.
	EventConflict
	// EventDefend: a conflict on bound Addr was answered with one
	// announcement; the address is kept.
	EventDefend
	// EventUnbind: Addr was withdrawn because the link went down or a
	// routable address appeared, not because of a conflict.
	EventUnbind
	// EventStop: the engine stopped; Addr, if valid, was withdrawn.
	EventStop
	// EventRateLimit: MAX_CONFLICTS reached; the next attempt waits until
	// Until (R11).
	EventRateLimit
)

// String returns the event's name as hooks see it: BIND, CONFLICT, ...
func (k EventKind) String() string {
	switch k {
	case EventProbe:
		return "PROBE"
	case EventBind:
		return "BIND"
	case EventConflict:
		return "CONFLICT"
	case EventDefend:
		return "DEFEND"
	case EventUnbind:
		return "UNBIND"
	case EventStop:
		return "STOP"
	case EventRateLimit:
		return "RATELIMIT"
	}
	return "EVENT(?)"
}

// Event reports something that happened.
type Event struct {
	Kind  EventKind
	Time  time.Time
	Addr  netip.Addr
	Phase acd.Phase // EventConflict: probing or bound
	// From is the other host's hardware address (EventConflict,
	// EventDefend), and Frame the frame that conflicted.
	From  acd.MAC
	Frame acd.Frame
	// Until is when the next attempt may start (EventRateLimit).
	Until time.Time
	// Reason says why (EventUnbind: "link down", "routable address", or
	// the reason given to Engine.SetHeld).
	Reason string
}
