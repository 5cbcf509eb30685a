package dhcptest

import (
	"encoding/binary"
	"net/netip"

	"github.com/autoip-project/autoip/dhcp"
)

// RequestPayload returns the UDP payload of frame, an Ethernet frame, if it
// is an unfragmented IPv4/UDP datagram to port 67 (a client's message).
func RequestPayload(frame []byte) ([]byte, bool) {
	const eth = 14
	if len(frame) < eth+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return nil, false
	}
	ip := frame[eth:]
	ihl := int(ip[0]&0xf) * 4
	if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 17 || len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return nil, false
	}
	udp := ip[ihl:]
	n := int(binary.BigEndian.Uint16(udp[4:6]))
	if binary.BigEndian.Uint16(udp[2:4]) != 67 || n < 8 || n > len(udp) {
		return nil, false
	}
	return udp[8:n], true
}

// ReplyFrame appends to b an Ethernet frame carrying m from serverIP:67 to
// 255.255.255.255:68, link-layer broadcast from serverHW (no UDP checksum,
// which IPv4 allows).
func ReplyFrame(b []byte, serverHW [6]byte, serverIP netip.Addr, m dhcp.Message) []byte {
	payload := m.Append(nil)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, serverHW[:]...)
	b = append(b, 0x08, 0x00)
	ipStart := len(b)
	total := 20 + 8 + len(payload)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0, 0, 64, 17, 0, 0)
	b = append(b, serverIP.AsSlice()...)
	b = append(b, 255, 255, 255, 255)
	var sum uint32
	for i := ipStart; i < ipStart+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[ipStart+10:], ^uint16(sum))
	b = binary.BigEndian.AppendUint16(b, 67)
	b = binary.BigEndian.AppendUint16(b, 68)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0)
	return append(b, payload...)
}
