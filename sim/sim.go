package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/stack"
)

// Sim is a simulated Ethernet segment of real hosts (see the package doc).
// It is not safe for concurrent use: one goroutine builds it, runs it and
// reads its results.
type Sim struct {
	cfg    Config
	clk    *stack.DetClock
	seg    *segment.Segment
	protos protocols // gVisor state every host shares (stacks.go)

	hosts  []*host
	actors []*actor

	evlog []evRec
	txlog []txRec
	ord   uint32 // last record ordinal
	ctr   counters
	bound int // hosts currently bound
	boots int // hosts currently booted

	trace    *tracer
	err      error // first error of an output writer or a host
	bridged  bool  // a real device is on the segment: real time only
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
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, clk: stack.NewDetClock(cfg.Start)}
	s.protos.init()
	seg, err := segment.New(s.clk, segment.Config{Seed: cfg.Seed, Link: cfg.Link, PCAP: cfg.PCAP, OnTransmit: s.onTransmit})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s.seg = seg
	if cfg.Trace != nil {
		s.trace = newTracer(cfg.Trace, cfg.TraceHosts)
	}
	return s, nil
}

// Config returns the configuration, defaults applied.
func (s *Sim) Config() Config { return s.cfg }

// Now returns the virtual time since the start of the run.
func (s *Sim) Now() time.Duration { return s.seg.Now() }

func (s *Sim) now() int64 { return int64(s.seg.Now()) }

// Clock returns the simulation's clock, shared by every host.
func (s *Sim) Clock() *stack.DetClock { return s.clk }

// Segment returns the segment the hosts are on.
func (s *Sim) Segment() *segment.Segment { return s.seg }

// NumHosts returns the number of hosts added.
func (s *Sim) NumHosts() int { return len(s.hosts) }

// AddHost adds a host that boots at hc.Start and returns its index.
func (s *Sim) AddHost(hc HostConfig) (int, error) {
	if s.closed {
		return 0, errors.New("sim: add host: simulation closed")
	}
	if err := hc.Validate(); err != nil {
		return 0, fmt.Errorf("sim: host %d: %w", len(s.hosts), err)
	}
	if len(s.hosts) >= MaxHosts {
		return 0, fmt.Errorf("sim: add host: %w: more than %d hosts", ErrInvalid, MaxHosts)
	}
	if hc.Start < s.Now() {
		return 0, fmt.Errorf("sim: host %d: %w: start %v is in the past (now %v)", len(s.hosts), ErrInvalid, hc.Start, s.Now())
	}
	idx := int32(len(s.hosts))
	h := &host{sim: s, idx: idx, cfg: hc, mac: hc.MAC}
	if h.mac.IsZero() {
		h.mac = hostMAC(idx, 0)
	}
	h.onEvent = func(ev autoip.Event) { s.onEvent(h, ev) }
	pc := segment.PortConfig{Filtered: !s.cfg.Unfiltered, Echo: hc.Echo, QueueSize: s.cfg.QueueSize}
	if s.trace != nil && s.trace.wants(int(idx)) {
		h.traced = true
		if s.cfg.TraceFrames == TraceSentAndReceived {
			pc.OnDeliver = func(b []byte) { s.trace.frame(s.now(), h, "rx", b) }
		}
	}
	port, err := s.seg.NewPort(pc)
	if err != nil {
		return 0, fmt.Errorf("sim: host %d: %w", idx, err)
	}
	h.port = port
	s.hosts = append(s.hosts, h)
	err = s.seg.At(hc.Start, func() error {
		var err error
		if !h.booted { // a restart may have booted it already
			err = s.boot(h)
		}
		if s.cfg.Progress != nil && s.boots&1023 == 0 {
			s.maybeProgress(false)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sim: host %d: %w", idx, err)
	}
	return int(idx), nil
}

// hostMAC is the default MAC of host idx in incarnation inc.
func hostMAC(idx int32, inc int) acd.MAC {
	return acd.MAC{0x02, byte(inc), byte(idx >> 24), byte(idx >> 16), byte(idx >> 8), byte(idx)}
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
	if s.bridged {
		return fmt.Errorf("sim: run: %w", segment.ErrBridged)
	}
	wall := time.Now()
	s.progress.start(wall)
	s.quiet = false
	for s.err == nil && s.seg.Err() == nil {
		progress := s.seg.Step()
		s.iter++
		if s.cfg.Progress != nil && s.iter&1023 == 0 {
			s.maybeProgress(false)
		}
		if progress {
			continue
		}
		next, ok := s.seg.Next()
		if !ok {
			s.quiet = true
			break
		}
		if next > t {
			s.seg.AdvanceTo(t)
			break
		}
		s.seg.AdvanceTo(next)
	}
	s.runWall += time.Since(wall)
	return s.finishRun()
}

// finishRun prints the last progress line and writes the outputs out.
func (s *Sim) finishRun() error {
	if s.cfg.Progress != nil {
		s.maybeProgress(true)
	}
	if err := s.seg.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	if s.err == nil && s.trace != nil {
		s.err = s.trace.flush()
	}
	return s.err
}

// Quiet reports whether the last Run ended with nothing pending.
func (s *Sim) Quiet() bool { return s.quiet }

// WallTimes returns the wall time the runs took and the part of it spent
// building netstacks.
func (s *Sim) WallTimes() (run, build time.Duration) { return s.runWall, s.bootWall }

// Close destroys every host's netstack. The results stay readable.
func (s *Sim) Close() error {
	if s.closed {
		return nil
	}
	s.closing = true
	for _, h := range s.hosts {
		if h.booted {
			if err := h.close(); err != nil && s.err == nil {
				s.err = err
			}
		}
	}
	for s.clk.RunOneDue() { // timers made due by closing, if any, run into closed clients
	}
	s.closed = true
	s.seg.Close()
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
	if err := s.seg.At(t, f); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// SetLink takes host i's link down or up: the segment stops or resumes
// carrying its frames and the client is told (through the port's link
// state), which withdraws the address or starts negotiating afresh.
func (s *Sim) SetLink(i int, up bool) error {
	h, err := s.checkHost("set link", i)
	if err != nil {
		return err
	}
	if !h.booted || h.port.Up() == up {
		return nil
	}
	if up {
		s.record(h, recLinkUp, 0, [4]byte{}, 0)
	} else {
		s.record(h, recLinkDown, 0, [4]byte{}, 0)
	}
	h.port.SetLink(up)
	if h.client != nil {
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
			s.setGroup(h, g+1)
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
		a.port.SetGroup(0)
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
	s.setGroup(h, g)
	return nil
}

func (s *Sim) setGroup(h *host, g int) {
	if h.port.Group() == g {
		return
	}
	h.port.SetGroup(g)
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
		h.store = nil
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
func (s *Sim) SetLinkModel(m segment.LinkModel) error {
	if err := s.seg.SetLinkModel(m); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
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

// Holding returns the address the host holds with its link up, if any:
// what it defends on the segment.
func (hs HostStatus) Holding() netip.Addr {
	if !hs.Booted || !hs.LinkUp {
		return netip.Addr{}
	}
	return hs.Addr
}

// Host returns a snapshot of host i.
func (s *Sim) Host(i int) (HostStatus, error) {
	h, err := s.checkHost("host", i)
	if err != nil {
		return HostStatus{}, err
	}
	hs := HostStatus{Index: i, MAC: h.mac, Static: h.cfg.Static.IsValid(), Booted: h.booted, LinkUp: h.port.Up(), Group: h.port.Group()}
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

// HostConfig returns the configuration host i was added with.
func (s *Sim) HostConfig(i int) HostConfig { return s.hosts[i].cfg }

// GVisor returns host i's gVisor stack and the ID of its NIC, or nil if
// the host is not booted. Do not drive it from another goroutine; send IP
// traffic only with Config.FullStacks.
func (s *Sim) GVisor(i int) (*gvstack.Stack, tcpip.NICID) {
	if i < 0 || i >= len(s.hosts) {
		return nil, 0
	}
	return s.hosts[i].gv, hostNIC
}

// Client returns host i's AutoIP client, or nil (static hosts, hosts not
// booted).
func (s *Sim) Client(i int) *stack.Client {
	if i < 0 || i >= len(s.hosts) {
		return nil
	}
	return s.hosts[i].client
}
