package acd_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestPacket_WireForm pins the exact 28-byte wire form of representative
// packets and checks that decoding it gives the packet back.
func TestPacket_WireForm(t *testing.T) {
	tests := []struct {
		name string
		p    acd.Packet
		wire string
	}{
		{"probe", acd.Probe(selfMAC, candIP),
			"0001 0800 06 04 0001 020000000001 00000000 000000000000 a9fe0a14"},
		{"announcement", acd.Announcement(selfMAC, candIP),
			"0001 0800 06 04 0001 020000000001 a9fe0a14 000000000000 a9fe0a14"},
		{"reply", pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP),
			"0001 0800 06 04 0002 020000000002 a9fe212c 020000000001 a9fe0a14"},
		{"request with every byte distinct", pkt(acd.OpRequest, acd.MAC{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc}, netip.MustParseAddr("10.1.2.3"), acd.MAC{0xde, 0xf0, 0x11, 0x22, 0x33, 0x44}, netip.MustParseAddr("192.168.200.250")),
			"0001 0800 06 04 0001 123456789abc 0a010203 def011223344 c0a8c8fa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.wire)
			got, err := tt.p.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("MarshalBinary = % x\nwant            % x", got, want)
			}
			if len(got) != acd.PacketLen {
				t.Errorf("len = %d, want PacketLen %d", len(got), acd.PacketLen)
			}
			prefix := []byte("prefix")
			app := tt.p.AppendBinary(append([]byte(nil), prefix...))
			if !bytes.Equal(app[:len(prefix)], prefix) || !bytes.Equal(app[len(prefix):], want) {
				t.Errorf("AppendBinary did not append after the prefix: % x", app)
			}
			var p acd.Packet
			if err := p.UnmarshalBinary(want); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if p != tt.p {
				t.Errorf("UnmarshalBinary = %+v, want %+v", p, tt.p)
			}
		})
	}
}

// TestPacket_NonIPv4AddressesMarshalAsZero checks the documented encoding of
// addresses that are not IPv4.
func TestPacket_NonIPv4AddressesMarshalAsZero(t *testing.T) {
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("::ffff:169.254.10.20")} {
		b, _ := pkt(acd.OpRequest, otherMAC, a, acd.MAC{}, a).MarshalBinary()
		if !bytes.Equal(b[14:18], []byte{0, 0, 0, 0}) || !bytes.Equal(b[24:28], []byte{0, 0, 0, 0}) {
			t.Errorf("address %v marshalled as % x / % x, want zeros", a, b[14:18], b[24:28])
		}
	}
}

// TestPacket_UnmarshalErrors checks every rejection of UnmarshalBinary, and
// that padding after the 28 bytes is ignored.
func TestPacket_UnmarshalErrors(t *testing.T) {
	good, _ := pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP).MarshalBinary()
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"valid", good, nil},
		{"valid with padding", append(append([]byte(nil), good...), make([]byte, 18)...), nil},
		{"valid with garbage padding", append(append([]byte(nil), good...), 0xff, 0xee, 0xdd), nil},
		{"empty", nil, acd.ErrTruncated},
		{"27 bytes", good[:27], acd.ErrTruncated},
		{"8 bytes", good[:8], acd.ErrTruncated},
		{"hardware type 6", edit(good, func(b []byte) { b[1] = 6 }), acd.ErrHardwareType},
		{"hardware type 0x0101", edit(good, func(b []byte) { b[0] = 1 }), acd.ErrHardwareType},
		{"hardware length 8", edit(good, func(b []byte) { b[4] = 8 }), acd.ErrHardwareType},
		{"hardware length 0", edit(good, func(b []byte) { b[4] = 0 }), acd.ErrHardwareType},
		{"protocol type 0x86dd", edit(good, func(b []byte) { b[2], b[3] = 0x86, 0xdd }), acd.ErrProtocolType},
		{"protocol type 0x0806", edit(good, func(b []byte) { b[3] = 0x06 }), acd.ErrProtocolType},
		{"protocol length 16", edit(good, func(b []byte) { b[5] = 16 }), acd.ErrProtocolType},
		{"protocol length 6", edit(good, func(b []byte) { b[5] = 6 }), acd.ErrProtocolType},
		{"opcode 0", edit(good, func(b []byte) { b[7] = 0 }), acd.ErrUnknownOpcode},
		{"opcode 3", edit(good, func(b []byte) { b[7] = 3 }), acd.ErrUnknownOpcode},
		{"opcode 0x0201", edit(good, func(b []byte) { b[6] = 2; b[7] = 1 }), acd.ErrUnknownOpcode},
		{"opcode 0xffff", edit(good, func(b []byte) { b[6], b[7] = 0xff, 0xff }), acd.ErrUnknownOpcode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := pkt(acd.OpRequest, bridgeMAC, thirdIP, bridgeMAC, thirdIP)
			p := before
			err := p.UnmarshalBinary(tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("UnmarshalBinary(% x) = %v, want %v", tt.b, err, tt.want)
			}
			if err != nil && p != before {
				t.Errorf("UnmarshalBinary changed the packet on error: %+v", p)
			}
			if err == nil && p.SenderHW != otherMAC {
				t.Errorf("UnmarshalBinary = %+v", p)
			}
		})
	}
}

// TestPacket_ShapePredicates pins IsProbe, IsAnnouncement and Kind.
func TestPacket_ShapePredicates(t *testing.T) {
	var z acd.MAC
	tests := []struct {
		name           string
		p              acd.Packet
		probe, announc bool
		kind           acd.PacketKind
	}{
		{"probe", acd.Probe(otherMAC, candIP), true, false, acd.KindProbe},
		{"probe with target HW set", pkt(acd.OpRequest, otherMAC, zeroIP, selfMAC, candIP), true, false, acd.KindProbe},
		{"probe for 0.0.0.0 is a probe, not an announcement", pkt(acd.OpRequest, otherMAC, zeroIP, z, zeroIP), true, false, acd.KindProbe},
		{"reply from 0.0.0.0 is not a probe", pkt(acd.OpReply, otherMAC, zeroIP, z, candIP), false, false, acd.KindReply},
		{"announcement", acd.Announcement(otherMAC, candIP), false, true, acd.KindAnnouncement},
		{"announcement with target HW broadcast", pkt(acd.OpRequest, otherMAC, candIP, acd.BroadcastMAC, candIP), false, true, acd.KindAnnouncement},
		{"gratuitous reply is a reply", pkt(acd.OpReply, otherMAC, candIP, z, candIP), false, false, acd.KindReply},
		{"ordinary request", pkt(acd.OpRequest, otherMAC, otherIP, z, candIP), false, false, acd.KindRequest},
		{"request from candidate", pkt(acd.OpRequest, otherMAC, candIP, z, otherIP), false, false, acd.KindRequest},
		{"ordinary reply", pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP), false, false, acd.KindReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.IsProbe(); got != tt.probe {
				t.Errorf("IsProbe = %v, want %v", got, tt.probe)
			}
			if got := tt.p.IsAnnouncement(); got != tt.announc {
				t.Errorf("IsAnnouncement = %v, want %v", got, tt.announc)
			}
			if got := tt.p.Kind(); got != tt.kind {
				t.Errorf("Kind = %v, want %v", got, tt.kind)
			}
		})
	}
}

// TestR06_ProbeFields checks the probe constructor against RFC 5227 §2.1.1:
// request, sender HW ours, sender IP 0.0.0.0, target HW zero, target IP the
// candidate; and its exact wire bytes.
func TestR06_ProbeFields(t *testing.T) {
	p := acd.Probe(selfMAC, candIP)
	if p.Op != acd.OpRequest || p.SenderHW != selfMAC || p.SenderIP != zeroIP || !p.TargetHW.IsZero() || p.TargetIP != candIP {
		t.Fatalf("Probe = %+v", p)
	}
	if !p.SenderIP.Is4() {
		t.Errorf("probe sender IP %v is not the IPv4 0.0.0.0", p.SenderIP)
	}
	if !p.IsProbe() || p.IsAnnouncement() || p.Kind() != acd.KindProbe {
		t.Errorf("Probe is not recognised as a probe: %+v", p)
	}
	f := acd.BroadcastFrame(p)
	want := mustHex(t, "ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 00000000 000000000000 a9fe0a14")
	want = append(want, make([]byte, acd.MinFrameLen-len(want))...)
	if got := wire(t, f); !bytes.Equal(got, want) {
		t.Errorf("probe frame = % x\nwant          % x", got, want)
	}
}

// TestR12_AnnouncementFields checks the announcement constructor against RFC
// 5227 §2.3: request, sender IP = target IP = the address, target HW zero.
func TestR12_AnnouncementFields(t *testing.T) {
	p := acd.Announcement(selfMAC, candIP)
	if p.Op != acd.OpRequest || p.SenderHW != selfMAC || p.SenderIP != candIP || !p.TargetHW.IsZero() || p.TargetIP != candIP {
		t.Fatalf("Announcement = %+v", p)
	}
	if p.IsProbe() || !p.IsAnnouncement() || p.Kind() != acd.KindAnnouncement {
		t.Errorf("Announcement is not recognised as one: %+v", p)
	}
	f := acd.BroadcastFrame(p)
	want := mustHex(t, "ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 a9fe0a14 000000000000 a9fe0a14")
	want = append(want, make([]byte, acd.MinFrameLen-len(want))...)
	if got := wire(t, f); !bytes.Equal(got, want) {
		t.Errorf("announcement frame = % x\nwant                 % x", got, want)
	}
}

func TestOpAndKindStrings(t *testing.T) {
	for op, want := range map[acd.Op]string{acd.OpRequest: "request", acd.OpReply: "reply", 0: "op(0)", 3: "op(3)", 65535: "op(65535)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", uint16(op), got, want)
		}
	}
	for k, want := range map[acd.PacketKind]string{acd.KindProbe: "probe", acd.KindAnnouncement: "announcement", acd.KindRequest: "request", acd.KindReply: "reply", 0: "kind(0)", 77: "kind(77)"} {
		if got := k.String(); got != want {
			t.Errorf("PacketKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestPacket_UnmarshalZeroAllocs(t *testing.T) {
	b, _ := pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP).MarshalBinary()
	var p acd.Packet
	var err error
	allocs := testing.AllocsPerRun(200, func() { err = p.UnmarshalBinary(b) })
	if err != nil || allocs != 0 {
		t.Errorf("UnmarshalBinary: %v allocs, err %v; want 0 allocs", allocs, err)
	}
	bad := edit(b, func(b []byte) { b[7] = 9 })
	allocs = testing.AllocsPerRun(200, func() { err = p.UnmarshalBinary(bad) })
	if !errors.Is(err, acd.ErrUnknownOpcode) || allocs != 0 {
		t.Errorf("UnmarshalBinary(bad opcode): %v allocs, err %v; want 0 allocs", allocs, err)
	}
}
