package stack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/dhcp"
)

// Addresses other than the link-local one go through RFC 5227 conflict
// detection too (R31): each has an acd.Detector of its own on the Shim,
// fed the same decoded frames as the engine. It is probed before it is
// configured, announced, then watched. What a conflict does depends on
// where the address came from (RFC 5227 §2.4):
//
//   - static and alias addresses are defended for ever (option c): the
//     operator said this address is ours. Every conflict is reported loudly
//     (an error in the log, an AddressEvent); at most one defence per
//     DEFEND_INTERVAL. A conflict while probing leaves it unconfigured, in
//     state AddrConflict, until it is removed or added again.
//   - a DHCP lease is given up at once (option a): the client declines it
//     (DHCPDECLINE) and asks for another.

// AddressSource says where an address came from.
type AddressSource uint8

// Address sources.
const (
	SourceStatic AddressSource = iota + 1 // given at start (autoipd -addr)
	SourceAlias                           // added at run time (autoipd -alias)
	SourceDHCP                            // leased by the DHCP client
)

// String returns the source's name.
func (s AddressSource) String() string {
	switch s {
	case SourceStatic:
		return "static"
	case SourceAlias:
		return "alias"
	case SourceDHCP:
		return "dhcp"
	}
	return "source(?)"
}

// AddressState is where an address is in conflict detection.
type AddressState uint8

// Address states.
const (
	AddrProbing    AddressState = iota + 1 // being probed; not configured yet
	AddrConfigured                         // on the NIC, watched and defended
	AddrConflict                           // another host holds it; not configured
	AddrLinkDown                           // the link is down; probed again when it comes up
)

// String returns the state's name.
func (s AddressState) String() string {
	switch s {
	case AddrProbing:
		return "probing"
	case AddrConfigured:
		return "configured"
	case AddrConflict:
		return "conflict"
	case AddrLinkDown:
		return "link-down"
	}
	return "state(?)"
}

// AddressEventKind names an AddressEvent. String gives the names autoipd's
// hooks and logs use: AddressProbe is ADDR_PROBE, AddressConfigured
// ADDR_BOUND, AddressConflict ADDR_CONFLICT, AddressDefended ADDR_DEFEND,
// AddressRemoved ADDR_REMOVED, the lease events LEASE_BOUND, LEASE_RENEWED,
// LEASE_LOST, LEASE_DECLINED, and AutoConfigure AUTOCONFIGURE.
type AddressEventKind uint8

// Address event kinds.
const (
	AddressProbe      AddressEventKind = iota + 1 // probing began
	AddressConfigured                             // probed without conflict; on the NIC
	AddressConflict                               // another host uses it (Phase says when)
	AddressDefended                               // a conflict on a configured address, answered with an announcement
	AddressRemoved                                // taken off the NIC (RemoveAddress, Close)
	LeaseBound                                    // a DHCP lease was configured
	LeaseRenewed                                  // the lease was extended
	LeaseLost                                     // the lease ended (Reason)
	LeaseDeclined                                 // an offered address was in use: declined
	AutoConfigure                                 // RFC 2563: Allowed says whether link-local may run
)

// String returns the event's name as autoipd's hooks see it.
func (k AddressEventKind) String() string {
	switch k {
	case AddressProbe:
		return "ADDR_PROBE"
	case AddressConfigured:
		return "ADDR_BOUND"
	case AddressConflict:
		return "ADDR_CONFLICT"
	case AddressDefended:
		return "ADDR_DEFEND"
	case AddressRemoved:
		return "ADDR_REMOVED"
	case LeaseBound:
		return "LEASE_BOUND"
	case LeaseRenewed:
		return "LEASE_RENEWED"
	case LeaseLost:
		return "LEASE_LOST"
	case LeaseDeclined:
		return "LEASE_DECLINED"
	case AutoConfigure:
		return "AUTOCONFIGURE"
	}
	return "EVENT(?)"
}

// AddressEvent reports something that happened to an address other than
// the link-local one, or to the DHCP lease.
type AddressEvent struct {
	Kind    AddressEventKind
	Time    time.Time
	Prefix  netip.Prefix
	Source  AddressSource
	Phase   acd.Phase  // AddressConflict: probing or bound
	From    acd.MAC    // AddressConflict, AddressDefended: the other host
	Reason  string     // LeaseLost, LeaseDeclined
	Lease   dhcp.Lease // Lease* events
	Allowed bool       // AutoConfigure
}

// AddressStatus describes one address the client manages.
type AddressStatus struct {
	Prefix       netip.Prefix
	Source       AddressSource
	State        AddressState
	Conflicts    int
	LastConflict *AddressEvent
	Lease        *dhcp.Lease // SourceDHCP
}

// Errors of AddAddress and RemoveAddress.
var (
	ErrAddressExists  = errors.New("address already managed")
	ErrNoSuchAddress  = errors.New("address not managed by this client")
	ErrBadAddress     = errors.New("not a usable IPv4 unicast prefix")
	ErrDHCPManaged    = errors.New("address belongs to the DHCP lease")
	ErrLinkLocalOwned = errors.New("link-local addresses are the engine's")
)

// managed is one address under conflict detection. Its fields are guarded
// by the client's lock.
type managed struct {
	prefix    netip.Prefix
	source    AddressSource
	det       *acd.Detector
	state     AddressState
	conflicts int
	last      *AddressEvent
	lease     dhcp.Lease
}

// AddAddress puts p on the NIC once RFC 5227 probing found no other host
// using it (R31), then announces, watches and defends it. It returns at
// once; AddressEvents and Addresses report progress. src is SourceStatic or
// SourceAlias. An address in 169.254.0.0/16 is refused: link-local
// addresses are the engine's.
func (c *Client) AddAddress(p netip.Prefix, src AddressSource) error {
	if err := checkManageable(p); err != nil {
		return fmt.Errorf("add address %v: %w", p, err)
	}
	if src != SourceStatic && src != SourceAlias {
		return fmt.Errorf("add address %v: source %v cannot be added by hand", p, src)
	}
	err := errNotStepped
	routable := c.routable()
	c.step(func(now time.Time) {
		defer func() { c.eng.SetRoutable(now, routable.IsValid() || c.pendingRoutableLocked()) }()
		if m := c.findLocked(p.Addr()); m != nil {
			if m.state != AddrConflict || m.source == SourceDHCP {
				err = fmt.Errorf("add address %v: %w (%s, %s)", p, ErrAddressExists, m.source, m.state)
				return
			}
			c.dropLocked(m) // tried again after a conflict
		}
		err = nil
		c.startManagedLocked(now, p, src)
	})
	return c.orClosed(err)
}

// RemoveAddress takes a static or alias address off the NIC (resetting its
// TCP connections unless KeepConnections) and stops watching it.
func (c *Client) RemoveAddress(a netip.Addr) error {
	err := errNotStepped
	c.step(func(now time.Time) {
		defer func() {
			if err == nil && !c.closed {
				c.queue = append(c.queue, job{kind: jobRoutable})
			}
		}()
		m := c.findLocked(a)
		switch {
		case m == nil:
			err = fmt.Errorf("remove address %v: %w", a, ErrNoSuchAddress)
		case m.source == SourceDHCP:
			err = fmt.Errorf("remove address %v: %w", a, ErrDHCPManaged)
		default:
			err = nil
			c.removeManagedLocked(now, m, AddressRemoved, "")
		}
	})
	return c.orClosed(err)
}

// Addresses returns the addresses the client manages besides the
// link-local one, in the order they were added.
func (c *Client) Addresses() []AddressStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AddressStatus, 0, len(c.managed))
	for _, m := range c.managed {
		st := AddressStatus{Prefix: m.prefix, Source: m.source, State: m.state, Conflicts: m.conflicts}
		if m.last != nil {
			ev := *m.last
			st.LastConflict = &ev
		}
		if m.source == SourceDHCP {
			l := m.lease
			st.Lease = &l
		}
		out = append(out, st)
	}
	return out
}

// checkManageable says why p cannot be a static or alias address, if so.
func checkManageable(p netip.Prefix) error {
	if err := CheckHostPrefix(p); err != nil {
		return err
	}
	if autoip.LinkLocalPrefix.Contains(p.Addr()) {
		return ErrLinkLocalOwned
	}
	return nil
}

// CheckHostPrefix reports why p cannot be a host's IPv4 address on its
// subnet, wrapping ErrBadAddress: not IPv4 unicast (global, private or
// link-local; loopback, multicast and broadcast are not), a zero prefix length,
// or, for subnets of more than two addresses, the subnet's network or
// broadcast address (10.0.0.0/24 and 10.0.0.255/24 name the subnet and all
// its hosts, not one host; /31 and /32 have neither, RFC 3021).
func CheckHostPrefix(p netip.Prefix) error {
	a := p.Addr()
	if !p.IsValid() || !a.Is4() || !(a.IsGlobalUnicast() || a.IsLinkLocalUnicast()) || p.Bits() == 0 {
		return ErrBadAddress
	}
	if p.Bits() <= 30 {
		b := a.As4()
		host := binary.BigEndian.Uint32(b[:]) &^ (^uint32(0) << (32 - p.Bits()))
		switch host {
		case 0:
			return fmt.Errorf("%v is the network address of %v: %w", p.Addr(), p.Masked(), ErrBadAddress)
		case ^uint32(0) >> p.Bits():
			return fmt.Errorf("%v is the broadcast address of %v: %w", p.Addr(), p.Masked(), ErrBadAddress)
		}
	}
	return nil
}

func (c *Client) findLocked(a netip.Addr) *managed {
	for _, m := range c.managed {
		if m.prefix.Addr() == a {
			return m
		}
	}
	return nil
}

// startManagedLocked begins probing p.
func (c *Client) startManagedLocked(now time.Time, p netip.Prefix, src AddressSource) *managed {
	policy := acd.DefendForever
	if src == SourceDHCP {
		policy = acd.Abandon
	}
	det, err := acd.NewDetector(acd.DetectorConfig{HW: c.hw, Timing: c.eng.Timing(), Defend: policy, Rand: c.mrng})
	if err != nil {
		panic(fmt.Sprintf("stack: detector for %v: %v", p, err)) // the engine validated the same configuration
	}
	m := &managed{prefix: p, source: src, det: det, state: AddrProbing}
	c.managed = append(c.managed, m)
	if !c.linkUp {
		m.state = AddrLinkDown
		return m
	}
	if err := det.Start(now, p.Addr(), 0); err != nil {
		panic(fmt.Sprintf("stack: start detector for %v: %v", p, err)) // p was validated
	}
	return m
}

// removeManagedLocked stops watching m and queues its removal.
func (c *Client) removeManagedLocked(now time.Time, m *managed, kind AddressEventKind, reason string) {
	wasConfigured := m.state == AddrConfigured
	c.dropLocked(m)
	if wasConfigured {
		c.queue = append(c.queue, job{kind: jobUnconfigure, prefix: m.prefix, source: m.source})
	}
	if kind != 0 {
		c.addrEventLocked(AddressEvent{Kind: kind, Time: now, Prefix: m.prefix, Source: m.source, Reason: reason})
	}
}

func (c *Client) dropLocked(m *managed) {
	m.det.Stop()
	c.managed = slices.DeleteFunc(c.managed, func(x *managed) bool { return x == m })
}

// stepManagedLocked hands a decoded frame to every managed detector and
// returns the verdict that matters most (a conflict or a drop).
func (c *Client) stepManagedLocked(now time.Time, f acd.Frame, v acd.Verdict) acd.Verdict {
	for _, m := range c.managed {
		mv := m.det.HandleFrame(now, f)
		if mv.IsConflict() || (mv.Drop() && !v.IsConflict()) {
			v = mv
		}
	}
	return v
}

// drainManagedLocked turns the detectors' outputs into jobs.
func (c *Client) drainManagedLocked(now time.Time) {
	for i := 0; i < len(c.managed); i++ {
		m := c.managed[i]
		if !m.det.HasOutputs() {
			continue
		}
		c.dout = m.det.AppendOutputs(c.dout[:0])
		for _, o := range c.dout {
			c.managedOutputLocked(now, m, o)
		}
		clear(c.dout)
	}
}

func (c *Client) managedOutputLocked(now time.Time, m *managed, o acd.Output) {
	switch o.Kind {
	case acd.OutSend:
		c.queue = append(c.queue, job{kind: jobOutput, out: autoip.Output{Kind: autoip.OutSendARP, Frame: o.Frame}, det: m.det})
	case acd.OutProbeStart:
		c.addrEventLocked(AddressEvent{Kind: AddressProbe, Time: now, Prefix: m.prefix, Source: m.source})
	case acd.OutReady:
		if m.source == SourceDHCP {
			c.dhcp.HandleCheck(now, m.prefix.Addr(), false, "")
			if c.dhcp.Lease().Addr.Addr() != m.prefix.Addr() {
				c.dropLocked(m) // the lease ended during its check: nothing to configure
			}
			return // the lease is configured by the DHCP client's OutConfigure
		}
		m.state = AddrConfigured
		c.queue = append(c.queue, job{kind: jobConfigure, prefix: m.prefix, source: m.source})
		c.addrEventLocked(AddressEvent{Kind: AddressConfigured, Time: now, Prefix: m.prefix, Source: m.source})
	case acd.OutConflict:
		m.conflicts++
		ev := AddressEvent{Kind: AddressConflict, Time: now, Prefix: m.prefix, Source: m.source, Phase: o.Phase, From: o.Frame.SenderHW}
		m.last = &ev
		c.addrEventLocked(ev)
		if m.source == SourceDHCP {
			reason := fmt.Sprintf("%v in use by %v", m.prefix.Addr(), o.Frame.SenderHW)
			if o.Phase == acd.PhaseProbing {
				c.dropLocked(m)
				c.dhcp.HandleCheck(now, m.prefix.Addr(), true, reason)
			} else {
				c.dhcp.Conflict(now, reason) // unconfigures through OutUnconfigure
			}
			return
		}
		m.state = AddrConflict // only while probing: DefendForever never gives up
		// It will not be configured: the flag form's yield must not wait
		// for it any more.
		c.queue = append(c.queue, job{kind: jobRoutable})
	case acd.OutDefend, acd.OutDefendSuppressed:
		m.conflicts++
		ev := AddressEvent{Kind: AddressDefended, Time: now, Prefix: m.prefix, Source: m.source, Phase: acd.PhaseBound, From: o.Frame.SenderHW}
		m.last = &ev
		if o.Kind == acd.OutDefend {
			c.addrEventLocked(ev)
		}
	}
}

func (c *Client) addrEventLocked(ev AddressEvent) {
	c.queue = append(c.queue, job{kind: jobAddrEvent, addrEv: ev})
}

// setLinkManagedLocked stops the detectors while the link is down and
// probes every address again when it comes up (R19 for every address).
func (c *Client) setLinkManagedLocked(now time.Time, up bool) {
	for _, m := range slices.Clone(c.managed) {
		if m.source == SourceDHCP {
			continue // the DHCP client gives its lease up and asks again
		}
		if !up {
			if m.state == AddrConfigured {
				c.queue = append(c.queue, job{kind: jobUnconfigure, prefix: m.prefix, source: m.source})
			}
			m.det.Stop()
			m.state = AddrLinkDown
			continue
		}
		if m.state == AddrLinkDown {
			m.state = AddrProbing
			if err := m.det.Start(now, m.prefix.Addr(), 0); err != nil {
				panic(err)
			}
		}
	}
}

// managedDeadlineLocked returns the earliest detector deadline.
func (c *Client) managedDeadlineLocked() (time.Time, bool) {
	var first time.Time
	ok := false
	for _, m := range c.managed {
		if dl, due := m.det.Deadline(); due && (!ok || dl.Before(first)) {
			first, ok = dl, true
		}
	}
	return first, ok
}

// pendingRoutableLocked reports whether a managed address is on its way
// to the NIC: for the flag form's yield, it counts as routable already, so
// link-local does not start probing only to give way a few seconds later.
// One waiting for the link counts too: it is probed the moment the link
// comes up, and link-local must not race it.
func (c *Client) pendingRoutableLocked() bool {
	for _, m := range c.managed {
		if m.state == AddrProbing || m.state == AddrConfigured || m.state == AddrLinkDown {
			return true
		}
	}
	return c.dhcp != nil && c.dhcp.State().HasLease()
}
