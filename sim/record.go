package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// EventKind names a recorded event: the engine's events (PROBE, BIND, ...)
// and the simulator's own (START, LINK-DOWN, ...).
type EventKind uint8

// Event kinds.
const (
	_ EventKind = iota
	// EventStart: the host booted (a new incarnation).
	EventStart
	// EventProbe: first probe of an attempt on Addr.
	EventProbe
	// EventBind: Addr claimed.
	EventBind
	// EventConflict: Addr lost (Phase says while probing or bound).
	EventConflict
	// EventDefend: Addr defended with one announcement.
	EventDefend
	// EventUnbind: Addr withdrawn (link down).
	EventUnbind
	// EventStop: the client stopped (shutdown or restart).
	EventStop
	// EventRateLimit: the next attempt waits until Until.
	EventRateLimit
	// EventLinkDown and EventLinkUp: the host's link changed.
	EventLinkDown
	EventLinkUp
	// EventReannounce: the host was asked to announce again.
	EventReannounce
	// EventMove: the host moved to partition Group.
	EventMove
)

type recKind = EventKind

const (
	recStart      = EventStart
	recProbe      = EventProbe
	recBind       = EventBind
	recConflict   = EventConflict
	recDefend     = EventDefend
	recUnbind     = EventUnbind
	recStop       = EventStop
	recRateLimit  = EventRateLimit
	recLinkDown   = EventLinkDown
	recLinkUp     = EventLinkUp
	recReannounce = EventReannounce
	recMove       = EventMove
)

var eventNames = [...]string{"?", "START", "PROBE", "BIND", "CONFLICT", "DEFEND", "UNBIND", "STOP", "RATELIMIT", "LINK-DOWN", "LINK-UP", "REANNOUNCE", "MOVE"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EVENT(%d)", uint8(k))
}

// evRec is the compact form of a recorded event (32 bytes). Events and
// frames share one ordinal counter, so that the checker can merge a host's
// two logs in the exact order things happened, even within one instant.
type evRec struct {
	at    int64
	until int64
	ord   uint32 // position among all records (events and frames)
	host  int32
	kind  recKind
	phase uint8   // CONFLICT: acd.Phase; START: 1 if saved state was kept
	addr  [4]byte // START: the MAC's last four bytes; MOVE: the group
}

// Event is a recorded event.
type Event struct {
	At    time.Duration
	Host  int
	Kind  EventKind
	Phase acd.Phase  // CONFLICT
	Addr  netip.Addr // PROBE, BIND, CONFLICT, DEFEND, UNBIND, STOP
	Until time.Duration
	Group int // MOVE
}

func (r evRec) export() Event {
	e := Event{At: time.Duration(r.at), Host: int(r.host), Kind: r.kind, Phase: acd.Phase(r.phase)}
	switch r.kind {
	case recMove:
		e.Group = int(r.addr[2])<<8 | int(r.addr[3])
	case recStart, recLinkDown, recLinkUp, recReannounce:
	default:
		if r.addr != ([4]byte{}) {
			e.Addr = netip.AddrFrom4(r.addr)
		}
	}
	if r.kind == recRateLimit {
		e.Until = time.Duration(r.until)
	}
	return e
}

// Events returns every recorded event, in order.
func (s *Sim) Events() []Event {
	out := make([]Event, len(s.evlog))
	for i, r := range s.evlog {
		out[i] = r.export()
	}
	return out
}

// HostEvents returns host i's recorded events, in order.
func (s *Sim) HostEvents(i int) []Event {
	var out []Event
	for _, r := range s.evlog {
		if int(r.host) == i {
			out = append(out, r.export())
		}
	}
	return out
}

// FrameKind classifies a frame on the segment.
type FrameKind uint8

// Frame kinds.
const (
	FrameProbe FrameKind = iota
	FrameAnnouncement
	FrameRequest
	FrameReply
	FrameMalformed // EtherType ARP, but not a well-formed Ethernet/IPv4 ARP packet
	FrameNotARP    // another EtherType, or a runt
	numFrameKinds
)

var frameKindNames = [...]string{"probe", "announcement", "request", "reply", "malformed", "not-arp"}

// String returns the kind's name.
func (k FrameKind) String() string {
	if k < numFrameKinds {
		return frameKindNames[k]
	}
	return fmt.Sprintf("frame(%d)", uint8(k))
}

// txRec records a frame put on the segment (24 bytes).
type txRec struct {
	at    int64
	ord   uint32 // position among all records (events and frames)
	from  int32  // host index, or ^actor index
	kind  FrameKind
	flags uint8
	spa   [4]byte
	tpa   [4]byte
}

// counters are the run's totals of what hosts and actors did; the
// segment counts what became of the frames.
type counters struct {
	frames         [numFrameKinds]uint64
	defenceFrames  uint64
	attempts       uint64
	conflicts      uint64
	boundConflicts uint64
	defences       uint64
	rateLimits     uint64
	leases         uint64
	leasesLost     uint64
	declines       uint64
}

func classifyFrame(b []byte) (FrameKind, acd.Frame) {
	f, err := acd.DecodeFrame(b)
	switch {
	case err == nil:
		switch f.Kind() {
		case acd.KindProbe:
			return FrameProbe, f
		case acd.KindAnnouncement:
			return FrameAnnouncement, f
		case acd.KindRequest:
			return FrameRequest, f
		default:
			return FrameReply, f
		}
	case len(b) >= acd.EthernetHeaderLen && binary.BigEndian.Uint16(b[12:14]) == acd.EtherTypeARP:
		return FrameMalformed, f
	}
	return FrameNotARP, f
}

// onTransmit records a frame put on the segment by a host or an actor
// (segment.Config.OnTransmit). A host's announcement in the drain that
// followed its DEFEND event (tagged txDefence) is its defence.
func (s *Sim) onTransmit(fr segment.Frame) {
	b := fr.Bytes
	kind, f := classifyFrame(b)
	var from int32
	var h *host
	if fr.From.IsFunc() {
		from = ^int32(fr.From.Index())
	} else {
		from = int32(fr.From.Index())
		h = s.hosts[from]
	}
	var flags uint8
	if fr.Tag&txDefence != 0 && kind == FrameAnnouncement {
		flags = txDefence
	}
	s.ctr.frames[kind]++
	if flags&txDefence != 0 {
		s.ctr.defenceFrames++
	}
	s.ord++
	r := txRec{at: s.now(), ord: s.ord, from: from, kind: kind, flags: flags}
	if f.SenderIP.Is4() {
		r.spa, r.tpa = f.SenderIP.As4(), f.TargetIP.As4()
	}
	s.txlog = append(s.txlog, r)
	if h != nil && h.traced && s.cfg.TraceFrames != TraceNoFrames {
		s.trace.frame(r.at, h, "tx", b)
	}
}

// FrameRecord is a frame put on the segment.
type FrameRecord struct {
	At time.Duration
	// Host is the sending host, or -1; Actor the sending actor, or -1.
	Host, Actor int
	Kind        FrameKind
	// Defence marks an announcement sent to defend an address.
	Defence bool
	// SenderIP and TargetIP are the ARP addresses (invalid for frames
	// that are not well-formed ARP).
	SenderIP, TargetIP netip.Addr
}

// Frames returns every frame put on the segment, in order.
func (s *Sim) Frames() []FrameRecord {
	out := make([]FrameRecord, len(s.txlog))
	for i, r := range s.txlog {
		fr := FrameRecord{At: time.Duration(r.at), Host: int(r.from), Actor: -1, Kind: r.kind, Defence: r.flags&txDefence != 0}
		if r.from < 0 {
			fr.Host, fr.Actor = -1, int(^r.from)
		}
		if r.kind <= FrameReply {
			fr.SenderIP, fr.TargetIP = netip.AddrFrom4(r.spa), netip.AddrFrom4(r.tpa)
		}
		out[i] = fr
	}
	return out
}

// Totals are the run's counters.
type Totals struct {
	// Attempts counts PROBE events; Conflicts CONFLICT events, of which
	// BoundConflicts while bound; Defences DEFEND events; RateLimits
	// RATELIMIT events.
	Attempts, Conflicts, BoundConflicts, Defences, RateLimits uint64
	// Leases counts DHCP leases configured, LeasesLost leases that ended
	// (expired, refused), Declines offered addresses found in use.
	Leases, LeasesLost, Declines uint64
	// Frames counts the frames put on the segment by kind; DefenceFrames
	// the announcements among them that were defences.
	Frames        [numFrameKinds]uint64
	DefenceFrames uint64
	// Segment is what the segment did with them; NoBufferSpace sums the
	// hosts' netstack drops on full link queues.
	Segment       segment.Stats
	NoBufferSpace uint64
}

// NumFrameKinds is the number of FrameKind values.
const NumFrameKinds = int(numFrameKinds)

// Totals returns the run's counters.
func (s *Sim) Totals() Totals {
	return Totals{
		Attempts: s.ctr.attempts, Conflicts: s.ctr.conflicts, BoundConflicts: s.ctr.boundConflicts,
		Defences: s.ctr.defences, RateLimits: s.ctr.rateLimits, Frames: s.ctr.frames, DefenceFrames: s.ctr.defenceFrames,
		Leases: s.ctr.leases, LeasesLost: s.ctr.leasesLost, Declines: s.ctr.declines,
		Segment: s.seg.Stats(), NoBufferSpace: s.noBufferDrops(),
	}
}
