package stack

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// sendDirect sends frame, an IPv4 packet with a link-local source or
// destination that netstack addressed to a gateway, straight to its
// destination instead: RFC 3927 §2.6.2 "the host MUST ARP for the
// destination address and then send its datagram with an IPv4 Link-Local
// source address directly to its destination on the same physical link.
// The host MUST NOT send the packet to any router for forwarding" (R28).
//
// It is called on netstack's send path, so the work is done later, from a
// clock callback; so is the send after resolution, which gVisor reports
// with its neighbour entry locked.
func (c *Client) sendDirect(frame []byte) {
	c.clock.AfterFunc(0, func() { c.resolveDirect(frame) })
}

func (c *Client) resolveDirect(frame []byte) {
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	err := c.s.GetLinkAddress(c.nic, ip.DestinationAddress(), ip.SourceAddress(), ipv4.ProtocolNumber, func(r gvstack.LinkResolutionResult) {
		if r.Err != nil {
			c.directDrops.Add(1)
			return
		}
		c.clock.AfterFunc(0, func() { c.writeDirect(frame, r.LinkAddress) })
	})
	if err != nil {
		if _, pending := err.(*tcpip.ErrWouldBlock); !pending {
			c.directDrops.Add(1)
		}
	}
}

func (c *Client) writeDirect(frame []byte, mac tcpip.LinkAddress) {
	copy(frame[:header.EthernetAddressSize], mac)
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	if n, err := c.shim.Endpoint.WritePackets(l); err != nil || n == 0 {
		c.directDrops.Add(1)
	}
	pkt.DecRef()
}
