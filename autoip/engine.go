package autoip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// Engine selects a link-local address and claims, holds and defends it
// (RFC 3927), using an acd.Detector for each candidate (RFC 5227). It is
// not safe for concurrent use: one goroutine owns it and performs its
// outputs in order.
type Engine struct {
	cfg    Config
	timing acd.Timing
	seed   uint64
	det    *acd.Detector

	running   bool
	linkUp    bool
	routable  bool
	held      string // why another address source holds link-local back; "" if none
	saved     SavedState
	firstWait bool // the next attempt is the first since (re)start: add LinkUpDelay

	explicit []netip.Addr // candidates to try before the hashed sequence
	tried    []netip.Addr // explicit candidates already handed out, skipped later
	next     uint64       // index into Candidate(seed, ·)

	bound     bool
	boundAt   time.Time
	rateUntil time.Time

	stats           Stats
	lastConflict    Event // valid if hasLastConflict; a value, so that conflicts do not allocate
	hasLastConflict bool

	dout []acd.Output
	out  []Output
}

// NewEngine validates cfg and returns a stopped engine.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = SeedFromMAC(cfg.HW)
	}
	rng := cfg.Rand
	if rng == nil {
		// Keyed by the seed and the MAC: two hosts given the same Seed
		// (to force a collision) still draw different delays, or they
		// would probe the same candidates in lockstep for ever.
		rng = rand.New(rand.NewPCG(seed, SeedFromMAC(cfg.HW)^0x6175746f6970)) // "autoip"
	}
	det, err := acd.NewDetector(acd.DetectorConfig{HW: cfg.HW, Timing: cfg.Timing, Defend: cfg.Defend, Rand: rng})
	if err != nil {
		return nil, err
	}
	return &Engine{
		cfg:    cfg,
		timing: det.Timing(),
		seed:   seed,
		det:    det,
		linkUp: true,
		saved:  sanitizeSaved(cfg.Saved),
	}, nil
}

// Timing returns the engine's timing with defaults applied.
func (e *Engine) Timing() acd.Timing { return e.timing }

// Seed returns the seed that keys the candidate sequence.
func (e *Engine) Seed() uint64 { return e.seed }

// Start begins negotiation at now. Starting a running engine does nothing.
func (e *Engine) Start(now time.Time) {
	if e.running {
		return
	}
	e.running = true
	e.restart(now)
}

// Stop withdraws the address if one is bound, reports EventStop and saves
// state (R26). Stopping a stopped engine does nothing.
func (e *Engine) Stop(now time.Time) {
	if !e.running {
		return
	}
	addr := e.det.Addr()
	wasBound := e.bound
	e.withdraw(now)
	e.det.Stop()
	e.running = false
	ev := Event{Kind: EventStop, Time: now}
	if wasBound {
		ev.Addr = addr
	}
	e.emitEvent(ev)
	e.save()
}

// SetLink reports the link going up or down. Down withdraws the address;
// up restarts negotiation from the beginning, last address first (R19).
func (e *Engine) SetLink(now time.Time, up bool) {
	if e.linkUp == up {
		return
	}
	e.linkUp = up
	e.pauseOrResume(now, "link down")
}

// SetRoutable reports whether a routable (non-link-local) address is on the
// interface. It matters only with Config.YieldToRoutable (R21).
func (e *Engine) SetRoutable(now time.Time, present bool) {
	if e.routable == present {
		return
	}
	e.routable = present
	if e.cfg.YieldToRoutable {
		e.pauseOrResume(now, "routable address")
	}
}

// SetHeld says whether another address source holds link-local back, and
// why: a DHCP client that is still trying or holds a lease (RFC 3927 §1.9,
// §2.11: link-local is the fallback), or a DHCP server that said "do not
// auto-configure" (RFC 2563). While held the engine is suspended like a
// yielding one: a bound address is withdrawn (EventUnbind with the
// reason) and nothing is probed; released, it starts again, last address
// first. An empty reason releases it.
func (e *Engine) SetHeld(now time.Time, reason string) {
	if e.held == reason {
		return
	}
	wasHeld := e.held != ""
	e.held = reason
	if wasHeld != (reason != "") {
		e.pauseOrResume(now, reason)
	}
}

// Held returns why the engine is held back, or "".
func (e *Engine) Held() string { return e.held }

func (e *Engine) active() bool {
	return e.running && e.linkUp && !(e.cfg.YieldToRoutable && e.routable) && e.held == ""
}

func (e *Engine) pauseOrResume(now time.Time, reason string) {
	if !e.running {
		return
	}
	if e.active() {
		if e.det.State() == acd.StateStopped {
			e.restart(now)
		}
		return
	}
	addr := e.det.Addr()
	if e.bound {
		conflicts := e.saved.Conflicts
		e.withdraw(now)
		e.emitEvent(Event{Kind: EventUnbind, Time: now, Addr: addr, Reason: reason})
		if e.saved.Conflicts != conflicts {
			e.save()
		}
	}
	e.det.Stop()
	e.rateUntil = time.Time{}
}

// Reannounce re-adds the bound address (in case something removed it from
// the interface) and announces it again, ANNOUNCE_NUM times (SIGHUP). It
// returns an error if no address is bound.
func (e *Engine) Reannounce(now time.Time) error {
	if !e.bound {
		return fmt.Errorf("reannounce: %w", ErrNotBound)
	}
	addr := e.det.Addr()
	e.out = append(e.out, Output{Kind: OutAddAddress, Prefix: netip.PrefixFrom(addr, 16)})
	e.det.Reannounce(now)
	e.drain(now) // the first announcement goes out now, not at the next timer
	return nil
}

// ErrNotBound is returned (wrapped) by Reannounce when no address is bound.
var ErrNotBound = errors.New("no address is bound")

// restart builds the candidate order afresh and starts the first attempt.
func (e *Engine) restart(now time.Time) {
	e.explicit = e.explicit[:0]
	e.tried = e.tried[:0]
	e.next = 0
	init, prev := e.cfg.Initial, e.saved.Addr
	if init.IsValid() && prev.IsValid() && prev != init && e.saved.Initial == init {
		e.explicit = append(e.explicit, prev, init) // unchanged choice: what we learned first
	} else {
		for _, a := range []netip.Addr{init, prev} {
			if a.IsValid() && (len(e.explicit) == 0 || e.explicit[0] != a) {
				e.explicit = append(e.explicit, a)
			}
		}
	}
	e.firstWait = true
	if e.active() {
		e.attempt(now)
	}
}

// nextCandidate returns the next address to try (see the package doc).
func (e *Engine) nextCandidate() netip.Addr {
	if len(e.explicit) > 0 {
		a := e.explicit[0]
		e.explicit = e.explicit[1:]
		e.tried = append(e.tried, a)
		return a
	}
	for {
		a := Candidate(e.seed, e.next)
		e.next++
		if !e.wasTried(a) {
			return a
		}
	}
}

func (e *Engine) wasTried(a netip.Addr) bool {
	for _, t := range e.tried {
		if t == a {
			return true
		}
	}
	return false
}

// attempt starts the detector on the next candidate, honouring the link-up
// delay and the rate limit.
func (e *Engine) attempt(now time.Time) {
	var delay time.Duration
	if e.firstWait {
		delay = e.cfg.LinkUpDelay
		e.firstWait = false
	}
	e.rateUntil = time.Time{}
	if e.saved.Conflicts >= e.timing.MaxConflicts && !e.saved.LastAttempt.IsZero() {
		until := e.saved.LastAttempt.Add(e.timing.RateLimitInterval)
		if limit := now.Add(e.timing.RateLimitInterval); until.After(limit) {
			// A saved LastAttempt in the future (the clock was set back
			// since it was stored): the previous attempt was no later
			// than now, so one interval from now honours the limit.
			until = limit
		}
		if until.After(now) {
			if d := until.Sub(now); d > delay {
				delay = d
			}
			e.rateUntil = until
			e.stats.RateLimited++
			e.emitEvent(Event{Kind: EventRateLimit, Time: now, Until: until})
		}
	}
	if err := e.det.Start(now, e.nextCandidate(), delay); err != nil {
		panic(fmt.Sprintf("autoip: candidate rejected by detector: %v", err)) // Candidate is always valid
	}
}

// HandleFrame handles one received Ethernet frame and returns what it was;
// a link shim keeps frames whose verdict Drop()s from its stack. A frame
// that does not concern us costs no allocation.
func (e *Engine) HandleFrame(now time.Time, frame []byte) acd.Verdict {
	f, err := acd.DecodeFrame(frame)
	if err != nil {
		e.stats.Frames++
		if err == acd.ErrNotARP {
			e.stats.NotARP++
			return acd.VerdictNotARP
		}
		e.stats.Malformed++
		return acd.VerdictMalformed
	}
	return e.HandleARP(now, f)
}

// HandleARP handles one decoded ARP frame and returns its verdict.
func (e *Engine) HandleARP(now time.Time, f acd.Frame) acd.Verdict {
	e.stats.Frames++
	v := e.det.HandleFrame(now, f)
	switch v {
	case acd.VerdictOwn:
		e.stats.Own++
	case acd.VerdictBadSender:
		e.stats.BadSender++
	case acd.VerdictConflict:
		if !f.SenderHW.IsUnicast() {
			e.stats.BadSender++ // a conflict all the same (R29), and counted
		}
	}
	e.drain(now)
	return v
}

// HandleTimer does whatever is due at now.
func (e *Engine) HandleTimer(now time.Time) {
	e.det.HandleTimer(now)
	e.drain(now)
	if at, ok := e.conflictsForgiven(); ok && !now.Before(at) {
		e.saved.Conflicts = 0 // held long enough: not part of a storm (R11)
		e.save()
	}
}

// Deadline returns when HandleTimer is next due, if ever.
func (e *Engine) Deadline() (time.Time, bool) {
	dl, ok := e.det.Deadline()
	if at, due := e.conflictsForgiven(); due && (!ok || at.Before(dl)) {
		return at, true
	}
	return dl, ok
}

// conflictsForgiven returns when the conflict count goes back to zero: an
// address held for RATE_LIMIT_INTERVAL ends a conflict storm.
func (e *Engine) conflictsForgiven() (time.Time, bool) {
	if !e.bound || e.saved.Conflicts == 0 {
		return time.Time{}, false
	}
	return e.boundAt.Add(e.timing.RateLimitInterval), true
}

// NotSent tells the engine that frame f, from an OutSendARP output, was not
// sent (the link was down or refused it). It is counted, and a probe that
// did not leave is sent again, so that no address is claimed on fewer than
// PROBE_NUM probes that really went out.
func (e *Engine) NotSent(now time.Time, f acd.Frame) {
	e.stats.Sent--
	e.stats.NotSent++
	e.det.NotSent(now, f)
	e.drain(now)
}

// AppendOutputs appends the pending outputs to dst in order and forgets
// them.
func (e *Engine) AppendOutputs(dst []Output) []Output {
	dst = append(dst, e.out...)
	clear(e.out)
	e.out = e.out[:0]
	return dst
}

// Status returns a snapshot of the engine.
func (e *Engine) Status() Status {
	s := Status{
		State:            e.state(),
		Addr:             e.det.Addr(),
		Conflicts:        e.saved.Conflicts,
		RateLimitedUntil: e.rateUntil,
		Stats:            e.stats,
	}
	if e.hasLastConflict {
		c := e.lastConflict
		s.LastConflict = &c
	}
	return s
}

// State returns the engine's state; cheaper than Status.
func (e *Engine) State() State { return e.state() }

// Saved returns the state the engine would save now.
func (e *Engine) Saved() SavedState { return e.saved }

func (e *Engine) state() State {
	switch {
	case !e.running:
		return StateStopped
	case !e.linkUp:
		return StateLinkDown
	case e.cfg.YieldToRoutable && e.routable, e.held != "":
		return StateSuspended
	}
	switch e.det.State() {
	case acd.StateWaiting:
		return StateWaiting
	case acd.StateProbing, acd.StateAnnounceWait:
		return StateProbing
	case acd.StateAnnouncing:
		return StateAnnouncing
	case acd.StateBound:
		return StateBound
	}
	return StateWaiting
}

// drain turns the detector's outputs into engine outputs.
func (e *Engine) drain(now time.Time) {
	if !e.det.HasOutputs() {
		return
	}
	e.dout = e.det.AppendOutputs(e.dout[:0])
	for _, o := range e.dout {
		if o.Kind == acd.OutProbeStart {
			// Save the attempt before its first probe leaves, so that a crash
			// between the two cannot hide an attempt from the rate limit (R11).
			e.saved.LastAttempt = now
			e.save()
			break
		}
	}
	for _, o := range e.dout {
		switch o.Kind {
		case acd.OutSend:
			e.stats.Sent++
			e.out = append(e.out, Output{Kind: OutSendARP, Frame: o.Frame})
		case acd.OutProbeStart:
			e.stats.Attempts++
			e.rateUntil = time.Time{} // no longer waiting for the rate limit
			e.emitEvent(Event{Kind: EventProbe, Time: now, Addr: o.Addr})
		case acd.OutReady:
			e.stats.Binds++
			e.bound, e.boundAt = true, now
			e.saved.Addr, e.saved.Initial = o.Addr, e.cfg.Initial
			e.out = append(e.out, Output{Kind: OutAddAddress, Prefix: netip.PrefixFrom(o.Addr, 16)})
			e.emitEvent(Event{Kind: EventBind, Time: now, Addr: o.Addr})
			e.save()
		case acd.OutDefend:
			e.stats.BoundConflicts++
			e.stats.Defences++
			e.conflictEvent(Event{Kind: EventDefend, Time: now, Addr: o.Addr, Phase: acd.PhaseBound, From: o.Frame.SenderHW, Frame: o.Frame})
		case acd.OutDefendSuppressed:
			e.stats.BoundConflicts++
			e.stats.DefencesSuppressed++
		case acd.OutConflict:
			e.lost(now, o)
		}
	}
	clear(e.dout)
}

// lost handles a conflict that cost us the candidate or the bound address.
func (e *Engine) lost(now time.Time, o acd.Output) {
	if o.Phase == acd.PhaseBound {
		e.stats.BoundConflicts++
		e.withdrawAddr(now, o.Addr)
		if e.saved.Addr == o.Addr {
			// Another host owns it now: a restart should not try it first.
			e.saved.Addr, e.saved.Initial = netip.Addr{}, netip.Addr{}
		}
	} else {
		e.stats.ProbeConflicts++
	}
	e.saved.Conflicts++
	e.conflictEvent(Event{Kind: EventConflict, Time: now, Addr: o.Addr, Phase: o.Phase, From: o.Frame.SenderHW, Frame: o.Frame})
	e.save()
	e.attempt(now)
}

func (e *Engine) conflictEvent(ev Event) {
	e.lastConflict, e.hasLastConflict = ev, true
	e.emitEvent(ev)
}

// withdraw removes the bound address, if any, without an event.
func (e *Engine) withdraw(now time.Time) {
	if e.bound {
		e.withdrawAddr(now, e.det.Addr())
	}
}

// withdrawAddr removes bound address a. An address held for
// RATE_LIMIT_INTERVAL clears the conflict count, however it is given up
// (conflict, link down, routable address, stop).
func (e *Engine) withdrawAddr(now time.Time, a netip.Addr) {
	if now.Sub(e.boundAt) >= e.timing.RateLimitInterval {
		e.saved.Conflicts = 0 // held long enough: not part of a storm
	}
	e.bound = false
	e.out = append(e.out, Output{Kind: OutRemoveAddress, Prefix: netip.PrefixFrom(a, 16)})
}

func (e *Engine) emitEvent(ev Event) {
	e.out = append(e.out, Output{Kind: OutEvent, Event: ev})
}

func (e *Engine) save() {
	e.out = append(e.out, Output{Kind: OutSaveState, Saved: e.saved})
}
