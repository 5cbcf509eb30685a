package stack

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
)

var llSubnet = func() tcpip.Subnet {
	s, err := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{169, 254, 0, 0}), tcpip.MaskFromBytes([]byte{255, 255, 0, 0}))
	if err != nil {
		panic(err)
	}
	return s
}()

// routeState is what the client put in the route table. The performing
// goroutine owns it.
type routeState struct {
	ll     tcpip.Route // our 169.254.0.0/16 route, if hasLL
	hasLL  bool
	hinted map[hintKey]tcpip.Address // routes whose empty SourceHint we filled in
}

// hintKey identifies a route whose empty SourceHint the client filled in.
type hintKey struct {
	dst tcpip.Subnet
	gw  tcpip.Address
}

// routable returns the smallest routable (non-link-local, unicast) IPv4
// address on the client's NIC, if any.
func (c *Client) routable() netip.Addr {
	var best netip.Addr
	for _, pa := range c.s.AllAddresses()[c.nic] {
		if pa.Protocol != ipv4.ProtocolNumber {
			continue
		}
		a := netip.AddrFrom4(pa.AddressWithPrefix.Address.As4())
		if !a.IsGlobalUnicast() || autoip.LinkLocalPrefix.Contains(a) {
			continue
		}
		if !best.IsValid() || a.Less(best) {
			best = a
		}
	}
	return best
}

// syncRoutes makes the route table say what the package doc says, by
// adding and removing single routes, never rewriting the table, and
// touching only routes the client made or whose empty source hint it
// filled in:
//
//   - one on-link 169.254.0.0/16 route for the NIC from Attach to Close,
//     so that link-local peers are reached directly by ARP whatever
//     addresses the NIC has and even while probing (RFC 3927 §2.6.2, R27).
//     Its source hint is the link-local address once bound (the routable
//     address in Route mode, R22), else the routable address, if any.
//   - while a routable and a link-local address share the NIC, the NIC's
//     other IPv4 routes without a source hint get the routable address as
//     hint, so that off-link traffic never takes the link-local source.
//
// With verify, routes of ours that are no longer in the table (the
// application replaced it) are added again.
func (c *Client) syncRoutes(verify bool) {
	c.mu.Lock()
	closed, bound := c.closed, c.bound
	c.mu.Unlock()
	var routable netip.Addr
	if !closed {
		routable = c.routable()
	}
	r := &c.routes
	if verify && r.hasLL && !c.inRouteTable(r.ll) {
		r.hasLL = false
	}
	want := tcpip.Route{Destination: llSubnet, NIC: c.nic}
	switch {
	case c.route && routable.IsValid():
		want.SourceHint = tcpip.AddrFrom4(routable.As4())
	case bound.IsValid():
		want.SourceHint = tcpip.AddrFrom4(bound.As4())
	case routable.IsValid():
		want.SourceHint = tcpip.AddrFrom4(routable.As4())
	}
	switch {
	case closed:
		if r.hasLL {
			c.removeOneRoute(r.ll)
			r.hasLL = false
		}
	case !r.hasLL:
		c.s.AddRoute(want)
		r.ll, r.hasLL = want, true
	case !sameRoute(r.ll, want):
		// The new one first: 169.254/16 is never without a route.
		c.s.AddRoute(want)
		c.removeOneRoute(r.ll)
		r.ll = want
	}
	var hint tcpip.Address // zero: the hints we filled in go back to empty
	if !closed && routable.IsValid() && bound.IsValid() {
		hint = tcpip.AddrFrom4(routable.As4())
	}
	c.syncHints(hint)
}

// syncHints sets the empty (or filled in by us) source hints of the NIC's
// other IPv4 routes to hint.
func (c *Client) syncHints(hint tcpip.Address) {
	r := &c.routes
	if hint == (tcpip.Address{}) && len(r.hinted) == 0 {
		return
	}
	hinted := make(map[hintKey]tcpip.Address)
	for _, rt := range c.s.GetRouteTable() {
		if rt.NIC != c.nic || rt.Destination == llSubnet || rt.Destination.ID().Len() != 4 {
			continue
		}
		k := hintKey{dst: rt.Destination, gw: rt.Gateway}
		if ours, ok := r.hinted[k]; !(ok && rt.SourceHint == ours) && rt.SourceHint != (tcpip.Address{}) {
			continue // a hint the application set: never touched
		}
		if hint != (tcpip.Address{}) {
			hinted[k] = hint
		}
		if rt.SourceHint == hint {
			continue
		}
		nw := rt
		nw.SourceHint = hint
		c.s.AddRoute(nw)
		c.removeOneRoute(rt)
	}
	r.hinted = hinted
}

// inRouteTable reports whether the stack's route table holds rt.
func (c *Client) inRouteTable(rt tcpip.Route) bool {
	for _, x := range c.s.GetRouteTable() {
		if sameRoute(x, rt) {
			return true
		}
	}
	return false
}

// removeOneRoute removes one route equal to rt: an identical route the
// application added itself stays.
func (c *Client) removeOneRoute(rt tcpip.Route) {
	done := false
	c.s.RemoveRoutes(func(x tcpip.Route) bool {
		if done || !sameRoute(x, rt) {
			return false
		}
		done = true
		return true
	})
}

// sameRoute reports whether a and b are the same route in every field that
// routing uses (tcpip.Route.Equal compares only destination and NIC).
func sameRoute(a, b tcpip.Route) bool {
	return a.Destination == b.Destination && a.Gateway == b.Gateway && a.NIC == b.NIC &&
		a.SourceHint == b.SourceHint && a.MTU == b.MTU
}
