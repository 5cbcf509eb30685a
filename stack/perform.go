package stack

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/dhcp"
)

// jobKind says what a queued job asks the performer to do.
type jobKind uint8

const (
	jobOutput           jobKind = iota + 1 // perform an engine output
	jobState                               // call OnState
	jobRoutes                              // bring the client's routes up to date
	jobForgetNeighbours                    // the link went down: forget the NIC's neighbours
	jobConfigure                           // put a managed address (and its routes) on the NIC
	jobUnconfigure                         // take a managed address off the NIC
	jobAddrEvent                           // call OnAddressEvent
	jobDHCPSend                            // send a DHCP message
	jobSaveLease                           // store the DHCP lease
	jobRoutable                            // re-read the routable addresses for the engine
	jobClosed                              // Close's last job: release everything
)

// job is one queued piece of work, performed outside the client's lock.
type job struct {
	kind     jobKind
	out      autoip.Output // jobOutput
	det      *acd.Detector // jobOutput of a managed address's detector (nil: the engine's)
	from, to autoip.State  // jobState
	addr     netip.Addr    // jobState
	verify   bool          // jobRoutes: re-add routes the application removed
	prefix   netip.Prefix  // jobConfigure, jobUnconfigure
	source   AddressSource // jobConfigure, jobUnconfigure
	lease    dhcp.Lease    // jobConfigure (DHCP), jobSaveLease
	addrEv   AddressEvent  // jobAddrEvent
	msg      dhcp.Message  // jobDHCPSend
	to4      netip.Addr    // jobDHCPSend
	toHW     [6]byte       // jobDHCPSend
}

// perform performs the queue in order until it is empty, unless another
// goroutine already is (it will then perform what was just queued too).
func (c *Client) perform() {
	c.mu.Lock()
	if c.performing {
		c.mu.Unlock()
		return
	}
	c.performing = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue = c.spare[:0]
		c.mu.Unlock()
		for i := range batch {
			c.do(&batch[i])
		}
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
	}
	c.performing = false
	c.mu.Unlock()
}

func (c *Client) do(j *job) {
	switch j.kind {
	case jobOutput:
		c.doOutput(j)
	case jobState:
		c.callback(func() { c.onState(j.from, j.to, j.addr) })
	case jobRoutes:
		c.syncRoutes(j.verify)
	case jobForgetNeighbours:
		// A TAP deleted and re-created, or a cable moved, may put other
		// hosts behind the same addresses: ask again rather than send to
		// stale MACs.
		_ = c.s.ClearNeighbors(c.nic, ipv4.ProtocolNumber)
	case jobConfigure:
		c.configureManaged(j)
	case jobUnconfigure:
		c.unconfigureManaged(j.prefix)
	case jobAddrEvent:
		c.logAddrEvent(j.addrEv)
		if c.onAddr != nil {
			ev := j.addrEv
			c.callback(func() { c.onAddr(ev) })
		}
	case jobDHCPSend:
		c.sendDHCP(j)
	case jobRoutable:
		c.routableChanged()
	case jobSaveLease:
		if c.dhcpCfg != nil && c.dhcpCfg.Store != nil {
			if err := c.dhcpCfg.Store.SaveLease(j.lease); err != nil {
				c.log.Error("saving the DHCP lease failed", "err", err)
			}
		}
	case jobClosed:
		c.syncRoutes(false) // the client is closed: this removes its routes
		c.shim.release(c)
		close(c.done)
	}
}

func (c *Client) doOutput(j *job) {
	o := &j.out
	switch o.Kind {
	case autoip.OutSendARP:
		c.frameBuf = o.Frame.AppendBinary(c.frameBuf[:0])
		if err := c.shim.InjectOutbound(c.frameBuf); err != nil {
			// Link down or gone: "not sent", never fatal. The engine sends
			// a refused probe again (R10: no claim on probes never sent).
			c.log.Debug("arp not sent", "kind", o.Frame.Packet.Kind().String(), "err", err)
			f, det := o.Frame, j.det
			c.step(func(now time.Time) {
				if det != nil {
					det.NotSent(now, f)
				} else {
					c.eng.NotSent(now, f)
				}
			})
		}
	case autoip.OutAddAddress:
		c.addAddress(o.Prefix.Addr())
	case autoip.OutRemoveAddress:
		c.removeAddress(o.Prefix.Addr())
	case autoip.OutEvent:
		c.logEvent(o.Event)
		if c.onEvent != nil {
			ev := o.Event
			c.callback(func() { c.onEvent(ev) })
		}
	case autoip.OutSaveState:
		if c.store != nil {
			if err := c.store.Save(o.Saved); err != nil {
				c.log.Error("saving state failed", "err", err)
			}
		}
	}
}

// callback runs f, counted so that Close called from inside it does not
// wait for work that this very goroutine has to do.
func (c *Client) callback(f func()) {
	callbacksRunning.Add(1)
	defer callbacksRunning.Add(-1)
	f()
}

// setBound records what is configured and wakes WaitBound.
func (c *Client) setBound(a netip.Addr) {
	c.mu.Lock()
	c.bound = a
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) addAddress(a netip.Addr) {
	c.shim.dead.drop(a)
	c.setAdding(a) // netstack answers for it from the moment it is added
	err := c.s.AddProtocolAddress(c.nic, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: 16},
	}, gvstack.AddressProperties{PEB: gvstack.CanBePrimaryEndpoint, Disp: &addrWatch{c: c, addr: a}})
	c.setAdding(netip.Addr{})
	if err != nil {
		if _, dup := err.(*tcpip.ErrDuplicateAddress); !dup {
			// Not on the NIC: WaitBound must not hand it out.
			c.stackErr.Add(1)
			c.log.Error("adding address failed; it is not configured", "addr", a, "err", tcpipErr("add address", err))
			return
		}
	}
	c.setBound(a)
	c.syncRoutes(false)
}

func (c *Client) removeAddress(a netip.Addr) {
	if !c.keepConns {
		c.resetConnections(a)
		c.tombstone(a)
	}
	c.removing.Store(true)
	err := c.s.RemoveAddress(c.nic, tcpip.AddrFrom4(a.As4()))
	c.removing.Store(false)
	c.refreshLocal()
	if err != nil {
		if !c.alreadyGone(err) {
			c.stackErr.Add(1)
			c.log.Error("removing address failed", "addr", a, "err", tcpipErr("remove address", err))
		}
	}
	c.setBound(netip.Addr{})
	c.syncRoutes(false)
}

// alreadyGone reports whether err, from removing an address, says that it
// is gone anyway: not on the NIC, or the NIC itself removed (nicRemoved).
func (c *Client) alreadyGone(err tcpip.Error) bool {
	switch err.(type) {
	case *tcpip.ErrBadLocalAddress:
		return true
	case *tcpip.ErrUnknownNICID:
		return c.nicGone.Load()
	}
	return false
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
	if c.hasAddress(addr) {
		return
	}
	c.step(func(now time.Time) {
		if c.bound != addr {
			return
		}
		c.reclaims.Add(1)
		c.log.Warn("our address was removed from the NIC by someone else; adding it back", "addr", addr)
		_ = c.eng.Reannounce(now)
	})
}

func (c *Client) hasAddress(a netip.Addr) bool {
	want := tcpip.AddrFrom4(a.As4())
	for _, pa := range c.s.AllAddresses()[c.nic] {
		if pa.AddressWithPrefix.Address == want {
			return true
		}
	}
	return false
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
