package autoip

import "github.com/autoip-project/autoip/autoip/acd"

// Timing holds the RFC 3927 / RFC 5227 constants (PROBE_WAIT, PROBE_NUM,
// ...); zero fields take the RFC's defaults. It is acd.Timing, named here
// so that an embedder configures the engine without importing package acd.
type Timing = acd.Timing

// DefaultTiming returns the RFC's constants.
func DefaultTiming() Timing { return acd.DefaultTiming() }

// DefendPolicy is what the engine does on a conflict while bound (RFC 5227
// §2.4); see DefendOnce and Abandon.
type DefendPolicy = acd.DefendPolicy

// Defence policies allowed for link-local addresses (RFC 3927 §2.5).
const (
	DefendOnce = acd.DefendOnce // defend once per DEFEND_INTERVAL, give up on a second conflict (the default)
	Abandon    = acd.Abandon    // give the address up at the first conflict
)
