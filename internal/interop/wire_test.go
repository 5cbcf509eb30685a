package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The bridge capture is decoded here with a few lines of our own rather
// than the project's acd codec: the judge of the wire should not share code
// with what it judges.

const broadcastMAC = "ff:ff:ff:ff:ff:ff"

// arpFrame is one ARP packet seen on the bridge.
type arpFrame struct {
	at       time.Time
	ethSrc   string
	ethDst   string
	op       uint16 // 1 request, 2 reply
	sha      string
	spa, tpa netip.Addr
}

func (f arpFrame) isProbe() bool {
	return f.op == 1 && f.spa == netip.IPv4Unspecified()
}

func (f arpFrame) isAnnouncement() bool {
	return f.op == 1 && f.spa == f.tpa && f.spa != netip.IPv4Unspecified()
}

func (f arpFrame) String() string {
	kind := "request"
	switch {
	case f.isProbe():
		kind = "probe"
	case f.isAnnouncement():
		kind = "announcement"
	case f.op == 2:
		kind = "reply"
	}
	return fmt.Sprintf("%s ARP %s %s>%s sha=%s spa=%s tpa=%s", f.at.Format("15:04:05.000000"), kind, f.ethSrc, f.ethDst, f.sha, f.spa, f.tpa)
}

// ipFrame is one IPv4 packet seen on the bridge.
type ipFrame struct {
	at       time.Time
	ethSrc   string
	ethDst   string
	src, dst netip.Addr
	proto    uint8
	icmpType int // -1 unless ICMP
	// UDP: ports and payload.
	sport, dport uint16
	udp          []byte
}

// wire is a decoded capture.
type wire struct {
	arps []arpFrame
	ips  []ipFrame
}

func macString(b []byte) string {
	const hexdig = "0123456789abcdef"
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteByte(hexdig[c>>4])
		s.WriteByte(hexdig[c&15])
	}
	return s.String()
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// loadWire reads a classic pcap file (as tcpdump -w and autoipd -pcap
// write it: either byte order, micro- or nanosecond stamps, Ethernet). A
// record cut short at the end, as a capture stopped mid-write leaves it,
// ends the capture.
func loadWire(path string) (*wire, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("%s: %d bytes, no pcap header", path, len(b))
	}
	var bo binary.ByteOrder
	nanos := false
	switch {
	case bytes.Equal(b[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}):
		bo = binary.LittleEndian
	case bytes.Equal(b[:4], []byte{0xa1, 0xb2, 0xc3, 0xd4}):
		bo = binary.BigEndian
	case bytes.Equal(b[:4], []byte{0x4d, 0x3c, 0xb2, 0xa1}):
		bo, nanos = binary.LittleEndian, true
	case bytes.Equal(b[:4], []byte{0xa1, 0xb2, 0x3c, 0x4d}):
		bo, nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: not a pcap file (magic % x)", path, b[:4])
	}
	if lt := bo.Uint32(b[20:24]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want 1 (Ethernet)", path, lt)
	}
	w := &wire{}
	for rest := b[24:]; len(rest) >= 16; {
		sec, frac := int64(bo.Uint32(rest[0:4])), int64(bo.Uint32(rest[4:8]))
		n := int(bo.Uint32(rest[8:12]))
		if n > len(rest)-16 {
			break
		}
		if !nanos {
			frac *= 1000
		}
		w.add(time.Unix(sec, frac), rest[16:16+n])
		rest = rest[16+n:]
	}
	return w, nil
}

func (w *wire) add(at time.Time, data []byte) {
	if len(data) < 14 {
		return
	}
	src, dst := macString(data[6:12]), macString(data[0:6])
	etype := binary.BigEndian.Uint16(data[12:14])
	p := data[14:]
	switch etype {
	case 0x0806:
		if len(p) < 28 || binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != 0x0800 || p[4] != 6 || p[5] != 4 {
			return
		}
		w.arps = append(w.arps, arpFrame{at: at, ethSrc: src, ethDst: dst,
			op: binary.BigEndian.Uint16(p[6:8]), sha: macString(p[8:14]), spa: addr4(p[14:18]), tpa: addr4(p[24:28])})
	case 0x0800:
		if len(p) < 20 || p[0]>>4 != 4 {
			return
		}
		ihl := int(p[0]&15) * 4
		f := ipFrame{at: at, ethSrc: src, ethDst: dst, src: addr4(p[12:16]), dst: addr4(p[16:20]), proto: p[9], icmpType: -1}
		if f.proto == 1 && len(p) > ihl {
			f.icmpType = int(p[ihl])
		}
		if f.proto == 17 && len(p) >= ihl+8 {
			f.sport, f.dport = binary.BigEndian.Uint16(p[ihl:]), binary.BigEndian.Uint16(p[ihl+2:])
			f.udp = append([]byte(nil), p[ihl+8:]...)
		}
		w.ips = append(w.ips, f)
	}
}

// find returns the first ARP frame at or after `after` that match accepts.
func (w *wire) find(after time.Time, match func(arpFrame) bool) (arpFrame, bool) {
	for _, f := range w.arps {
		if !f.at.Before(after) && match(f) {
			return f, true
		}
	}
	return arpFrame{}, false
}

func (w *wire) count(after, before time.Time, match func(arpFrame) bool) int {
	n := 0
	for _, f := range w.arps {
		if !f.at.Before(after) && (before.IsZero() || f.at.Before(before)) && match(f) {
			n++
		}
	}
	return n
}

// probeBy matches probes from mac, for addr if valid.
func probeBy(mac string, addr netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool {
		return f.sha == mac && f.isProbe() && (!addr.IsValid() || f.tpa == addr)
	}
}

// announceBy matches announcements from mac, of addr if valid.
func announceBy(mac string, addr netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool {
		return f.sha == mac && f.isAnnouncement() && (!addr.IsValid() || f.spa == addr)
	}
}

// announceOtherThan matches announcements from mac of any address but not.
func announceOtherThan(mac string, not netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool { return f.sha == mac && f.isAnnouncement() && f.spa != not }
}

// probeOtherThan matches probes from mac for any address but not.
func probeOtherThan(mac string, not netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool { return f.sha == mac && f.isProbe() && f.tpa != not }
}

// conflictFor matches what RFC 5227 makes a conflict for a host with
// hardware address mac probing or holding addr: any ARP packet from another
// host whose sender IP is addr, or another host's probe for addr.
func conflictFor(mac string, addr netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool {
		return f.sha != mac && (f.spa == addr || f.isProbe() && f.tpa == addr)
	}
}

// claimBy matches an ARP packet from mac claiming addr (sender IP = addr):
// an announcement, a reply or an ordinary request.
func claimBy(mac string, addr netip.Addr) func(arpFrame) bool {
	return func(f arpFrame) bool { return f.sha == mac && f.spa == addr }
}

// r14Violations returns the ARP packets sent from mac whose sender IP is
// link-local but that were not sent to the Ethernet broadcast address.
func (w *wire) r14Violations(mac string) []arpFrame {
	var bad []arpFrame
	ll := netip.MustParsePrefix("169.254.0.0/16")
	for _, f := range w.arps {
		if f.ethSrc == mac && ll.Contains(f.spa) && f.ethDst != broadcastMAC {
			bad = append(bad, f)
		}
	}
	return bad
}

// unheldUse checks, on one timeline, that the host with hardware address
// mac only ever used an address it held: an address is held from the host's
// first announcement of it (the bind point) until a CONFLICT, UNBIND or
// STOP event for it (AUTOIPD_TIME) plus grace. Any ARP packet with that
// sender IP (other than the announcement itself) or IPv4 packet with that
// source address outside that span is reported: before the claim it breaks
// R10, after giving the address up R18.
func (w *wire) unheldUse(mac string, evs []event, grace time.Duration) []string {
	type mark struct {
		at   time.Time
		addr netip.Addr
		drop bool
	}
	var marks []mark
	for _, f := range w.arps {
		if f.sha == mac && f.isAnnouncement() {
			marks = append(marks, mark{at: f.at, addr: f.spa})
		}
	}
	for _, e := range evs {
		switch e.ev {
		case "CONFLICT", "UNBIND", "STOP", "LEASE_LOST", "LEASE_DECLINED", "ADDR_REMOVED", "ADDR_CONFLICT":
			if e.addr.IsValid() {
				marks = append(marks, mark{at: e.at.Add(grace), addr: e.addr, drop: true})
			}
		}
	}
	heldAt := func(a netip.Addr, at time.Time) bool {
		held := false
		var last time.Time
		for _, m := range marks {
			if m.addr != a || m.at.After(at) {
				continue
			}
			if last.IsZero() || !m.at.Before(last) {
				held, last = !m.drop, m.at
			}
		}
		return held
	}
	var bad []string
	for _, f := range w.arps {
		if f.sha == mac && !f.isProbe() && !f.isAnnouncement() && !heldAt(f.spa, f.at) {
			bad = append(bad, f.String())
		}
	}
	for _, f := range w.ips {
		if f.src.IsUnspecified() && f.sport == 68 && f.dport == 67 {
			continue // a DHCP client before it has an address (RFC 2131 §4.1)
		}
		if f.ethSrc == mac && !heldAt(f.src, f.at) {
			bad = append(bad, fmt.Sprintf("%s IPv4 %v > %v proto %d", f.at.Format("15:04:05.000000"), f.src, f.dst, f.proto))
		}
	}
	return bad
}

// icmpCount counts ICMP packets of type typ (0 echo reply, 8 echo request)
// from srcMAC/src to dstMAC/dst.
func (w *wire) icmpCount(typ int, srcMAC, dstMAC string, src, dst netip.Addr) int {
	n := 0
	for _, f := range w.ips {
		if f.icmpType == typ && f.ethSrc == srcMAC && f.ethDst == dstMAC && f.src == src && f.dst == dst {
			n++
		}
	}
	return n
}

// dump renders the ARP packets for a failure message.
func (w *wire) dump() string {
	var b strings.Builder
	for _, f := range w.arps {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestWireDecode checks the decoder on a hand-made capture:
// a probe, an announcement, a unicast reply and an ICMP echo reply.
func TestWireDecode(t *testing.T) {
	mac := []byte{0x02, 0xa1, 0, 0, 0, 1}
	peer := []byte{0x02, 0xa2, 0, 0, 0, 2}
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	a := []byte{169, 254, 7, 7}
	b := []byte{169, 254, 8, 8}
	zero := []byte{0, 0, 0, 0}
	arp := func(dst, src []byte, op uint16, sha, spa, tha, tpa []byte) []byte {
		f := append(append(append([]byte{}, dst...), src...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, byte(op))
		f = append(append(append(append(f, sha...), spa...), tha...), tpa...)
		return append(f, make([]byte, 18)...) // padding to 60 bytes
	}
	icmp := append(append(append([]byte{}, peer...), mac...), 0x08, 0x00,
		0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0)
	icmp = append(append(append(icmp, a...), b...), 0, 0, 0, 0, 0, 1, 0, 1)
	var buf bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 1)
	buf.Write(hdr)
	t0 := time.Unix(1700000000, 0)
	frames := [][]byte{
		arp(bcast, mac, 1, mac, zero, make([]byte, 6), a),
		arp(bcast, mac, 1, mac, a, make([]byte, 6), a),
		arp(peer, mac, 2, mac, a, peer, b),
		icmp,
	}
	for i, f := range frames {
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(t0.Unix())+uint32(i))
		le.PutUint32(rec[8:], uint32(len(f)))
		le.PutUint32(rec[12:], uint32(len(f)))
		buf.Write(rec)
		buf.Write(f)
	}
	buf.Write([]byte{1, 2, 3}) // a torn last record
	path := t.TempDir() + "/x.pcap"
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := loadWire(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.arps) != 3 || len(w.ips) != 1 {
		t.Fatalf("decoded %d ARP, %d IP:\n%s", len(w.arps), len(w.ips), w.dump())
	}
	A, B := netip.AddrFrom4([4]byte(a)), netip.AddrFrom4([4]byte(b))
	m := macString(mac)
	if f, ok := w.find(time.Time{}, probeBy(m, A)); !ok || !f.at.Equal(t0) {
		t.Errorf("probe: %v %v", f, ok)
	}
	if f, ok := w.find(time.Time{}, announceBy(m, A)); !ok || !f.at.Equal(t0.Add(time.Second)) {
		t.Errorf("announcement: %v %v", f, ok)
	}
	if bad := w.r14Violations(m); len(bad) != 1 || bad[0].op != 2 {
		t.Errorf("R14 violations %v, want the unicast reply", bad)
	}
	if n := w.icmpCount(0, m, macString(peer), A, B); n != 1 {
		t.Errorf("echo replies %d", n)
	}
	if _, ok := w.find(time.Time{}, conflictFor(macString(peer), A)); !ok {
		t.Error("our probe for A is a conflict for another host probing A")
	}
	if _, ok := w.find(time.Time{}, conflictFor(m, A)); ok {
		t.Error("our own frames are never a conflict for us")
	}
	// The reply and the echo reply come after the announcement of A: held.
	if bad := w.unheldUse(m, nil, 0); len(bad) != 0 {
		t.Errorf("unheldUse with A announced: %v", bad)
	}
	// Given A up (CONFLICT) before the reply: both uses are reported.
	evs := []event{{ev: "CONFLICT", addr: A, at: t0.Add(1500 * time.Millisecond)}}
	if bad := w.unheldUse(m, evs, 0); len(bad) != 2 {
		t.Errorf("unheldUse after giving A up: %v, want the reply and the echo reply", bad)
	}
}
