package stack

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// The DHCP client sends and receives whole Ethernet frames under netstack,
// as the ARP engine does: it must speak before the NIC has an address
// (source 0.0.0.0, RFC 2131 §4.1), and netstack would answer a server's
// reply to port 68 with an ICMP port unreachable.

const (
	dhcpClientPort = 68
	dhcpServerPort = 67
)

// dhcpFrame appends an Ethernet/IPv4/UDP frame carrying payload from
// src:68 to dst:67 to b.
func dhcpFrame(b []byte, srcHW, dstHW [6]byte, src, dst netip.Addr, payload []byte) []byte {
	return udpFrame(b, srcHW, dstHW, src, dst, dhcpClientPort, dhcpServerPort, payload)
}

// udpFrame appends an Ethernet/IPv4/UDP frame to b.
func udpFrame(b []byte, srcHW, dstHW [6]byte, src, dst netip.Addr, srcPort, dstPort uint16, payload []byte) []byte {
	start := len(b)
	total := header.EthernetMinimumSize + header.IPv4MinimumSize + header.UDPMinimumSize + len(payload)
	b = append(b, make([]byte, total)...)
	f := b[start:]
	eth := header.Ethernet(f)
	eth.Encode(&header.EthernetFields{SrcAddr: tcpip.LinkAddress(srcHW[:]), DstAddr: tcpip.LinkAddress(dstHW[:]), Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	s, d := tcpip.AddrFrom4(src.As4()), tcpip.AddrFrom4(dst.As4())
	ipLen := uint16(header.IPv4MinimumSize + header.UDPMinimumSize + len(payload))
	ip.Encode(&header.IPv4Fields{TotalLength: ipLen, TTL: 64, Protocol: uint8(header.UDPProtocolNumber), SrcAddr: s, DstAddr: d})
	ip.SetChecksum(^ip.CalculateChecksum())
	udp := header.UDP(ip[header.IPv4MinimumSize:])
	udpLen := uint16(header.UDPMinimumSize + len(payload))
	udp.Encode(&header.UDPFields{SrcPort: srcPort, DstPort: dstPort, Length: udpLen})
	copy(udp[header.UDPMinimumSize:], payload)
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, udpLen)
	sum = checksum.Checksum(payload, sum)
	if x := ^udp.CalculateChecksum(sum); x != 0 {
		udp.SetChecksum(x)
	} else {
		udp.SetChecksum(0xffff)
	}
	return b
}

// dhcpReply returns the UDP payload of frame (Ethernet header included) if
// it is an unfragmented IPv4/UDP datagram to port 68 with a valid checksum.
func dhcpReply(frame []byte) ([]byte, bool) {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.UDPMinimumSize ||
		binary.BigEndian.Uint16(frame[12:14]) != uint16(header.IPv4ProtocolNumber) {
		return nil, false
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !isDHCPToClient(ip) || !ip.IsValid(len(ip)) {
		return nil, false
	}
	udp := header.UDP(ip.Payload())
	if len(udp) < header.UDPMinimumSize || int(udp.Length()) > len(udp) || udp.Length() < header.UDPMinimumSize {
		return nil, false
	}
	payload := udp[header.UDPMinimumSize:udp.Length()]
	if udp.Checksum() != 0 && !udp.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(payload, 0)) {
		return nil, false
	}
	return payload, true
}

// isDHCPToClient reports whether b, an IPv4 packet, is a UDP datagram to
// port 68 that is not a fragment: the cheap test the Shim makes on every
// inbound IPv4 packet while DHCP runs.
func isDHCPToClient(b []byte) bool {
	if len(b) < header.IPv4MinimumSize+header.UDPMinimumSize || b[0]>>4 != 4 || b[9] != uint8(header.UDPProtocolNumber) {
		return false
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < header.IPv4MinimumSize || len(b) < ihl+header.UDPMinimumSize {
		return false
	}
	if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 { // more fragments or an offset
		return false
	}
	return binary.BigEndian.Uint16(b[ihl+2:ihl+4]) == dhcpClientPort
}
