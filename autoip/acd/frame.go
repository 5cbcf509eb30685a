package acd

import "encoding/binary"

// Ethernet framing of ARP.
const (
	// EtherTypeARP is the EtherType of ARP.
	EtherTypeARP = 0x0806
	// EthernetHeaderLen is the length of an untagged Ethernet II header.
	EthernetHeaderLen = 14
	// MinFrameLen is the minimum Ethernet frame length without FCS; shorter
	// frames are padded with zeros, as every NIC does.
	MinFrameLen = 60
)

// Frame is an ARP packet with the Ethernet header it arrived in or will be
// sent in. The Ethernet source may differ from Packet.SenderHW (bridges that
// rewrite sources, proxies); Classify decides ownership by SenderHW, as RFC
// 5227 does, and keeps Src for reporting.
type Frame struct {
	Dst, Src MAC
	Packet
}

// BroadcastFrame returns p in a link-layer broadcast frame from
// p.SenderHW. Every ARP this package sends is broadcast (RFC 3927 §2.5).
func BroadcastFrame(p Packet) Frame {
	return Frame{Dst: BroadcastMAC, Src: p.SenderHW, Packet: p}
}

// DecodeFrame decodes an untagged Ethernet II frame carrying Ethernet/IPv4
// ARP. It fails with ErrTruncated, ErrNotARP or a Packet decoding error and
// never allocates.
func DecodeFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) < EthernetHeaderLen {
		return f, ErrTruncated
	}
	if binary.BigEndian.Uint16(b[12:14]) != EtherTypeARP {
		return f, ErrNotARP
	}
	if err := f.Packet.UnmarshalBinary(b[EthernetHeaderLen:]); err != nil {
		return f, err
	}
	copy(f.Dst[:], b[0:6])
	copy(f.Src[:], b[6:12])
	return f, nil
}

// AppendBinary appends the wire form of f, padded to MinFrameLen, to b.
func (f Frame) AppendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, f.Dst[:]...)
	b = append(b, f.Src[:]...)
	b = binary.BigEndian.AppendUint16(b, EtherTypeARP)
	b = f.Packet.AppendBinary(b)
	for len(b)-start < MinFrameLen {
		b = append(b, 0)
	}
	return b
}

// MarshalBinary returns the padded wire form of f.
func (f Frame) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(make([]byte, 0, MinFrameLen)), nil
}
