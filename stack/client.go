package stack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/dhcp"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Engine configures the AutoIP engine: initial address, seed, RFC
	// timing, defence policy, ... A zero Engine.HW means the NIC's link
	// address.
	Engine autoip.Config
	// Store keeps state across runs. Nil: nothing is saved. If set and
	// Engine.Saved is zero, the stored state is loaded at Attach; a missing
	// or corrupt store is logged and ignored (R04). Save runs on the
	// goroutine that performs the client's outputs (see Client) and must
	// not call the client.
	Store persist.Store
	// Route routes 169.254.0.0/16 with the NIC's routable address as
	// source whenever one exists, even while a link-local address is bound
	// (the lsm-autoip routing-table option, R22). Without it the
	// link-local address is the source once bound.
	Route bool
	// KeepConnections leaves the stack's TCP connections alone when the
	// address is given up. By default they are reset (RST) first, as RFC
	// 3927 §2.5 and RFC 5227 §2.4 ask (R30).
	KeepConnections bool
	// LinkState, if set, reports the link's state. Nil: the state of the
	// Shim's link if it reports one (a tap.Link endpoint does), else the
	// link counts as always up. While the link is down nothing is probed;
	// a probe the link refuses is not counted and is sent again.
	LinkState LinkStateWatcher
	// OnEvent is called for every engine event, in order, never
	// concurrently with itself and without the client's lock held (it may
	// call back into the client). See Client for the goroutine it runs on.
	// It must not block for long.
	OnEvent func(autoip.Event)
	// OnState is called whenever the engine's state changes (link-down,
	// waiting, probing, bound, ...), including changes that carry no
	// event, with the address probed or held. Same rules as OnEvent, and
	// ordered with it.
	OnState func(from, to autoip.State, addr netip.Addr)
	// Static lists addresses to manage from the start, as AddAddress with
	// SourceStatic would (probed first, then configured and defended).
	Static []netip.Prefix
	// OnAddressEvent is called for events of the other addresses the
	// client manages (AddAddress, DHCP). Same rules as OnEvent, and ordered
	// with it.
	OnAddressEvent func(AddressEvent)
	// DHCP, if set, runs a DHCP client on the NIC with link-local as its
	// fallback; see DHCPConfig.
	DHCP *DHCPConfig
	// Logger receives state changes (Info), conflicts (Warn) and per-frame
	// detail (Debug). Nil discards.
	Logger *slog.Logger
}

// LinkStateWatcher is implemented by links that know whether they can carry
// frames, such as the endpoint of a tap.Link.
type LinkStateWatcher interface {
	// WatchLinkState calls f with the current state before it returns and
	// again at every change, never concurrently, until stop is called.
	// f must not block for long.
	WatchLinkState(f func(up bool)) (stop func())
}

// Client runs one autoip.Engine on one NIC of a gVisor stack. It needs no
// goroutine of its own: frames arrive through the Shim, timers through the
// stack's clock and link states from the link.
//
// It is built the way etcd raft's Node drives its RawNode: under the
// client's lock it only steps the engine and queues the engine's outputs;
// after unlocking, one goroutine at a time performs the queue in order:
// frames sent, addresses and routes changed, state saved, OnEvent and
// OnState called. That goroutine is whichever one stepped the engine when
// the queue was idle: a link's delivery goroutine (a frame), the clock's
// timer goroutine (a timer), or a caller of a method such as SetLink. A
// frame that arrives while outputs are being performed, even re-entrantly
// on the same goroutine through a synchronous link such as gVisor's
// link/pipe, is stepped and queued, and its verdict is returned at once.
//
// Close it before removing its NIC (RemoveNIC) or destroying the gVisor
// stack (Stack.Close does both in that order): Close withdraws the address
// in order, saves state and reports STOP. A client whose NIC goes first
// stops by itself, logs a warning, and WaitBound and Reannounce then fail
// with ErrNICRemoved.
//
// It is safe for concurrent use.
type Client struct {
	s         *gvstack.Stack
	nic       tcpip.NICID
	shim      *Shim
	clock     tcpip.Clock
	store     persist.Store
	route     bool
	keepConns bool
	log       *slog.Logger
	onEvent   func(autoip.Event)
	onState   func(from, to autoip.State, addr netip.Addr)
	onAddr    func(AddressEvent)
	stopLink  func()
	hw        acd.MAC
	v4        gvstack.AddressableEndpoint // the NIC's IPv4 endpoint, for the ARP fast path; nil if none

	// The NIC's IPv4 addresses and subnet broadcasts for the Shim's ARP
	// fast path (refreshLocal).
	local   atomic.Pointer[[]uint32]
	localMu sync.Mutex
	adding  netip.Addr // guarded by localMu

	mu         sync.Mutex
	eng        *autoip.Engine
	outs       []autoip.Output // scratch for AppendOutputs
	queue      []job           // to perform, in order
	spare      []job           // the other queue buffer, swapped in while performing
	performing bool            // a goroutine is performing the queue
	state      autoip.State    // last state queued for OnState
	closed     bool            // Close was called
	closeErr   error           // why it is closed: what WaitBound and friends then report
	timerGen   uint64          // identifies the armed timer; stale callbacks see another
	timer      tcpip.Timer
	timerAt    time.Time
	bound      netip.Addr    // configured on the NIC by us
	changed    chan struct{} // closed (and replaced) when bound changes or the client closes
	done       chan struct{} // closed once Close's work has been performed
	linkUp     bool

	managed []*managed   // other addresses under conflict detection
	mrng    *rand.Rand   // their detectors' delays
	dout    []acd.Output // scratch

	dhcp        *dhcp.Client // nil: no DHCP
	dhcpCfg     *DHCPConfig
	dhcpOut     []dhcp.Output
	llReleased  bool      // DHCP coexistence: link-local may run
	llReleaseAt time.Time // when it may if no lease came; zero: not pending

	// Owned by the performing goroutine.
	frameBuf  []byte
	routes    routeState
	ownRoutes map[netip.Addr][]tcpip.Route // routes made for managed addresses

	removing    atomic.Bool // we are removing our address: OnRemoved is ours
	nicGone     atomic.Bool // gVisor removed the NIC: its operations fail, as expected
	reclaims    atomic.Uint64
	stackErr    atomic.Uint64
	resets      atomic.Uint64
	bcastQuery  atomic.Uint64
	directDrops atomic.Uint64
	dhcpBad     atomic.Uint64

	direct directSender // R28: link-local packets a route sent to a gateway
}

// Attach makes a Client for NIC nic of s, whose link is shim, and starts
// it. The NIC must be an Ethernet link (ErrNotEthernet otherwise: the L3
// tunnel NICs of wireguard-go and tailscale have no ARP), s must have the
// ARP protocol, and no other open Client may own shim (ErrAttached).
func Attach(s *gvstack.Stack, nic tcpip.NICID, shim *Shim, cfg ClientConfig) (*Client, error) {
	if s == nil || shim == nil {
		return nil, errors.New("autoip attach: nil stack or shim")
	}
	info, ok := s.NICInfo()[nic]
	if !ok {
		return nil, fmt.Errorf("autoip attach: NIC %d: %w", nic, ErrNoNIC)
	}
	if info.ARPHardwareType != header.ARPHardwareEther || shim.ARPHardwareType() != header.ARPHardwareEther {
		return nil, fmt.Errorf("autoip attach: NIC %d (%q, hardware type %d): %w", nic, info.Name, info.ARPHardwareType, ErrNotEthernet)
	}
	if s.NetworkProtocolInstance(header.ARPProtocolNumber) == nil {
		return nil, fmt.Errorf("autoip attach: %w", ErrNoARP)
	}
	if s.NetworkProtocolInstance(header.IPv4ProtocolNumber) == nil {
		return nil, fmt.Errorf("autoip attach: %w", ErrNoIPv4)
	}
	if info.LinkAddress != shim.LinkAddress() {
		return nil, fmt.Errorf("autoip attach: NIC %d has link address %v but the shim has %v: the shim is not this NIC's link", nic, info.LinkAddress, shim.LinkAddress())
	}
	// The shim must be the NIC's link, or it would never see a frame and
	// the client would claim addresses blind (CreateNIC(id, shim), not
	// CreateNIC(id, ethernet.New(link))).
	if !shim.IsAttached() || (info.Name != "" && s.GetLinkEndpointByName(info.Name) != gvstack.LinkEndpoint(shim)) {
		return nil, fmt.Errorf("autoip attach: NIC %d (%q): the shim is not this NIC's link endpoint: create the NIC with CreateNIC(id, shim)", nic, info.Name)
	}
	ecfg := cfg.Engine
	if ecfg.HW.IsZero() {
		copy(ecfg.HW[:], info.LinkAddress)
	} else if tcpip.LinkAddress(ecfg.HW[:]) != info.LinkAddress {
		return nil, fmt.Errorf("autoip attach: Engine.HW %v is not NIC %d's link address %v: probes would carry a MAC the NIC does not own", ecfg.HW, nic, info.LinkAddress)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Store != nil && ecfg.Saved == (autoip.SavedState{}) {
		saved, err := cfg.Store.Load()
		switch {
		case errors.Is(err, persist.ErrMissing):
			log.Info("no saved state yet; starting afresh", "err", err)
		case err != nil:
			log.Warn("saved state unusable; starting afresh", "err", err)
		default:
			ecfg.Saved = saved
		}
	}
	eng, err := autoip.NewEngine(ecfg)
	if err != nil {
		return nil, fmt.Errorf("autoip attach: %w", err)
	}
	c := &Client{
		s: s, nic: nic, shim: shim, clock: s.Clock(), store: cfg.Store, route: cfg.Route,
		keepConns: cfg.KeepConnections, log: log, onEvent: cfg.OnEvent, onState: cfg.OnState, onAddr: cfg.OnAddressEvent,
		hw: ecfg.HW, eng: eng, changed: make(chan struct{}), done: make(chan struct{}), linkUp: true,
		mrng: rand.New(rand.NewPCG(eng.Seed(), autoip.SeedFromMAC(ecfg.HW)^0x6d616e61676564)), // "managed"
	}
	c.direct.c = c
	if cfg.DHCP != nil {
		if err := c.newDHCP(cfg.DHCP, c.clock.Now()); err != nil {
			return nil, fmt.Errorf("autoip attach: %w", err)
		}
	}
	if ep, err := s.GetNetworkEndpoint(nic, header.IPv4ProtocolNumber); err == nil {
		c.v4, _ = ep.(gvstack.AddressableEndpoint)
	}
	if !shim.claim(c) {
		return nil, fmt.Errorf("autoip attach: NIC %d: %w", nic, ErrAttached)
	}
	c.refreshLocal()
	watch := cfg.LinkState
	if watch == nil {
		watch, _ = shim.link.(LinkStateWatcher)
	}
	if watch != nil {
		// The first report comes before Start: the engine starts in the
		// link's real state instead of probing a link that is down.
		c.stopLink = watch.WatchLinkState(c.SetLink)
	}
	for _, p := range cfg.Static {
		if err := checkManageable(p); err != nil {
			shim.release(c)
			if c.stopLink != nil {
				c.stopLink()
			}
			return nil, fmt.Errorf("autoip attach: static address %v: %w", p, err)
		}
	}
	routable := c.routable()
	c.mu.Lock()
	now := c.clock.Now()
	for _, p := range cfg.Static {
		if c.findLocked(p.Addr()) == nil {
			c.startManagedLocked(now, p, SourceStatic)
		}
	}
	c.eng.SetRoutable(now, routable.IsValid() || c.pendingRoutableLocked())
	c.eng.SetHeld(now, c.llHoldLocked(now))
	c.eng.Start(now)
	if c.dhcp != nil {
		c.dhcp.SetLink(now, c.linkUp)
		c.dhcp.Start(now)
	}
	c.log.Info("autoip started", "nic", nic, "mac", ecfg.HW.String(), "seed", c.eng.Seed(), "link_up", c.linkUp, "dhcp", c.dhcp != nil)
	c.queue = append(c.queue, job{kind: jobRoutes})
	c.flushLocked(now)
	c.mu.Unlock()
	c.perform()
	return c, nil
}

// Close withdraws the address (resetting its TCP connections unless
// KeepConnections), removes the client's routes, saves state, reports STOP
// and gives the Shim up, so that another Client may attach. It returns once
// that is done, except when it is called from OnEvent or OnState (of this
// or any Client): then it returns at once and the work is performed as soon
// as the callback returns; Done tells when. It is idempotent.
func (c *Client) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

// nicRemoved stops the client when gVisor detached its NIC's link
// (RemoveNIC, Destroy): nothing it sends can reach the wire any more and
// its address is gone with the NIC. gVisor detaches with the stack's lock
// held, so the work is done from a clock callback.
func (c *Client) nicRemoved() {
	c.clock.AfterFunc(0, func() {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		c.nicGone.Store(true)
		c.log.Warn("the NIC was removed from its stack (RemoveNIC or Destroy) while the client ran: stopping", "nic", c.nic)
		c.closeWith(fmt.Errorf("%w: %w", ErrClosed, ErrNICRemoved))
	})
}

// errNotStepped marks a result that step did not set: the client was closed.
var errNotStepped = errors.New("not stepped")

// orClosed returns err, or, if step did not run, why the client is closed.
func (c *Client) orClosed(err error) error {
	if err == errNotStepped {
		return c.closedErr()
	}
	return err
}

// closedErr is what calls report once the client is closed (closeWith
// sets it before closed).
func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

func (c *Client) closeWith(reason error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.waitDone()
		return
	}
	c.closeErr = reason
	now := c.clock.Now()
	c.eng.Stop(now)
	if c.dhcp != nil {
		c.dhcp.Stop(now, !c.dhcpCfg.KeepLease)
		c.shim.dhcpOn.Store(false)
	}
	for _, m := range slices.Clone(c.managed) {
		// The DHCP client unconfigures its lease itself; static and alias
		// addresses stay configured (R13: closing the client removes only
		// its link-local address), no longer watched.
		c.dropLocked(m)
	}
	c.closed = true
	c.flushLocked(now)
	c.stopTimerLocked()
	c.queue = append(c.queue, job{kind: jobClosed})
	close(c.changed)
	c.changed = make(chan struct{})
	stop := c.stopLink
	c.stopLink = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	c.perform()
	c.waitDone()
}

// waitDone waits for Close's work unless a callback is running: the
// callback's goroutine may be the one that has to perform it.
func (c *Client) waitDone() {
	if callbacksRunning.Load() == 0 {
		<-c.done
	}
}

// callbacksRunning counts OnEvent/OnState calls in progress in this
// process; see Close.
var callbacksRunning atomic.Int32

// Done is closed once the work of Close (withdrawal, STOP, save) has been
// performed.
func (c *Client) Done() <-chan struct{} { return c.done }

// SetLink tells the engine the link went up or down (R19). Down withdraws
// the address and forgets the NIC's neighbours (a re-created TAP may be
// another host); up restarts negotiation, last address first. Links that
// report their state are wired by Attach; call SetLink for others.
func (c *Client) SetLink(up bool) {
	c.step(func(now time.Time) {
		if c.linkUp == up {
			return
		}
		c.linkUp = up
		c.eng.SetLink(now, up)
		if c.dhcp != nil {
			c.dhcp.SetLink(now, up)
		}
		c.setLinkManagedLocked(now, up)
		if !up {
			c.queue = append(c.queue, job{kind: jobForgetNeighbours})
		}
	})
}

// Reannounce re-adds the bound address if something removed it and
// announces it again (SIGHUP). It returns an error matching
// autoip.ErrNotBound if no address is bound, and ErrClosed after Close.
func (c *Client) Reannounce() error {
	err := errNotStepped
	c.step(func(now time.Time) { err = c.eng.Reannounce(now) })
	return c.orClosed(err)
}

// Resync re-reads the NIC's addresses for the coexistence rules (R20-R22)
// and puts the client's routes back if the application removed them, for
// example by replacing the route table with SetRouteTable. Call it after
// changing the NIC's addresses or the route table; Stack.AddAddress and
// Stack.RemoveAddress call it.
func (c *Client) Resync() {
	c.refreshLocal()
	routable := c.routable()
	c.step(func(now time.Time) {
		c.eng.SetRoutable(now, routable.IsValid() || c.pendingRoutableLocked())
		c.queue = append(c.queue, job{kind: jobRoutes, verify: true})
	})
}

// step runs f on the engine under the lock, queues its outputs and then
// performs the queue (unless another goroutine is performing it).
func (c *Client) step(f func(now time.Time)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.clock.Now()
	f(now)
	c.flushLocked(now)
	c.mu.Unlock()
	c.perform()
}

// handleFrame is the Shim's hook for inbound ARP. It returns the verdict at
// once; outputs are performed after the lock is released.
func (c *Client) handleFrame(frame []byte) acd.Verdict {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return acd.VerdictUnrelated
	}
	now := c.clock.Now()
	var v acd.Verdict
	if f, err := acd.DecodeFrame(frame); err != nil {
		v = c.eng.HandleFrame(now, frame) // counts it as malformed or not ARP
	} else {
		v = c.eng.HandleARP(now, f)
		if len(c.managed) > 0 {
			v = c.stepManagedLocked(now, f, v)
		}
	}
	if !v.Drop() && isBroadcastQuery(frame) {
		v = acd.VerdictBroadcastTarget
		c.bcastQuery.Add(1)
	}
	if v.IsConflict() || v == acd.VerdictMalformed || v == acd.VerdictBadSender {
		c.log.Debug("arp frame", "verdict", v.String(), "len", len(frame))
	}
	c.flushLocked(now)
	work := len(c.queue) > 0
	c.mu.Unlock()
	if work {
		c.perform()
	}
	return v
}

// netstackIgnores reports whether netstack would do nothing with the
// inbound ARP frame but count it: a well-formed Ethernet/IPv4 request whose
// target is none of the NIC's addresses (nor the broadcast address of one
// of their subnets), as the client knows them (see refreshLocal). It takes
// no lock and allocates nothing.
func (c *Client) netstackIgnores(frame []byte) bool {
	if len(frame) < header.EthernetMinimumSize+header.ARPSize {
		return false
	}
	a := header.ARP(frame[header.EthernetMinimumSize:])
	if !a.IsValid() || a.Op() != header.ARPRequest {
		return false
	}
	local := c.local.Load()
	if local == nil {
		return false
	}
	target := binary.BigEndian.Uint32(a.ProtocolAddressTarget())
	for _, v := range *local {
		if v == target {
			return false
		}
	}
	return true
}

// refreshLocal re-reads the NIC's IPv4 addresses for netstackIgnores: each
// address, the broadcast address of its subnet where gVisor's ARP answers
// for it (prefixes up to /30), and the address the client is adding right
// now. It runs at Attach, at Resync and around the client's own address
// changes.
func (c *Client) refreshLocal() {
	if c.v4 == nil {
		return
	}
	c.localMu.Lock()
	defer c.localMu.Unlock()
	set := make([]uint32, 0, 4)
	for _, p := range c.v4.PermanentAddresses() {
		if p.Address.Len() != header.IPv4AddressSize {
			continue
		}
		v := binary.BigEndian.Uint32(p.Address.AsSlice())
		set = append(set, v)
		if p.PrefixLen <= 30 {
			set = append(set, v|(1<<(32-p.PrefixLen)-1))
		}
	}
	if c.adding.IsValid() {
		set = append(set, binary.BigEndian.Uint32(c.adding.AsSlice()))
	}
	c.local.Store(&set)
}

// setAdding records the address the client is about to add (invalid: none)
// and refreshes the local set.
func (c *Client) setAdding(a netip.Addr) {
	c.localMu.Lock()
	c.adding = a
	c.localMu.Unlock()
	c.refreshLocal()
}

func (c *Client) onTimer(gen uint64) {
	c.mu.Lock()
	if c.closed || gen != c.timerGen {
		c.mu.Unlock() // stopped or replaced after it fired
		return
	}
	c.timer = nil
	now := c.clock.Now()
	c.eng.HandleTimer(now)
	if c.dhcp != nil {
		c.dhcp.HandleTimer(now)
	}
	for _, m := range c.managed {
		m.det.HandleTimer(now)
	}
	c.flushLocked(now)
	c.mu.Unlock()
	c.perform()
}

// flushLocked queues the outputs of the managed detectors, the DHCP client
// and the engine (in that order: a detector's result feeds the DHCP
// client, whose lease may hold link-local back), and a state notice, and
// re-arms the timer. It does no I/O.
func (c *Client) flushLocked(now time.Time) {
	c.drainManagedLocked(now)
	c.drainDHCPLocked(now)
	if !c.closed {
		c.eng.SetHeld(now, c.llHoldLocked(now))
	}
	c.outs = c.eng.AppendOutputs(c.outs[:0])
	for i := range c.outs {
		c.queue = append(c.queue, job{kind: jobOutput, out: c.outs[i]})
	}
	clear(c.outs)
	c.armLocked(now)
	if st := c.eng.State(); st != c.state {
		if c.onState != nil {
			c.queue = append(c.queue, job{kind: jobState, from: c.state, to: st, addr: c.eng.Status().Addr})
		}
		c.state = st
	}
}

// deadlineLocked is the earliest deadline of the engine, the DHCP client,
// the managed detectors and the link-local release.
func (c *Client) deadlineLocked() (time.Time, bool) {
	dl, ok := c.eng.Deadline()
	earlier := func(t time.Time, due bool) {
		if due && (!ok || t.Before(dl)) {
			dl, ok = t, true
		}
	}
	if c.dhcp != nil {
		earlier(c.dhcp.Deadline())
		earlier(c.llReleaseAt, !c.llReleaseAt.IsZero())
	}
	earlier(c.managedDeadlineLocked())
	return dl, ok
}

func (c *Client) armLocked(now time.Time) {
	dl, ok := c.deadlineLocked()
	if c.closed || !ok {
		c.stopTimerLocked()
		return
	}
	if c.timer != nil && c.timerAt.Equal(dl) {
		return
	}
	c.stopTimerLocked()
	c.timerAt = dl
	gen := c.timerGen
	c.timer = c.clock.AfterFunc(dl.Sub(now), func() { c.onTimer(gen) })
}

// stopTimerLocked stops the armed timer; a callback already on its way is
// told apart by the generation and does nothing.
func (c *Client) stopTimerLocked() {
	c.timerGen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// Status is a snapshot of the client.
type Status struct {
	autoip.Status
	// Configured is the address this client has on the NIC, if any. It
	// is set only once the address really is on the NIC.
	Configured netip.Addr
	// NotSent counts engine frames the link refused (down, gone); they
	// are not in Stats.Sent, and refused probes were sent again.
	NotSent uint64
	// Reclaims counts how often our address was put back after someone
	// else removed it.
	Reclaims uint64
	// StackErrors counts failed netstack operations (logged).
	StackErrors uint64
	// ConnectionsReset counts TCP connections reset because their
	// address was given up (R30).
	ConnectionsReset uint64
	// BroadcastQueries counts ARP requests for 255.255.255.255 or
	// 169.254.255.255 kept from netstack, which would answer them.
	BroadcastQueries uint64
	// DirectDropped counts link-local packets that netstack routed to a
	// gateway and that could not be sent straight to their destination
	// (it did not answer ARP).
	DirectDropped uint64
	// DHCP is the DHCP client's state ("" without DHCP) and Held why
	// link-local is held back by it ("" if it is not).
	DHCP, Held string
	Shim       ShimStats
}

// Status returns a snapshot.
func (c *Client) Status() Status {
	c.mu.Lock()
	st := c.eng.Status()
	bound := c.bound
	held := c.eng.Held()
	var dhcpState string
	if c.dhcp != nil {
		dhcpState = c.dhcp.State().String()
	}
	c.mu.Unlock()
	shim := c.shim.Stats()
	st.Stats.NotARP += shim.NotARP // the shim hands the engine ARP only
	return Status{
		Status: st, Configured: bound, NotSent: st.Stats.NotSent,
		Reclaims: c.reclaims.Load(), StackErrors: c.stackErr.Load(), ConnectionsReset: c.resets.Load(),
		BroadcastQueries: c.bcastQuery.Load(), DirectDropped: c.directDrops.Load(), Shim: shim,
		DHCP: dhcpState, Held: held,
	}
}

// WaitBound blocks until an address is configured on the NIC and returns
// it, or returns ctx's error (wrapped, with the state the client is in), or
// ErrClosed.
func (c *Client) WaitBound(ctx context.Context) (netip.Addr, error) {
	for {
		c.mu.Lock()
		a, ch, closed, st := c.bound, c.changed, c.closed, c.eng.State()
		c.mu.Unlock()
		if a.IsValid() {
			return a, nil
		}
		if closed {
			return netip.Addr{}, c.closedErr()
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("waiting for a link-local address (client %s): %w", st, ctx.Err())
		case <-ch:
		}
	}
}

// isBroadcastQuery reports whether frame is an ARP request for the limited
// broadcast address or the link-local subnet's broadcast address. gVisor
// treats both as local and would answer, making every bound host reply to
// one request with a bogus "broadcast is-at <MAC>".
func isBroadcastQuery(frame []byte) bool {
	const op, tpa = acd.EthernetHeaderLen + 6, acd.EthernetHeaderLen + 24
	if len(frame) < tpa+4 || frame[op] != 0 || frame[op+1] != byte(acd.OpRequest) {
		return false
	}
	t := frame[tpa : tpa+4]
	return (t[0] == 255 && t[1] == 255 || t[0] == 169 && t[1] == 254) && t[2] == 255 && t[3] == 255
}
