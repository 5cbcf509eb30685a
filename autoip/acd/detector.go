package acd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// BindAfterAnnouncement is the announcement after which the address becomes
// usable: the first (RFC 3927 §2.4). See the package doc.
const BindAfterAnnouncement = 1

// State is the detector's protocol state.
type State uint8

// Detector states, in the order a successful claim passes through them.
const (
	StateStopped      State = iota // not started, stopped, or gave the address up
	StateWaiting                   // waiting before the first probe (PROBE_WAIT and any start delay)
	StateProbing                   // sent at least one probe, more to come
	StateAnnounceWait              // sent the last probe, waiting ANNOUNCE_WAIT
	StateAnnouncing                // bound; announcements still to send
	StateBound                     // bound; announcements done, defending
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateWaiting:
		return "waiting"
	case StateProbing:
		return "probing"
	case StateAnnounceWait:
		return "announce-wait"
	case StateAnnouncing:
		return "announcing"
	case StateBound:
		return "bound"
	}
	return "state(" + itoa(int(s)) + ")"
}

// Phase maps the state to the phase Classify needs.
func (s State) Phase() Phase {
	switch s {
	case StateWaiting, StateProbing, StateAnnounceWait:
		return PhaseProbing
	case StateAnnouncing, StateBound:
		return PhaseBound
	}
	return PhaseIdle
}

// OutputKind says what an Output asks of the caller.
type OutputKind uint8

// Output kinds.
const (
	// OutSend: send Frame (always link-layer broadcast).
	OutSend OutputKind = iota + 1
	// OutProbeStart: the first probe for Addr has just been sent; an
	// attempt has begun (what RATE_LIMIT_INTERVAL counts).
	OutProbeStart
	// OutReady: Addr may be used from now on (see BindAfterAnnouncement).
	OutReady
	// OutConflict: Frame conflicted with Addr in Phase; the detector has
	// stopped and the caller must stop using Addr (if bound) at once.
	OutConflict
	// OutDefend: Frame conflicted with bound Addr and the detector
	// defended it with one announcement (sent just before this output).
	OutDefend
	// OutDefendSuppressed: under DefendForever, a conflict arrived within
	// DEFEND_INTERVAL of the last defence; nothing was sent (R17).
	OutDefendSuppressed
)

// String returns the kind's name.
func (k OutputKind) String() string {
	switch k {
	case OutSend:
		return "send"
	case OutProbeStart:
		return "probe-start"
	case OutReady:
		return "ready"
	case OutConflict:
		return "conflict"
	case OutDefend:
		return "defend"
	case OutDefendSuppressed:
		return "defend-suppressed"
	}
	return "output(" + itoa(int(k)) + ")"
}

// Output is one thing the detector asks its caller to do or to know.
type Output struct {
	Kind    OutputKind
	Addr    netip.Addr
	Phase   Phase   // OutConflict: the phase the conflict happened in
	Verdict Verdict // OutConflict, OutDefend, OutDefendSuppressed: the classification
	Frame   Frame   // OutSend: the frame to send; conflicts and defences: the frame that conflicted
}

// DetectorConfig configures a Detector.
type DetectorConfig struct {
	// HW is our hardware address. Required; must be unicast.
	HW MAC
	// Timing holds the RFC constants; zero fields take RFC defaults.
	Timing Timing
	// Defend is the policy on conflicts while bound.
	Defend DefendPolicy
	// Rand draws the random delays. Nil means a PCG seeded from HW, so
	// the detector stays deterministic.
	Rand *rand.Rand
}

// Detector runs RFC 5227 conflict detection for one address at a time. It
// is not safe for concurrent use: one goroutine owns it, and the caller
// performs the outputs in the order AppendOutputs returns them.
type Detector struct {
	hw     MAC
	timing Timing
	defend DefendPolicy
	rng    *rand.Rand

	state     State
	addr      netip.Addr
	deadline  time.Time
	probes    int
	announces int

	defended    bool      // a defence has happened since binding
	lastDefence time.Time // when, if defended
	begun       bool      // OutProbeStart was emitted for this Start

	out []Output
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration")

// NewDetector validates cfg and returns a stopped detector.
func NewDetector(cfg DetectorConfig) (*Detector, error) {
	if !cfg.HW.IsUnicast() {
		return nil, fmt.Errorf("%w: hardware address %v is not unicast", ErrInvalidConfig, cfg.HW)
	}
	if err := cfg.Timing.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Defend > DefendForever {
		return nil, fmt.Errorf("%w: defend policy %d unknown", ErrInvalidConfig, cfg.Defend)
	}
	rng := cfg.Rand
	if rng == nil {
		s := uint64(0)
		for _, b := range cfg.HW {
			s = s<<8 | uint64(b)
		}
		rng = rand.New(rand.NewPCG(s, 0x6163642d64657465)) // "acd-dete"
	}
	return &Detector{hw: cfg.HW, timing: cfg.Timing.WithDefaults(), defend: cfg.Defend, rng: rng}, nil
}

// Timing returns the detector's timing with defaults applied.
func (d *Detector) Timing() Timing { return d.timing }

// State returns the protocol state.
func (d *Detector) State() State { return d.state }

// Addr returns the address being probed or held, if any.
func (d *Detector) Addr() netip.Addr {
	if d.state == StateStopped {
		return netip.Addr{}
	}
	return d.addr
}

// Start begins probing for addr: the first probe goes out after delay plus
// a uniform random time in [0, PROBE_WAIT] (RFC 5227 §2.1.1). Any previous
// address is forgotten without outputs.
func (d *Detector) Start(now time.Time, addr netip.Addr, delay time.Duration) error {
	if !addr.Is4() || addr.IsUnspecified() {
		return fmt.Errorf("acd: start: address %v is not a unicast IPv4 address", addr)
	}
	if delay < 0 {
		return fmt.Errorf("acd: start: delay %v is negative", delay)
	}
	d.state = StateWaiting
	d.addr = addr
	d.probes, d.announces = 0, 0
	d.defended, d.begun = false, false
	d.deadline = now.Add(delay + d.uniform(0, d.timing.ProbeWait))
	return nil
}

// Stop forgets the address without outputs. The caller withdraws it from
// its stack if it was bound.
func (d *Detector) Stop() {
	d.state = StateStopped
	d.deadline = time.Time{}
}

// Deadline returns when HandleTimer must next be called, if at all.
func (d *Detector) Deadline() (time.Time, bool) {
	switch d.state {
	case StateWaiting, StateProbing, StateAnnounceWait, StateAnnouncing:
		return d.deadline, true
	}
	return time.Time{}, false
}

// AppendOutputs appends the pending outputs to dst, in order, and forgets
// them.
func (d *Detector) AppendOutputs(dst []Output) []Output {
	dst = append(dst, d.out...)
	clear(d.out)
	d.out = d.out[:0]
	return dst
}

// HandleFrame classifies one received ARP frame and reacts to conflicts
// (RFC 5227 §2.1.1 while probing, §2.4 while bound). It returns the
// verdict; it allocates only when it queues an output.
func (d *Detector) HandleFrame(now time.Time, f Frame) Verdict {
	phase := d.state.Phase()
	v := Classify(phase, f, d.hw, d.addr)
	if !v.IsConflict() {
		return v
	}
	if phase == PhaseProbing {
		d.lose(phase, v, f)
		return v
	}
	recent := d.defended && now.Sub(d.lastDefence) < d.timing.DefendInterval
	switch {
	case d.defend == Abandon:
		d.lose(phase, v, f)
	case d.defend == DefendOnce && recent:
		d.lose(phase, v, f)
	case d.defend == DefendForever && recent:
		d.out = append(d.out, Output{Kind: OutDefendSuppressed, Addr: d.addr, Verdict: v, Frame: f})
	default:
		d.defended, d.lastDefence = true, now
		d.send(Announcement(d.hw, d.addr))
		d.out = append(d.out, Output{Kind: OutDefend, Addr: d.addr, Verdict: v, Frame: f})
	}
	return v
}

func (d *Detector) lose(phase Phase, v Verdict, f Frame) {
	d.out = append(d.out, Output{Kind: OutConflict, Addr: d.addr, Phase: phase, Verdict: v, Frame: f})
	d.Stop()
}

// HandleTimer does whatever is due at now. Calling it early or when nothing
// is due does nothing. Delays are measured from the moment a packet is
// actually sent, so a late timer never shortens a gap the RFC sets.
func (d *Detector) HandleTimer(now time.Time) {
	for {
		dl, ok := d.Deadline()
		if !ok || now.Before(dl) {
			return
		}
		d.step(now)
	}
}

func (d *Detector) step(now time.Time) {
	t := &d.timing
	switch d.state {
	case StateWaiting, StateProbing:
		d.send(Probe(d.hw, d.addr))
		d.probes++
		if !d.begun {
			d.begun = true
			d.out = append(d.out, Output{Kind: OutProbeStart, Addr: d.addr})
		}
		if d.probes < t.ProbeNum {
			d.state = StateProbing
			d.deadline = now.Add(d.uniform(t.ProbeMin, t.ProbeMax))
		} else {
			d.state = StateAnnounceWait
			d.deadline = now.Add(t.AnnounceWait)
		}
	case StateAnnounceWait, StateAnnouncing:
		d.send(Announcement(d.hw, d.addr))
		d.announces++
		if d.announces == BindAfterAnnouncement {
			d.out = append(d.out, Output{Kind: OutReady, Addr: d.addr})
		}
		if d.announces < t.AnnounceNum {
			d.state = StateAnnouncing
			d.deadline = now.Add(t.AnnounceInterval)
		} else {
			d.state = StateBound
			d.deadline = time.Time{}
		}
	}
}

func (d *Detector) send(p Packet) {
	d.out = append(d.out, Output{Kind: OutSend, Addr: d.addr, Frame: BroadcastFrame(p)})
}

// uniform draws a duration uniformly from [lo, hi], inclusive.
func (d *Detector) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(d.rng.Int64N(int64(hi-lo)+1))
}

// NotSent tells the detector that frame f, which it asked to send, never
// left (the link was down or refused it). A probe that was not sent does
// not count: the detector sends it again after PROBE_MIN..PROBE_MAX, so an
// address is never claimed on fewer than PROBE_NUM probes that really went
// out. Other frames (announcements, defences) are only the caller's to
// count. It reports whether f was a probe of the current attempt.
func (d *Detector) NotSent(now time.Time, f Frame) bool {
	if !f.IsProbe() || f.SenderHW != d.hw || f.TargetIP != d.addr || d.probes == 0 {
		return false
	}
	switch d.state {
	case StateProbing, StateAnnounceWait:
	default:
		return false
	}
	d.probes--
	d.state = StateProbing
	d.deadline = now.Add(d.uniform(d.timing.ProbeMin, d.timing.ProbeMax))
	return true
}

// HasOutputs reports whether AppendOutputs would return anything.
func (d *Detector) HasOutputs() bool { return len(d.out) > 0 }

// Reannounce sends ANNOUNCE_NUM announcements again, the first at once, if
// the address is bound. It does not emit OutReady again.
func (d *Detector) Reannounce(now time.Time) {
	if d.state.Phase() != PhaseBound {
		return
	}
	d.announces = BindAfterAnnouncement // past the bind point: no second OutReady
	d.send(Announcement(d.hw, d.addr))
	if d.announces < d.timing.AnnounceNum {
		d.state = StateAnnouncing
		d.deadline = now.Add(d.timing.AnnounceInterval)
	} else {
		d.state = StateBound
	}
}
