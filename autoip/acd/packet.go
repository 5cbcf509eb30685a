package acd

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Op is an ARP operation code (RFC 826).
type Op uint16

// ARP operation codes.
const (
	OpRequest Op = 1
	OpReply   Op = 2
)

// String returns "request", "reply" or "op(N)".
func (o Op) String() string {
	switch o {
	case OpRequest:
		return "request"
	case OpReply:
		return "reply"
	}
	return "op(" + itoa(int(o)) + ")"
}

// PacketLen is the length of an Ethernet/IPv4 ARP body.
const PacketLen = 28

// Wire constants of Ethernet/IPv4 ARP.
const (
	hwTypeEthernet = 1
	protoTypeIPv4  = 0x0800
)

// Decoding errors. They are sentinels (no allocation on the hot path) so that
// callers can count drops by reason with errors.Is.
var (
	ErrTruncated     = errors.New("acd: frame too short")
	ErrNotARP        = errors.New("acd: ethertype is not ARP")
	ErrHardwareType  = errors.New("acd: ARP hardware type is not Ethernet or address length is not 6")
	ErrProtocolType  = errors.New("acd: ARP protocol type is not IPv4 or address length is not 4")
	ErrUnknownOpcode = errors.New("acd: ARP opcode is neither request nor reply")
)

// Packet is a decoded Ethernet/IPv4 ARP body (RFC 826).
type Packet struct {
	Op       Op
	SenderHW MAC
	SenderIP netip.Addr
	TargetHW MAC
	TargetIP netip.Addr
}

// IsProbe reports whether p is an ARP probe (RFC 5227 §2.1.1): a request
// whose sender IP is 0.0.0.0.
func (p Packet) IsProbe() bool {
	return p.Op == OpRequest && p.SenderIP == zeroIPv4
}

// IsAnnouncement reports whether p is an ARP announcement (RFC 5227 §2.3):
// a request whose sender and target IP are the same non-zero address.
func (p Packet) IsAnnouncement() bool {
	return p.Op == OpRequest && p.SenderIP == p.TargetIP && p.SenderIP != zeroIPv4
}

// Kind classifies p by its shape, for logs and counters.
func (p Packet) Kind() PacketKind {
	switch {
	case p.IsProbe():
		return KindProbe
	case p.IsAnnouncement():
		return KindAnnouncement
	case p.Op == OpRequest:
		return KindRequest
	default:
		return KindReply
	}
}

// PacketKind names the shape of an ARP packet.
type PacketKind uint8

// Packet kinds.
const (
	KindProbe PacketKind = iota + 1
	KindAnnouncement
	KindRequest
	KindReply
)

// String returns the kind's name.
func (k PacketKind) String() string {
	switch k {
	case KindProbe:
		return "probe"
	case KindAnnouncement:
		return "announcement"
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	}
	return "kind(" + itoa(int(k)) + ")"
}

var zeroIPv4 = netip.AddrFrom4([4]byte{})

// Probe returns the ARP probe for target sent from hw (RFC 5227 §2.1.1):
// sender IP 0.0.0.0, target hardware address zero.
func Probe(hw MAC, target netip.Addr) Packet {
	return Packet{Op: OpRequest, SenderHW: hw, SenderIP: zeroIPv4, TargetIP: target}
}

// Announcement returns the ARP announcement of addr from hw (RFC 5227 §2.3):
// a request with sender IP and target IP both addr.
func Announcement(hw MAC, addr netip.Addr) Packet {
	return Packet{Op: OpRequest, SenderHW: hw, SenderIP: addr, TargetIP: addr}
}

// AppendBinary appends the 28-byte wire form of p to b. Addresses that are
// not IPv4 are written as 0.0.0.0.
func (p Packet) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, hwTypeEthernet)
	b = binary.BigEndian.AppendUint16(b, protoTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Op))
	b = append(b, p.SenderHW[:]...)
	b = appendIPv4(b, p.SenderIP)
	b = append(b, p.TargetHW[:]...)
	b = appendIPv4(b, p.TargetIP)
	return b
}

// MarshalBinary returns the 28-byte wire form of p.
func (p Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, PacketLen)), nil
}

// UnmarshalBinary decodes an Ethernet/IPv4 ARP body. Bytes after the first
// 28 (Ethernet padding) are ignored. It fails with one of the Err* sentinels
// above; it never allocates.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) < PacketLen {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(b[0:2]) != hwTypeEthernet || b[4] != 6 {
		return ErrHardwareType
	}
	if binary.BigEndian.Uint16(b[2:4]) != protoTypeIPv4 || b[5] != 4 {
		return ErrProtocolType
	}
	op := Op(binary.BigEndian.Uint16(b[6:8]))
	if op != OpRequest && op != OpReply {
		return ErrUnknownOpcode
	}
	p.Op = op
	copy(p.SenderHW[:], b[8:14])
	p.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	copy(p.TargetHW[:], b[18:24])
	p.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return nil
}

func appendIPv4(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	v := a.As4()
	return append(b, v[:]...)
}

// itoa avoids strconv in String methods of tiny enums.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
