// Package stack runs the AutoIP engine (package autoip) on a gVisor netstack
// NIC.
//
// The pieces, outermost first:
//
//		gVisor NIC -> Shim -> ethernet.New(link) -> link (TAP, channel, ...)
//
//	  - Shim is a link endpoint that wraps the Ethernet layer (the way gVisor's
//	    sniffer wraps a link). It hands every inbound ARP frame to the engine
//	    before netstack sees it and drops the frames the engine calls
//	    conflicting, looped back or impossible, so they never reach netstack's
//	    neighbour cache. It rewrites every outgoing ARP whose sender IP is
//	    link-local to link-layer broadcast, netstack's own replies and NUD
//	    probes included (RFC 3927 §2.5, R14). It sends the engine's probes and
//	    announcements underneath netstack.
//	  - Client owns one autoip.Engine and performs its outputs on the stack:
//	    the claimed address is added as an extra address on the NIC (an
//	    alias, R13) only once probing succeeded (R10), with an on-link
//	    169.254.0.0/16 route; it is removed at once on loss (R18). Timers come
//	    from the stack's tcpip.Clock, so a deterministic clock (DetClock)
//	    makes the whole stack deterministic.
//	  - The Client also runs RFC 5227 conflict detection for every other
//	    address it configures (AddAddress, ClientConfig.Static) and, with
//	    ClientConfig.DHCP, a DHCP client (package dhcp) whose lease goes
//	    through the same detection, with link-local as its fallback. See
//	    addresses.go and DHCPConfig.
//	  - Stack builds a gVisor stack with one Ethernet NIC, a Shim and a
//	    Client: the convenience for programs that do not have a stack yet.
//	    Attach is for programs that do (wireguard-go or tailscale netstacks
//	    with an extra Ethernet NIC).
//
// # Facts about gVisor this package relies on
//
// gVisor's own IPv4 duplicate address detection stays disabled (the default
// of arp.NewProtocol): it misses simultaneous probes and announcements and
// never defends. netstack answers ARP probes for an assigned address, so
// the defence against probes for a bound address comes for free once the
// Shim makes the answer broadcast. netstack never notices a conflict itself:
// all detection is in the engine.
//
// IPv4 source selection in gVisor is longest-prefix match among primary
// addresses, with a route's SourceHint taking precedence. 169.254.x.x shares
// five leading bits with 172.16.0.0/12, so without hints a link-local
// address would become the source towards 172.16.x.x through a default
// route. While a routable address and a link-local one share the NIC, the
// Client therefore fills the empty SourceHint of every non-link-local route
// through that NIC with the routable address (it never changes a hint the
// application set; the hints it filled in follow the routable address and
// go back to empty when the two stop sharing the NIC), and the
// 169.254.0.0/16 route carries the link-local address as its hint.
package stack
