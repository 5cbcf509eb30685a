package stack

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/autoip-project/autoip/dhcp"
)

// DHCPConfig turns on the DHCP client of a Client: the NIC asks a DHCP
// server for an address first and falls back to link-local (the QNX
// dhcp.client -a with lsm-autoip, in userspace).
//
// Coexistence (RFC 3927 §1.9, §2.11; RFC 2563):
//   - link-local starts LinkLocalAfter after Attach if no lease is held by
//     then (or at once with LinkLocalAtOnce);
//   - a lease that arrives later is configured beside the link-local
//     address (the alias model); with Engine.YieldToRoutable (QNX old,
//     autoipd without -f) the link-local address gives way to it;
//   - a lease that is lost (expired, refused) brings link-local back at
//     once, last address first;
//   - a server that answers with option 116 = 0 ("do not auto-configure")
//     holds link-local back while it is heard.
//
// The lease's address, mask and router reach the netstack only after RFC
// 5227 probing found the address free (R32); an address in use is declined.
// DNS servers, domain and other options are reported (AddressEvent.Lease,
// AddressStatus.Lease), not applied.
type DHCPConfig struct {
	// Hostname is sent as option 12 if set.
	Hostname string
	// ClientID is option 61; nil: hardware type 1 and the MAC.
	ClientID []byte
	// InitDelay and Retransmit: see dhcp.Config (defaults 1 s and 4 s).
	InitDelay, Retransmit time.Duration
	// LinkLocalAfter is how long link-local waits for a lease (0:
	// DefaultLinkLocalAfter); LinkLocalAtOnce starts it at once.
	LinkLocalAfter  time.Duration
	LinkLocalAtOnce bool
	// KeepLease keeps the lease at Close (saved, asked for again next
	// time) instead of giving it back with DHCPRELEASE.
	KeepLease bool
	// Store keeps the lease across runs (INIT-REBOOT). Nil: not kept.
	Store LeaseStore
	// Rand draws the client's delays and transaction IDs. Nil: seeded
	// from the MAC.
	Rand *rand.Rand
}

// DefaultLinkLocalAfter is how long link-local waits for a DHCP lease.
const DefaultLinkLocalAfter = 10 * time.Second

// LeaseStore keeps a DHCP lease across runs.
type LeaseStore interface {
	LoadLease() (dhcp.Lease, error)
	SaveLease(dhcp.Lease) error
}

// ErrNoLease is what a LeaseStore returns when it holds no lease.
var ErrNoLease = errors.New("no saved lease")

// newDHCP builds the DHCP client at Attach.
func (c *Client) newDHCP(cfg *DHCPConfig, now time.Time) error {
	var saved dhcp.Lease
	if cfg.Store != nil {
		l, err := cfg.Store.LoadLease()
		switch {
		case errors.Is(err, ErrNoLease):
		case err != nil:
			c.log.Warn("saved DHCP lease unusable; discovering afresh", "err", err)
		default:
			saved = l
		}
	}
	d, err := dhcp.NewClient(dhcp.Config{
		HW: c.hw, ClientID: cfg.ClientID, Hostname: cfg.Hostname, Saved: saved,
		InitDelay: cfg.InitDelay, Retransmit: cfg.Retransmit, AutoConfigure: true, Rand: cfg.Rand,
	})
	if err != nil {
		return err
	}
	if cfg.LinkLocalAfter < 0 {
		return errors.New("DHCPConfig.LinkLocalAfter is negative")
	}
	c.dhcp, c.dhcpCfg = d, cfg
	c.llReleased = cfg.LinkLocalAtOnce
	if !c.llReleased {
		after := cfg.LinkLocalAfter
		if after == 0 {
			after = DefaultLinkLocalAfter
		}
		c.llReleaseAt = now.Add(after)
	}
	c.shim.dhcpOn.Store(true)
	return nil
}

// handleDHCP is the Shim's hook for a datagram to port 68.
func (c *Client) handleDHCP(payload []byte, srcHW [6]byte) {
	m, err := dhcp.Decode(payload)
	if err != nil {
		c.dhcpBad.Add(1)
		c.log.Debug("DHCP message ignored", "err", err)
		return
	}
	c.step(func(now time.Time) {
		if c.dhcp != nil {
			c.dhcp.HandleMessage(now, m, srcHW)
		}
	})
}

// drainDHCPLocked turns the DHCP client's outputs into jobs and managed
// addresses.
func (c *Client) drainDHCPLocked(now time.Time) {
	if c.dhcp == nil {
		return
	}
	c.dhcpOut = c.dhcp.AppendOutputs(c.dhcpOut[:0])
	for _, o := range c.dhcpOut {
		switch o.Kind {
		case dhcp.OutSend:
			c.queue = append(c.queue, job{kind: jobDHCPSend, msg: o.Message, to4: o.To, toHW: o.ToHW})
		case dhcp.OutCheck:
			m := c.startManagedLocked(now, o.Lease.Addr, SourceDHCP)
			m.lease = o.Lease
		case dhcp.OutConfigure:
			m := c.findLocked(o.Lease.Addr.Addr())
			if m == nil {
				continue // cannot happen: every lease is checked first (OutCheck)
			}
			m.state, m.lease, m.prefix = AddrConfigured, o.Lease, o.Lease.Addr
			c.queue = append(c.queue, job{kind: jobConfigure, prefix: o.Lease.Addr, source: SourceDHCP, lease: o.Lease})
		case dhcp.OutUnconfigure:
			if m := c.findLocked(o.Lease.Addr.Addr()); m != nil && m.source == SourceDHCP {
				c.dropLocked(m)
			}
			c.queue = append(c.queue, job{kind: jobUnconfigure, prefix: o.Lease.Addr, source: SourceDHCP})
		case dhcp.OutEvent:
			c.dhcpEventLocked(now, o.Event)
		case dhcp.OutSaveLease:
			c.queue = append(c.queue, job{kind: jobSaveLease, lease: o.Lease})
		}
	}
	clear(c.dhcpOut)
}

func (c *Client) dhcpEventLocked(now time.Time, ev dhcp.Event) {
	kind := map[dhcp.EventKind]AddressEventKind{
		dhcp.EventLeaseBound: LeaseBound, dhcp.EventLeaseRenewed: LeaseRenewed, dhcp.EventLeaseLost: LeaseLost,
		dhcp.EventDeclined: LeaseDeclined, dhcp.EventAutoConfigure: AutoConfigure,
	}[ev.Kind]
	switch ev.Kind {
	case dhcp.EventLeaseBound:
		c.llReleaseAt = time.Time{} // a lease in time: link-local is not needed
	case dhcp.EventLeaseLost:
		if ev.Reason != "stopped" && ev.Reason != "released" {
			c.llReleased = true // the fallback comes back at once
			c.llReleaseAt = time.Time{}
		}
	}
	c.addrEventLocked(AddressEvent{Kind: kind, Time: ev.Time, Prefix: ev.Lease.Addr, Source: SourceDHCP, Reason: ev.Reason, Lease: ev.Lease, Allowed: ev.Allowed})
}

// llHoldLocked says why link-local is held back by DHCP, if it is.
func (c *Client) llHoldLocked(now time.Time) string {
	if c.dhcp == nil {
		return ""
	}
	if !c.llReleaseAt.IsZero() && !now.Before(c.llReleaseAt) {
		c.llReleased, c.llReleaseAt = true, time.Time{}
	}
	switch {
	case !c.dhcp.AutoConfigureAllowed():
		return "a DHCP server says do not auto-configure (RFC 2563)"
	case !c.llReleased && c.dhcp.State().HasLease():
		return "DHCP lease held"
	case !c.llReleased:
		return "waiting for a DHCP lease"
	}
	return ""
}
