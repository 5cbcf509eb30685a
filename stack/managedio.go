package stack

import (
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
)

// The performer's side of managed addresses: what configuring one does to
// the netstack, and the DHCP client's frames.

// configureManaged puts j's address on the NIC (unless it is there) with an
// on-link route for its subnet and, for a DHCP lease with a router, a
// default route through it with the lease's address as source.
func (c *Client) configureManaged(j *job) {
	a := j.prefix.Addr()
	c.shim.dead.drop(a)
	if !c.hasAddress(a) {
		c.setAdding(a) // the ARP fast path must pass requests for it from the moment it is added
		err := c.s.AddProtocolAddress(c.nic, tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: j.prefix.Bits()},
		}, gvstack.AddressProperties{PEB: gvstack.FirstPrimaryEndpoint})
		c.setAdding(netip.Addr{})
		if err != nil {
			c.stackErr.Add(1)
			c.log.Error("adding address failed; it is not configured", "addr", j.prefix, "source", j.source.String(), "err", tcpipErr("add address", err))
			return
		}
	}
	sub := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: j.prefix.Bits()}.Subnet()
	routes := []tcpip.Route{{Destination: sub, NIC: c.nic}}
	if j.source == SourceDHCP && len(j.lease.Routers) > 0 {
		routes = append(routes, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(j.lease.Routers[0].As4()), NIC: c.nic, SourceHint: tcpip.AddrFrom4(a.As4())})
	}
	c.setOwnRoutes(a, routes)
	c.routableChanged()
}

// unconfigureManaged resets p's TCP connections (unless KeepConnections)
// and takes it and its routes off the NIC.
func (c *Client) unconfigureManaged(p netip.Prefix) {
	a := p.Addr()
	if !c.keepConns {
		c.resetConnections(a)
		c.tombstone(a)
	}
	if err := c.s.RemoveAddress(c.nic, tcpip.AddrFrom4(a.As4())); err != nil {
		if !c.alreadyGone(err) {
			c.stackErr.Add(1)
			c.log.Error("removing address failed", "addr", p, "err", tcpipErr("remove address", err))
		}
	}
	c.refreshLocal()
	c.setOwnRoutes(a, nil)
	c.routableChanged()
}

// setOwnRoutes makes the routes made for a exactly want, one route at a
// time.
func (c *Client) setOwnRoutes(a netip.Addr, want []tcpip.Route) {
	if c.ownRoutes == nil {
		c.ownRoutes = make(map[netip.Addr][]tcpip.Route)
	}
	have := c.ownRoutes[a]
	for _, r := range have {
		if !slices.ContainsFunc(want, func(x tcpip.Route) bool { return sameRoute(x, r) }) {
			c.removeOneRoute(r)
		}
	}
	for _, r := range want {
		if !slices.ContainsFunc(have, func(x tcpip.Route) bool { return sameRoute(x, r) }) {
			c.s.AddRoute(r)
		}
	}
	if len(want) == 0 {
		delete(c.ownRoutes, a)
	} else {
		c.ownRoutes[a] = want
	}
}

// routableChanged tells the engine (coexistence rules) and the route
// syncing that the NIC's routable addresses changed.
func (c *Client) routableChanged() {
	routable := c.routable()
	c.step(func(now time.Time) {
		c.eng.SetRoutable(now, routable.IsValid() || c.pendingRoutableLocked())
		c.queue = append(c.queue, job{kind: jobRoutes})
	})
}

// sendDHCP sends the DHCP client's message in a frame of its own.
func (c *Client) sendDHCP(j *job) {
	src := netip.IPv4Unspecified()
	if j.msg.CIAddr.IsValid() && !j.msg.CIAddr.IsUnspecified() {
		src = j.msg.CIAddr
	}
	frame := dhcpFrame(nil, c.hw, j.toHW, src, j.to4, j.msg.Append(nil))
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	if n, err := c.shim.Endpoint.WritePackets(l); err != nil || n == 0 {
		c.log.Debug("DHCP message not sent", "type", j.msg.Type.String(), "err", err)
	}
	pkt.DecRef()
}

func (c *Client) logAddrEvent(ev AddressEvent) {
	args := []any{"addr", ev.Prefix, "source", ev.Source.String()}
	switch ev.Kind {
	case AddressConflict, AddressDefended:
		args = append(args, "phase", ev.Phase.String(), "from", ev.From.String())
		if ev.Source == SourceDHCP {
			c.log.Warn(ev.Kind.String(), args...)
		} else {
			// The operator said this address is ours: say it loudly.
			what := ": another host uses an address configured here; it is defended"
			if ev.Phase == acd.PhaseProbing {
				what = ": another host uses this address; it was probed and is not configured"
			}
			c.log.Error(ev.Kind.String()+what, args...)
		}
	case LeaseLost, LeaseDeclined:
		c.log.Warn(ev.Kind.String(), append(args, "reason", ev.Reason)...)
	case AutoConfigure:
		c.log.Info(ev.Kind.String(), "link_local_allowed", ev.Allowed)
	case LeaseBound, LeaseRenewed:
		c.log.Info(ev.Kind.String(), append(args, "server", ev.Lease.Server, "lease", ev.Lease.Duration, "routers", ev.Lease.Routers, "dns", ev.Lease.DNS)...)
	default:
		c.log.Info(ev.Kind.String(), args...)
	}
}
