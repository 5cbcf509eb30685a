package stack

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// resetConnections aborts the stack's TCP connections whose local address
// is a, which makes netstack send each peer a RST, before the address is
// given up: RFC 3927 §2.5 "hosts SHOULD actively attempt to reset any
// existing connections using that address" (R30). Listeners are left
// alone. A connection still in its handshake is closed without a RST (its
// peer may believe it open): the Shim's tombstone answers the peer's next
// segment with one.
func (c *Client) resetConnections(a netip.Addr) {
	local := tcpip.AddrFrom4(a.As4())
	for _, ep := range c.s.RegisteredEndpoints() {
		withInfo, ok := ep.(interface{ Info() tcpip.EndpointInfo })
		if !ok {
			continue
		}
		info, ok := withInfo.Info().(*gvstack.TransportEndpointInfo)
		if !ok || info.TransProto != tcp.ProtocolNumber || info.NetProto != ipv4.ProtocolNumber ||
			info.ID.LocalAddress != local || info.ID.RemoteAddress.BitLen() == 0 {
			continue
		}
		ep.Abort()
		c.resets.Add(1)
	}
}
