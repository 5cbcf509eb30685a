// Package autoip implements IPv4 link-local address autoconfiguration, as
// described in RFC 3927, on top of the conflict detector of package acd
// (RFC 5227).
//
// Engine is a deterministic state machine with no I/O, no goroutines, no
// clock reads and no global randomness. Every input carries the current
// time; Deadline says when HandleTimer is next due; AppendOutputs drains
// what the caller must do, in order: send ARP frames, add or remove the
// address, report events, save state. The daemon, the netstack integration,
// the simulator and the tests all drive this same engine.
//
// # Address selection
//
// Candidates come from 169.254.1.0 through 169.254.254.255 (65,024
// addresses); 169.254.0.x and 169.254.255.x are reserved (RFC 3927 §2.1).
// The order in which a host tries them is:
//
//  1. the configured initial address (QNX ip=, autoipd -s), unless the saved
//     state shows the same initial address was configured last time and
//     the host then held another address: the user's unchanged choice does
//     not override what the host learned, a changed choice does;
//  2. the address held last (saved state; R04);
//  3. Candidate(seed, 0), Candidate(seed, 1), ... skipping addresses already
//     tried in steps 1 and 2.
//
// Candidate is a keyed hash, fixed forever (golden vectors in testdata pin
// it):
//
//	k = mix(seed)
//	h = mix(k + (n+1)·0x9E3779B97F4A7C15)        (mod 2^64)
//	v = ⌊h · 65024 / 2^64⌋                        (0 ≤ v < 65024)
//	Candidate(seed, n) = 169.254.(1 + v/256).(v mod 256)
//
// where mix is the SplitMix64 finaliser:
//
//	z = (z ⊕ z>>30)·0xBF58476D1CE4E5B9; z = (z ⊕ z>>27)·0x94D049BB133111EB; z ⊕ z>>31
//
// That is the n-th output of a SplitMix64 generator started at mix(seed),
// scaled to the range by a multiply-high, whose bias (at most 65024/2^64)
// is far below anything measurable. The default seed is SeedFromMAC: the
// 64-bit FNV-1a hash of the six MAC bytes, so a host picks the same first
// address on every boot (R02) and two hosts with different MACs walk
// different sequences.
//
// # Rate limiting
//
// Every conflict that makes the host move on (in probing or after losing a
// defence) counts. Once MAX_CONFLICTS or more have been counted, a new
// attempt's first probe is never sent less than RATE_LIMIT_INTERVAL after
// the previous attempt's first probe (RFC 5227 §2.1.1, R11). The count and
// the time of the last attempt are part of SavedState, so a restart does
// not reset the limit. The count goes back to zero once an address has
// been held for RATE_LIMIT_INTERVAL.
//
// # Link and routable addresses
//
// SetLink(false) withdraws the address; SetLink(true) starts negotiation
// from the beginning, last address first (R19). With YieldToRoutable set
// (autoipd without -f; lsm-autoip "old" without "force"), SetRoutable(true)
// withdraws the address and suspends the engine until SetRoutable(false).
package autoip
