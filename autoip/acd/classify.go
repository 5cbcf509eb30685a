package acd

import "net/netip"

// Phase is where a Detector is, as far as classifying frames goes.
type Phase uint8

// Phases.
const (
	// PhaseIdle: no address is being probed or held; nothing conflicts.
	PhaseIdle Phase = iota
	// PhaseProbing: from Start until ANNOUNCE_WAIT after the last probe.
	PhaseProbing
	// PhaseBound: the address is in use (announcing or holding it).
	PhaseBound
)

// String returns the phase's name.
func (p Phase) String() string {
	switch p {
	case PhaseIdle:
		return "idle"
	case PhaseProbing:
		return "probing"
	case PhaseBound:
		return "bound"
	}
	return "phase(" + itoa(int(p)) + ")"
}

// Verdict is what Classify makes of one ARP frame.
type Verdict uint8

// Verdicts. Conflict and ProbeConflict are the only ones that act on the
// address; callers should keep every frame with Drop() true away from their
// ARP cache.
const (
	// VerdictUnrelated: the frame does not concern our address.
	VerdictUnrelated Verdict = iota + 1
	// VerdictOwn: the ARP sender hardware address is ours; our own frame
	// looped back by a bridge, hairpin or hub. Never a conflict (R09).
	VerdictOwn
	// VerdictBadSender: the sender hardware address is zero, broadcast or
	// multicast, which no real interface has. Counted and ignored (R24),
	// unless the sender IP is our address: that is a conflict (R29).
	VerdictBadSender
	// VerdictQuery: someone asks about our address without claiming it: an
	// ordinary request for it, or a probe for it while we hold it (the
	// stack's reply is the defence). Not a conflict.
	VerdictQuery
	// VerdictConflict: another host uses our address: its ARP sender IP is
	// our candidate or bound address (R07, R15).
	VerdictConflict
	// VerdictProbeConflict: another host probes for our candidate while we
	// probe for it (R08).
	VerdictProbeConflict
	// VerdictMalformed: not a well-formed Ethernet/IPv4 ARP frame (R24).
	// Only returned by callers that decode; Classify never returns it.
	VerdictMalformed
	// VerdictNotARP: the Ethernet frame is not ARP. Only returned by
	// callers that decode.
	VerdictNotARP
	// VerdictBroadcastTarget: a request for a broadcast address
	// (255.255.255.255, or the subnet broadcast of the caller's prefix).
	// No host owns one, yet gVisor's netstack answers such requests; a
	// shim drops them. Classify never returns it: only the caller knows
	// the prefix.
	VerdictBroadcastTarget
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case VerdictUnrelated:
		return "unrelated"
	case VerdictOwn:
		return "own"
	case VerdictBadSender:
		return "bad-sender"
	case VerdictQuery:
		return "query"
	case VerdictConflict:
		return "conflict"
	case VerdictProbeConflict:
		return "probe-conflict"
	case VerdictMalformed:
		return "malformed"
	case VerdictNotARP:
		return "not-arp"
	case VerdictBroadcastTarget:
		return "broadcast-target"
	}
	return "verdict(" + itoa(int(v)) + ")"
}

// IsConflict reports whether v is a conflict of either kind.
func (v Verdict) IsConflict() bool {
	return v == VerdictConflict || v == VerdictProbeConflict
}

// Drop reports whether a link shim should keep the frame from the stack:
// conflicts (they would poison its neighbour cache with our own address),
// our own echoes, frames from impossible senders and malformed ARP.
func (v Verdict) Drop() bool {
	switch v {
	case VerdictOwn, VerdictBadSender, VerdictConflict, VerdictProbeConflict, VerdictMalformed, VerdictBroadcastTarget:
		return true
	}
	return false
}

// Classify decides what ARP frame f means for addr, the candidate (phase
// PhaseProbing) or bound (PhaseBound) address of the host whose hardware
// address is self. It is pure, total and allocation-free; the package doc
// lists its rules and their RFC sources.
func Classify(phase Phase, f Frame, self MAC, addr netip.Addr) Verdict {
	p := &f.Packet
	if p.SenderHW == self {
		return VerdictOwn
	}
	active := phase != PhaseIdle && addr.IsValid()
	if active && p.SenderIP == addr {
		// Whatever the sender hardware address: RFC 3927 §2.5 "MUST NOT
		// ignore conflicting ARP packets" (R29). Callers count an
		// impossible sender MAC too (IsBadSender).
		return VerdictConflict
	}
	if !p.SenderHW.IsUnicast() {
		return VerdictBadSender
	}
	if !active {
		return VerdictUnrelated
	}
	if p.TargetIP != addr {
		return VerdictUnrelated
	}
	if phase == PhaseProbing && p.IsProbe() {
		return VerdictProbeConflict
	}
	return VerdictQuery
}
