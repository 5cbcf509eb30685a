package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
)

// Config configures a Client.
type Config struct {
	// Engine configures the AutoIP engine. A zero Engine.HW means the NIC's
	// link address.
	Engine autoip.Config
	// Store keeps state across runs. Nil: nothing is saved. If set and
	// Engine.Saved is zero, the stored state is loaded at Attach; a missing
	// or corrupt store is logged and ignored (R04).
	Store persist.Store
	// Route routes 169.254.0.0/16 through the NIC holding a routable
	// address, with that address as source, whenever one exists (the
	// lsm-autoip routing-table option, R22). Without it the route exists
	// only while a link-local address is bound, with that address as
	// source.
	Route bool
	// OnEvent is called for every engine event, in order, never
	// concurrently with itself, and without the client's lock held (it may
	// call back into the client). It must not block for long.
	OnEvent func(autoip.Event)
	// OnState is called whenever the engine's state changes (waiting,
	// probing, announcing, bound, ...), including changes that carry no
	// event, with the address probed or held. Same rules as OnEvent, and
	// ordered with it.
	OnState func(from, to autoip.State, addr netip.Addr)
	// Logger receives state changes (Info), conflicts (Warn) and per-frame
	// detail (Debug). Nil discards.
	Logger *slog.Logger
}

// Client runs one autoip.Engine on one NIC of a gVisor stack. It needs no
// goroutine of its own: frames arrive through the Shim and timers through
// the stack's clock. It is safe for concurrent use.
type Client struct {
	s     *gvstack.Stack
	nic   tcpip.NICID
	shim  *Shim
	clock tcpip.Clock
	store persist.Store
	route bool
	log   *slog.Logger

	onEvent func(autoip.Event)
	onState func(from, to autoip.State, addr netip.Addr)

	mu     sync.Mutex
	eng    *autoip.Engine
	outs   []autoip.Output
	events []notice
	state  autoip.State // last state reported to OnState
	// delivering is set while a goroutine calls OnEvent/OnState;
	// evScratch is its buffer.
	delivering bool
	evScratch  []notice
	timerGen   uint64 // identifies the armed timer; stale callbacks see another
	frameBuf   []byte
	timer      tcpip.Timer
	timerAt    time.Time
	bound      netip.Addr                // configured on the NIC by us
	hinted     map[hintKey]tcpip.Address // routes whose empty SourceHint we filled in
	changed    chan struct{}
	started    bool
	closed     bool

	removing atomic.Bool // we are removing our address: OnRemoved is ours
	notSent  atomic.Uint64
	reclaims atomic.Uint64
	stackErr atomic.Uint64

	bcastQueries atomic.Uint64
}

// Attach makes a Client for NIC nic of s, whose link is shim. The NIC must
// be an Ethernet link (ErrNotEthernet otherwise: the L3 tunnel NICs of
// wireguard-go and tailscale have no ARP) and s must have the ARP protocol.
// Call Start to begin.
func Attach(s *gvstack.Stack, nic tcpip.NICID, shim *Shim, cfg Config) (*Client, error) {
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
	if info.LinkAddress != shim.LinkAddress() {
		return nil, fmt.Errorf("autoip attach: NIC %d has link address %v but the shim has %v: the shim is not this NIC's link", nic, info.LinkAddress, shim.LinkAddress())
	}
	ecfg := cfg.Engine
	if ecfg.HW.IsZero() {
		if len(info.LinkAddress) != 6 {
			return nil, fmt.Errorf("autoip attach: NIC %d link address %q is not a MAC", nic, info.LinkAddress)
		}
		copy(ecfg.HW[:], info.LinkAddress)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Store != nil && ecfg.Saved == (autoip.SavedState{}) {
		saved, err := cfg.Store.Load()
		if err != nil {
			log.Info("no usable saved state; starting afresh", "err", err)
		} else {
			ecfg.Saved = saved
		}
	}
	eng, err := autoip.NewEngine(ecfg)
	if err != nil {
		return nil, fmt.Errorf("autoip attach: %w", err)
	}
	c := &Client{
		s: s, nic: nic, shim: shim, clock: s.Clock(), store: cfg.Store, route: cfg.Route,
		log: log, onEvent: cfg.OnEvent, onState: cfg.OnState, eng: eng,
		changed: make(chan struct{}),
	}
	return c, nil
}

// Start installs the frame hook and starts negotiation.
func (c *Client) Start() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.started {
		c.mu.Unlock()
		return nil
	}
	c.started = true
	c.shim.SetHook(c.handleFrame)
	now := c.clock.Now()
	c.eng.SetRoutable(now, c.routableLocked().IsValid())
	c.eng.Start(now)
	c.syncRoutesLocked()
	c.log.Info("autoip started", "nic", c.nic, "mac", macString(c.shim.LinkAddress()), "seed", c.eng.Seed())
	c.flushLocked(now)
	c.unlockAndDeliver()
	return nil
}

// Close withdraws the address, saves state, reports STOP and detaches.
// It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	now := c.clock.Now()
	c.eng.Stop(now)
	c.flushLocked(now)
	c.closed = true
	c.syncRoutesLocked() // drop our 169.254/16 route and hints (Route mode keeps one otherwise)
	c.shim.SetHook(nil)
	c.stopTimerLocked()
	c.unlockAndDeliver()
	return nil
}

// SetLink tells the engine the link went up or down (R19).
func (c *Client) SetLink(up bool) { c.step(func(now time.Time) { c.eng.SetLink(now, up) }) }

// Reannounce re-adds the bound address if something removed it and
// announces it again (SIGHUP). It fails if no address is bound, and with
// ErrClosed after Close.
func (c *Client) Reannounce() error {
	err := ErrClosed // unless step runs f
	c.step(func(now time.Time) { err = c.eng.Reannounce(now) })
	return err
}

// AddressesChanged tells the client that the NIC's addresses changed
// (something other than this client added or removed one). It re-reads
// them for the coexistence rules (R20-R22). Stack.AddAddress and
// Stack.RemoveAddress call it.
func (c *Client) AddressesChanged() {
	c.step(func(now time.Time) {
		c.eng.SetRoutable(now, c.routableLocked().IsValid())
		c.syncRoutesLocked()
	})
}

// step runs f on the engine under the lock, then performs its outputs.
// Before Start it runs too, so that SetLink and AddressesChanged are not
// lost: the stopped engine records them for Start and outputs nothing.
func (c *Client) step(f func(now time.Time)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.clock.Now()
	f(now)
	c.flushLocked(now)
	c.unlockAndDeliver()
}

// handleFrame is the Shim hook.
func (c *Client) handleFrame(frame []byte) acd.Verdict {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return acd.VerdictUnrelated
	}
	now := c.clock.Now()
	v := c.eng.HandleFrame(now, frame)
	if !v.Drop() && isBroadcastQuery(frame) {
		v = acd.VerdictBroadcastTarget
		c.bcastQueries.Add(1)
	}
	if v.IsConflict() || v == acd.VerdictMalformed || v == acd.VerdictBadSender {
		c.log.Debug("arp frame", "verdict", v.String(), "len", len(frame))
	}
	c.flushLocked(now)
	c.unlockAndDeliver()
	return v
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
	c.flushLocked(now)
	c.unlockAndDeliver()
}

// flushLocked performs the engine's outputs and re-arms the timer.
func (c *Client) flushLocked(now time.Time) {
	c.outs = c.eng.AppendOutputs(c.outs[:0])
	for i := range c.outs {
		c.performLocked(&c.outs[i])
	}
	clear(c.outs)
	c.armLocked(now)
	if st := c.eng.State(); st != c.state {
		if c.onState != nil {
			c.events = append(c.events, notice{state: true, from: c.state, to: st, addr: c.eng.Status().Addr})
		}
		c.state = st
	}
}

func (c *Client) armLocked(now time.Time) {
	dl, ok := c.eng.Deadline()
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

func (c *Client) performLocked(o *autoip.Output) {
	switch o.Kind {
	case autoip.OutSendARP:
		c.frameBuf = o.Frame.AppendBinary(c.frameBuf[:0])
		if err := c.shim.InjectOutbound(c.frameBuf); err != nil {
			// Link down or gone: the frame is "not sent", never fatal.
			c.notSent.Add(1)
			c.log.Debug("arp not sent", "kind", o.Frame.Packet.Kind().String(), "err", err)
		}
	case autoip.OutAddAddress:
		c.addLocked(o.Prefix.Addr())
	case autoip.OutRemoveAddress:
		c.removeLocked(o.Prefix.Addr())
	case autoip.OutEvent:
		c.logEvent(o.Event)
		if c.onEvent != nil {
			c.events = append(c.events, notice{ev: o.Event})
		}
		switch o.Event.Kind {
		case autoip.EventBind, autoip.EventConflict, autoip.EventUnbind, autoip.EventStop:
			close(c.changed)
			c.changed = make(chan struct{})
		}
	case autoip.OutSaveState:
		if c.store != nil {
			if err := c.store.Save(o.Saved); err != nil {
				c.log.Error("saving state failed", "err", err)
			}
		}
	}
}

func (c *Client) addLocked(a netip.Addr) {
	err := c.s.AddProtocolAddress(c.nic, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: 16},
	}, gvstack.AddressProperties{PEB: gvstack.CanBePrimaryEndpoint, Disp: &addrWatch{c: c, addr: a}})
	if err != nil {
		if _, dup := err.(*tcpip.ErrDuplicateAddress); !dup {
			c.stackErr.Add(1)
			c.log.Error("adding address failed", "addr", a, "err", tcpipErr("add address", err))
		}
	}
	c.bound = a
	c.syncRoutesLocked()
}

func (c *Client) removeLocked(a netip.Addr) {
	c.removing.Store(true)
	err := c.s.RemoveAddress(c.nic, tcpip.AddrFrom4(a.As4()))
	c.removing.Store(false)
	if err != nil {
		if _, gone := err.(*tcpip.ErrBadLocalAddress); !gone {
			c.stackErr.Add(1)
			c.log.Error("removing address failed", "addr", a, "err", tcpipErr("remove address", err))
		}
	}
	c.bound = netip.Addr{}
	c.syncRoutesLocked()
}

// addrWatch notices our address being removed by someone else, so that the
// client can put it back (gVisor calls OnRemoved with its own locks held, so
// the work is deferred to a timer).
type addrWatch struct {
	c    *Client
	addr netip.Addr
}

func (w *addrWatch) OnChanged(gvstack.AddressLifetimes, gvstack.AddressAssignmentState) {}

func (w *addrWatch) OnRemoved(reason gvstack.AddressRemovalReason) {
	if w.c.removing.Load() || reason != gvstack.AddressRemovalManualAction {
		return
	}
	w.c.clock.AfterFunc(0, func() { w.c.reclaim(w.addr) })
}

// reclaim re-adds addr if it is still ours and was removed behind our back.
func (c *Client) reclaim(addr netip.Addr) {
	c.step(func(now time.Time) {
		if c.bound != addr || c.hasAddressLocked(addr) {
			return
		}
		c.reclaims.Add(1)
		c.log.Warn("our address was removed from the NIC by someone else; adding it back", "addr", addr)
		_ = c.eng.Reannounce(now)
	})
}

func (c *Client) hasAddressLocked(a netip.Addr) bool {
	want := tcpip.AddrFrom4(a.As4())
	for _, pa := range c.s.AllAddresses()[c.nic] {
		if pa.AddressWithPrefix.Address == want {
			return true
		}
	}
	return false
}

// unlockAndDeliver releases mu and calls OnEvent for the queued events, in
// order. One goroutine delivers at a time and also delivers whatever is
// queued while it does, so OnEvent may call back into the client (Close,
// SetLink, ...) without deadlock, and events never overtake each other.
func (c *Client) unlockAndDeliver() {
	if c.delivering || len(c.events) == 0 {
		c.mu.Unlock() // nothing to do, or the delivering goroutine picks ours up
		return
	}
	c.delivering = true
	for len(c.events) > 0 {
		c.evScratch = append(c.evScratch[:0], c.events...)
		clear(c.events)
		c.events = c.events[:0]
		c.mu.Unlock()
		for _, n := range c.evScratch {
			if n.state {
				c.onState(n.from, n.to, n.addr)
			} else {
				c.onEvent(n.ev)
			}
		}
		c.mu.Lock()
	}
	c.delivering = false
	c.mu.Unlock()
}

// notice is one queued OnEvent or OnState call.
type notice struct {
	ev       autoip.Event
	state    bool
	from, to autoip.State
	addr     netip.Addr
}

func (c *Client) logEvent(ev autoip.Event) {
	switch ev.Kind {
	case autoip.EventConflict, autoip.EventDefend:
		c.log.Warn(ev.Kind.String(), "addr", ev.Addr, "phase", ev.Phase.String(), "from", ev.From.String(), "packet", ev.Frame.Packet.Kind().String())
	case autoip.EventRateLimit:
		c.log.Warn(ev.Kind.String(), "until", ev.Until)
	case autoip.EventUnbind:
		c.log.Info(ev.Kind.String(), "addr", ev.Addr, "reason", ev.Reason)
	default:
		c.log.Info(ev.Kind.String(), "addr", ev.Addr)
	}
}

// Status is a snapshot of the client.
type Status struct {
	autoip.Status
	// Configured is the address this client has on the NIC, if any.
	Configured netip.Addr
	// NotSent counts engine frames the link refused (down, gone).
	NotSent uint64
	// Reclaims counts how often our address was put back after someone
	// else removed it.
	Reclaims uint64
	// StackErrors counts failed netstack operations (logged).
	StackErrors uint64
	// BroadcastQueries counts ARP requests for 255.255.255.255 or
	// 169.254.255.255 kept from netstack, which would answer them.
	BroadcastQueries uint64
	Shim             ShimStats
}

// Status returns a snapshot.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.eng.Status()
	shim := c.shim.Stats()
	st.Stats.NotARP += shim.NotARP // the shim hands the engine ARP only
	return Status{
		Status: st, Configured: c.bound,
		NotSent: c.notSent.Load(), Reclaims: c.reclaims.Load(), StackErrors: c.stackErr.Load(),
		BroadcastQueries: c.bcastQueries.Load(),
		Shim:             c.shim.Stats(),
	}
}

// WaitBound blocks until an address is bound and returns it, or returns
// ctx's error, or ErrClosed.
func (c *Client) WaitBound(ctx context.Context) (netip.Addr, error) {
	for {
		c.mu.Lock()
		a, ch, closed := c.bound, c.changed, c.closed
		c.mu.Unlock()
		if a.IsValid() {
			return a, nil
		}
		if closed {
			return netip.Addr{}, ErrClosed
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("waiting for a link-local address: %w", ctx.Err())
		case <-ch:
		}
	}
}

func macString(a tcpip.LinkAddress) string { return a.String() }

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
