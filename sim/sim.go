package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/stack"
)

// Sim is a simulated Ethernet segment of real hosts (see the package doc).
// It is not safe for concurrent use: one goroutine builds it, runs it and
// reads its results.
type Sim struct {
	cfg      Config
	clk      *stack.DetClock
	now      int64 // virtual ns since cfg.Start; only Sim moves the clock
	link     LinkModel
	hostEcho bool // some host has HostConfig.Echo
	ideal    bool // link.ideal() && !hostEcho: frames can be delivered at once

	hosts  []*host
	actors []*actor

	hub

	evlog []evRec
	txlog []txRec
	ord   uint32 // last record ordinal
	ctr   counters
	bound int // hosts currently bound
	boots int // hosts currently booted

	trace    *tracer
	pcap     *pcapOut
	err      error // first error of an op or an output writer
	started  bool
	closed   bool
	closing  bool
	quiet    bool // the last Run ended because nothing was pending
	runWall  time.Duration
	bootWall time.Duration
	iter     uint64
	progress progressState
}

// New returns an empty simulation.
func New(cfg Config) (*Sim, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:   cfg,
		clk:   stack.NewDetClock(cfg.Start),
		link:  cfg.Link,
		ideal: cfg.Link.ideal(),
	}
	s.hub.init()
	if cfg.Trace != nil {
		s.trace = newTracer(cfg.Trace, cfg.TraceHosts)
	}
	if cfg.PCAP != nil {
		p, err := newPCAP(cfg.PCAP)
		if err != nil {
			return nil, fmt.Errorf("sim: pcap header: %w", err)
		}
		s.pcap = p
	}
	return s, nil
}

// Now returns the virtual time since the start of the run.
func (s *Sim) Now() time.Duration { return time.Duration(s.now) }

// Clock returns the simulation's clock, shared by every host.
func (s *Sim) Clock() *stack.DetClock { return s.clk }

// NumHosts returns the number of hosts added.
func (s *Sim) NumHosts() int { return len(s.hosts) }

// AddHost adds a host that boots at hc.Start and returns its index.
func (s *Sim) AddHost(hc HostConfig) (int, error) {
	if s.closed {
		return 0, errors.New("sim: add host: simulation closed")
	}
	if err := hc.validate(); err != nil {
		return 0, fmt.Errorf("sim: host %d: %w", len(s.hosts), err)
	}
	if len(s.hosts) >= MaxHosts {
		return 0, fmt.Errorf("sim: add host: %w: more than %d hosts", ErrInvalid, MaxHosts)
	}
	if int64(hc.Start) < s.now {
		return 0, fmt.Errorf("sim: host %d: %w: start %v is in the past (now %v)", len(s.hosts), ErrInvalid, hc.Start, s.Now())
	}
	idx := int32(len(s.hosts))
	h := &host{sim: s, idx: idx, cfg: hc, mac: hc.MAC}
	if h.mac.IsZero() {
		h.mac = hostMAC(idx, 0)
	}
	h.onEvent = func(ev autoip.Event) { s.onEvent(h, ev) }
	if s.trace != nil {
		h.traced = s.trace.wants(int(idx))
	}
	s.hosts = append(s.hosts, h)
	if hc.Echo > 0 {
		s.hostEcho, s.ideal = true, false
	}
	s.push(event{at: int64(hc.Start), kind: evBoot, arg: idx})
	return int(idx), nil
}

// hostMAC is the default MAC of host idx in incarnation inc.
func hostMAC(idx int32, inc int) acd.MAC {
	return acd.MAC{0x02, byte(inc), byte(idx >> 24), byte(idx >> 16), byte(idx >> 8), byte(idx)}
}

// host is one simulated machine: its netstack, link and bookkeeping.
type host struct {
	sim    *Sim
	idx    int32
	cfg    HostConfig
	mac    acd.MAC
	inc    int // incarnation: restarts so far
	st     *stack.Stack
	ep     *channel.Endpoint
	client *stack.Client
	rnd    hostRand
	pcg    rand.PCG
	store  memStore

	onEvent func(autoip.Event)

	group   int32
	booted  bool // a netstack exists
	linkUp  bool
	dirty   bool // queued in hub.dirty
	isBound bool
	traced  bool
	claim   netip.Addr // address under which the filter index lists the host
	defends int        // DEFEND events whose announcement is not drained yet
	bootAt  int64      // boot time of this incarnation
}

// WriteNotify implements channel.Notification: the host's netstack wrote a
// frame. The hub drains the queue after the current step.
func (h *host) WriteNotify() {
	if !h.dirty {
		h.dirty = true
		h.sim.dirty = append(h.sim.dirty, h.idx)
	}
}

// memStore is a host's persistent state (persist.Store) that survives
// restarts, as a daemon's state file does.
type memStore struct {
	saved autoip.SavedState
	ok    bool
}

var errNoState = errors.New("no saved state")

// Load implements persist.Store.
func (m *memStore) Load() (autoip.SavedState, error) {
	if !m.ok {
		return autoip.SavedState{}, errNoState
	}
	return m.saved, nil
}

// Save implements persist.Store.
func (m *memStore) Save(s autoip.SavedState) error {
	m.saved, m.ok = s, true
	return nil
}

// boot builds the host's netstack and starts its client.
func (s *Sim) boot(h *host) error {
	seed, idx := s.cfg.Seed, uint64(h.idx)
	inc := uint64(h.inc) << 8
	ep := channel.New(s.cfg.QueueSize, 1514, tcpip.LinkAddress(h.mac[:]))
	ep.AddNotify(h)
	h.rnd.insec.s = derive(seed, idx, streamNetRand|inc)
	h.rnd.secure.s = derive(seed, idx, streamSecure|inc)
	opts := stack.Options{
		Link:       ep,
		Clock:      s.clk,
		RandSource: &h.rnd,
		SecureRNG:  (*secureReader)(&h.rnd),
		NoTCP:      true,
	}
	if !h.cfg.Static.IsValid() {
		eseed := h.cfg.EngineSeed
		if eseed == 0 && !h.cfg.SeedFromMAC {
			eseed = derive(seed, idx, streamEngineSeed|inc)
		}
		h.pcg.Seed(derive(seed, idx, streamEngineRand|inc), derive(seed, idx, streamEngineRand|inc|1<<7))
		opts.AutoIP = &stack.ClientConfig{
			Engine: autoip.Config{
				HW:          h.mac,
				Seed:        eseed,
				Initial:     h.cfg.Initial,
				Timing:      h.cfg.Timing,
				LinkUpDelay: h.cfg.LinkUpDelay,
				Defend:      h.cfg.Defend,
				Rand:        rand.New(&h.pcg),
			},
			Store:   &h.store,
			OnEvent: h.onEvent,
		}
	}
	h.booted, h.linkUp, h.bootAt = true, true, s.now
	h.ep = ep
	s.boots++
	s.addMAC(h)
	var kept uint8
	if h.store.ok {
		kept = 1
	}
	s.record(h, recStart, kept, h.mac4(), 0)
	t0 := time.Now()
	st, err := stack.New(opts)
	s.timeBoot(t0)
	if err != nil {
		h.booted, h.ep = false, nil
		s.boots--
		s.delMAC(h)
		return fmt.Errorf("sim: boot host %d: %w", h.idx, err)
	}
	h.st, h.client = st, st.Client()
	if h.cfg.Static.IsValid() {
		if err := st.AddAddress(netip.PrefixFrom(h.cfg.Static, 16)); err != nil {
			return fmt.Errorf("sim: boot static host %d: %w", h.idx, err)
		}
		s.setBound(h, true)
		if h.cfg.Announce {
			b := acd.BroadcastFrame(acd.Announcement(h.mac, h.cfg.Static)).AppendBinary(nil)
			if err := st.Shim().InjectOutbound(b); err != nil {
				return fmt.Errorf("sim: static host %d announcement: %w", h.idx, err)
			}
		}
	}
	s.refreshClaim(h)
	return nil
}

// mac4 packs the MAC's last four bytes for the record's address field
// (start records carry the MAC, not an address).
func (h *host) mac4() [4]byte { return [4]byte(h.mac[2:6]) }

// shutdown closes the host's netstack (the client withdraws its address
// and reports STOP).
func (s *Sim) shutdown(h *host) {
	if !h.booted {
		return
	}
	s.drainDirty()
	if err := h.st.Close(); err != nil && s.err == nil {
		s.err = fmt.Errorf("sim: close host %d: %w", h.idx, err)
	}
	s.drainOne(h) // nothing should be left; frames of a closed host are not sent
	h.booted = false
	s.boots--
	s.delMAC(h)
	if h.cfg.Static.IsValid() {
		s.setBound(h, false)
	}
	s.refreshClaim(h)
	h.st, h.client, h.ep = nil, nil, nil
}

// onEvent records an engine event; it runs inside the host's step.
func (s *Sim) onEvent(h *host, ev autoip.Event) {
	if s.closing {
		return
	}
	var kind recKind
	var until int64
	switch ev.Kind {
	case autoip.EventProbe:
		kind = recProbe
		s.ctr.attempts++
	case autoip.EventBind:
		kind = recBind
		s.setBound(h, true)
	case autoip.EventConflict:
		kind = recConflict
		s.ctr.conflicts++
		if ev.Phase == acd.PhaseBound {
			s.ctr.boundConflicts++
			s.setBound(h, false)
		}
	case autoip.EventDefend:
		kind = recDefend
		s.ctr.defences++
		h.defends++
		h.WriteNotify() // drain the host after this step even if the defence was not sent, to reset the count
	case autoip.EventUnbind:
		kind = recUnbind
		s.setBound(h, false)
	case autoip.EventStop:
		kind = recStop
		s.setBound(h, false)
	case autoip.EventRateLimit:
		kind = recRateLimit
		s.ctr.rateLimits++
		until = ev.Until.Sub(s.cfg.Start).Nanoseconds()
	default:
		return
	}
	var a [4]byte
	if ev.Addr.Is4() {
		a = ev.Addr.As4()
	}
	s.record(h, kind, uint8(ev.Phase), a, until)
	if h.client != nil {
		s.refreshClaim(h)
	}
}

func (s *Sim) setBound(h *host, b bool) {
	if h.isBound == b {
		return
	}
	h.isBound = b
	if b {
		s.bound++
	} else {
		s.bound--
	}
}

// record appends an event record and traces it.
func (s *Sim) record(h *host, kind recKind, phase uint8, addr [4]byte, until int64) {
	s.ord++
	r := evRec{at: s.now, ord: s.ord, host: h.idx, kind: kind, phase: phase, addr: addr, until: until}
	s.evlog = append(s.evlog, r)
	if h.traced {
		s.trace.event(r, h)
	}
}

// refreshClaim updates the filter index with the address h now probes or
// holds: its engine's candidate or bound address (from the candidate's
// first moment, before the first probe, because the engine already treats
// frames for it as conflicts then), or its static address.
func (s *Sim) refreshClaim(h *host) {
	var a netip.Addr
	switch {
	case !h.booted:
	case h.cfg.Static.IsValid():
		a = h.cfg.Static
	case h.client != nil:
		a = h.client.Status().Addr
	}
	if a == h.claim {
		return
	}
	if h.claim.IsValid() {
		s.unindex(h.claim, h.idx)
	}
	if a.IsValid() && autoip.InRange(a) {
		s.index(a, h.idx)
	} else {
		a = netip.Addr{}
	}
	h.claim = a
}

// Run runs the simulation until nothing is pending (the segment is quiet)
// or the configured duration is reached. It can be called again after
// scheduling more work or raising the duration with RunUntil.
func (s *Sim) Run() error { return s.RunUntil(s.cfg.Duration) }

// RunUntil runs until nothing is pending or virtual time t (since the
// start of the run), whichever comes first. It returns the first error of a
// scheduled operation or an output writer.
func (s *Sim) RunUntil(t time.Duration) error {
	if s.closed {
		return errors.New("sim: run: simulation closed")
	}
	s.started = true
	wall := time.Now()
	s.progress.start(wall)
	end := int64(t)
	s.quiet = false
	for s.err == nil {
		progress := s.pump()
		for s.clk.RunOneDue() {
			progress = true
		}
		s.iter++
		if s.cfg.Progress != nil && s.iter&1023 == 0 {
			s.maybeProgress(false)
		}
		if progress {
			continue
		}
		next, ok := s.nextTime()
		if !ok {
			s.quiet = true
			break
		}
		if next > end {
			s.advance(end)
			break
		}
		s.advance(next)
	}
	s.runWall += time.Since(wall)
	if s.cfg.Progress != nil {
		s.maybeProgress(true)
	}
	if s.err == nil && s.pcap != nil {
		s.err = s.pcap.flush()
	}
	if s.err == nil && s.trace != nil {
		s.err = s.trace.flush()
	}
	return s.err
}

// Quiet reports whether the last Run ended with nothing pending.
func (s *Sim) Quiet() bool { return s.quiet }

// nextTime returns the earliest pending time: a timer or a hub event.
func (s *Sim) nextTime() (int64, bool) {
	var next int64
	ok := false
	if t, has := s.clk.Next(); has {
		next, ok = t.Sub(s.cfg.Start).Nanoseconds(), true
	}
	if len(s.events) > 0 && (!ok || s.events[0].at < next) {
		next, ok = s.events[0].at, true
	}
	return next, ok
}

func (s *Sim) advance(t int64) {
	if t <= s.now {
		return
	}
	s.now = t
	s.clk.AdvanceTo(s.cfg.Start.Add(time.Duration(t)))
}

// Close destroys every host's netstack. The results stay readable.
func (s *Sim) Close() error {
	if s.closed {
		return nil
	}
	s.closing = true
	for _, h := range s.hosts {
		if h.booted {
			if err := h.st.Close(); err != nil && s.err == nil {
				s.err = err
			}
			h.booted = false
			h.st, h.client, h.ep = nil, nil, nil
		}
	}
	for s.clk.RunOneDue() { // timers made due by closing, if any, run into closed clients
	}
	s.closed = true
	s.pool.release()
	return nil
}

// checkHost returns host i or an error naming it.
func (s *Sim) checkHost(op string, i int) (*host, error) {
	if i < 0 || i >= len(s.hosts) {
		return nil, fmt.Errorf("sim: %s: host %d out of range 0..%d", op, i, len(s.hosts)-1)
	}
	return s.hosts[i], nil
}

// At schedules f to run at virtual time t (since the start of the run),
// after everything already scheduled for that instant. An error from f
// stops the run and is returned by Run.
func (s *Sim) At(t time.Duration, f func() error) error {
	if int64(t) < s.now {
		return fmt.Errorf("sim: schedule at %v: in the past (now %v)", t, s.Now())
	}
	id := int32(len(s.ops))
	s.ops = append(s.ops, f)
	s.push(event{at: int64(t), kind: evOp, arg: id})
	return nil
}

// SetLink takes host i's link down or up: the hub stops or resumes
// delivering its frames and the client is told (Client.SetLink), which
// withdraws the address or starts negotiating afresh.
func (s *Sim) SetLink(i int, up bool) error {
	h, err := s.checkHost("set link", i)
	if err != nil {
		return err
	}
	if !h.booted || h.linkUp == up {
		return nil
	}
	s.drainDirty()
	if up {
		h.linkUp = true
		s.record(h, recLinkUp, 0, [4]byte{}, 0)
	} else {
		h.linkUp = false
		s.record(h, recLinkDown, 0, [4]byte{}, 0)
	}
	if h.client != nil {
		h.client.SetLink(up)
		s.refreshClaim(h)
	}
	return nil
}

// Partition splits the segment: the hosts of groups[k] move to partition
// k+1; hosts not listed, and all actors, stay where they are (partition 0
// at first). Hosts in different partitions do not hear each other.
func (s *Sim) Partition(groups [][]int) error {
	for g, list := range groups {
		for _, i := range list {
			h, err := s.checkHost("partition", i)
			if err != nil {
				return err
			}
			s.setGroup(h, int32(g+1))
		}
	}
	return nil
}

// Merge joins every host and actor back into partition 0.
func (s *Sim) Merge() error {
	for _, h := range s.hosts {
		s.setGroup(h, 0)
	}
	for _, a := range s.actors {
		a.group = 0
	}
	return nil
}

// Move puts host i into partition g (a cable moved to another segment).
// Combine it with SetLink for the carrier loss that goes with it.
func (s *Sim) Move(i int, g int) error {
	h, err := s.checkHost("move", i)
	if err != nil {
		return err
	}
	if g < 0 || g > MaxHosts {
		return fmt.Errorf("sim: move host %d: partition %d out of range 0..%d", i, g, MaxHosts)
	}
	s.setGroup(h, int32(g))
	return nil
}

func (s *Sim) setGroup(h *host, g int32) {
	if h.group == g {
		return
	}
	h.group = g
	s.record(h, recMove, 0, [4]byte{0, 0, byte(g >> 8), byte(g)}, 0)
}

// Restart shuts host i down and boots it again at once with hardware
// address mac (zero: a new default MAC for the next incarnation). With
// keepState the engine's saved state (last address, conflict count)
// survives, as with a state file; otherwise the host starts afresh.
func (s *Sim) Restart(i int, mac acd.MAC, keepState bool) error {
	h, err := s.checkHost("restart", i)
	if err != nil {
		return err
	}
	if !mac.IsZero() && !mac.IsUnicast() {
		return fmt.Errorf("sim: restart host %d: MAC %v is not unicast", i, mac)
	}
	s.shutdown(h)
	h.inc++
	if mac.IsZero() {
		mac = hostMAC(h.idx, h.inc)
	}
	h.mac = mac
	if !keepState {
		h.store = memStore{}
	}
	return s.boot(h)
}

// Reannounce makes host i announce its address again (SIGHUP); a host
// without an address ignores it.
func (s *Sim) Reannounce(i int) error {
	h, err := s.checkHost("reannounce", i)
	if err != nil {
		return err
	}
	if h.client == nil || !h.isBound {
		return nil
	}
	s.record(h, recReannounce, 0, [4]byte{}, 0)
	if err := h.client.Reannounce(); err != nil {
		return fmt.Errorf("sim: reannounce host %d: %w", i, err)
	}
	return nil
}

// SetLinkModel changes the segment's fault model from now on.
func (s *Sim) SetLinkModel(m LinkModel) error {
	m = m.withDefaults()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("sim: set link model: %w", err)
	}
	s.link, s.ideal = m, m.ideal() && !s.hostEcho
	return nil
}

// HostStatus is a snapshot of one host.
type HostStatus struct {
	Index  int
	MAC    acd.MAC
	Static bool
	Booted bool
	LinkUp bool
	Group  int
	// Client is the AutoIP client's status (zero for static hosts and
	// hosts that are not booted).
	Client stack.Status
	// Addr is the address the host holds: the bound or static address.
	Addr netip.Addr
}

// Host returns a snapshot of host i.
func (s *Sim) Host(i int) (HostStatus, error) {
	h, err := s.checkHost("host", i)
	if err != nil {
		return HostStatus{}, err
	}
	hs := HostStatus{Index: i, MAC: h.mac, Static: h.cfg.Static.IsValid(), Booted: h.booted, LinkUp: h.linkUp, Group: int(h.group)}
	if h.client != nil {
		hs.Client = h.client.Status()
		if hs.Client.State.IsBound() {
			hs.Addr = hs.Client.Configured
		}
	} else if h.booted && hs.Static {
		hs.Addr = h.cfg.Static
	}
	return hs, nil
}

// Stack returns host i's stack, or nil if it is not booted. Do not drive
// it from another goroutine.
func (s *Sim) Stack(i int) *stack.Stack {
	if i < 0 || i >= len(s.hosts) {
		return nil
	}
	return s.hosts[i].st
}
