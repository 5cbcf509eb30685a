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

// routableLocked returns the first routable (non-link-local, unicast) IPv4
// address on the client's NIC, in the stack's order of addresses sorted for
// stability.
func (c *Client) routableLocked() netip.Addr {
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

// syncRoutesLocked makes the route table say what the package doc says:
// one 169.254.0.0/16 route of ours (link-local source while bound; the
// routable address as source in Route mode), and routable source hints on
// the NIC's other routes while both kinds of address are present.
//
// A closed client leaves nothing behind: no route of ours, no hint.
func (c *Client) syncRoutesLocked() {
	var routable netip.Addr
	if !c.closed {
		routable = c.routableLocked()
	}
	c.s.RemoveRoutes(func(r tcpip.Route) bool { return r.Destination == llSubnet && r.NIC == c.nic })
	switch {
	case c.route && routable.IsValid():
		c.s.AddRoute(tcpip.Route{Destination: llSubnet, NIC: c.nic, SourceHint: tcpip.AddrFrom4(routable.As4())})
	case c.bound.IsValid():
		c.s.AddRoute(tcpip.Route{Destination: llSubnet, NIC: c.nic, SourceHint: tcpip.AddrFrom4(c.bound.As4())})
	}
	var hint tcpip.Address // zero: the hints we filled in go back to empty
	if routable.IsValid() && c.bound.IsValid() {
		hint = tcpip.AddrFrom4(routable.As4())
	}
	if hint == (tcpip.Address{}) && len(c.hinted) == 0 {
		return
	}
	// A hint we filled in earlier counts as empty: the routable address
	// may have changed or gone since. Hints the application set are never
	// touched.
	hinted := make(map[hintKey]tcpip.Address)
	table := c.s.GetRouteTable()
	changed := false
	for i, r := range table {
		if r.NIC != c.nic || r.Destination == llSubnet || r.Destination.ID().Len() != 4 {
			continue
		}
		k := hintKey{dst: r.Destination, gw: r.Gateway}
		if ours, ok := c.hinted[k]; !(ok && r.SourceHint == ours) && r.SourceHint != (tcpip.Address{}) {
			continue
		}
		if hint != (tcpip.Address{}) {
			hinted[k] = hint
		}
		if r.SourceHint != hint {
			table[i].SourceHint = hint
			changed = true
		}
	}
	c.hinted = hinted
	if changed {
		c.s.SetRouteTable(table)
	}
}

// hintKey identifies a route whose empty SourceHint the client filled in.
type hintKey struct {
	dst tcpip.Subnet
	gw  tcpip.Address
}
