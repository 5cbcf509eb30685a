package hardening

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// fate is what the daemon must make of one injected frame, by an ARP model
// of our own (RFC 826 layout; RFC 5227 and the project's rules for what is
// dropped), independent of the product's decoder.
type fate uint8

const (
	fateFiltered   fate = iota // unicast to another MAC: the TAP link drops it (link rx_filtered)
	fateNotARP                 // another EtherType: handed to netstack, not to the engine
	fateMalformed              // ARP EtherType, not a well-formed Ethernet/IPv4 ARP packet (engine malformed)
	fateOwn                    // our own MAC as ARP sender: a loop (engine own)
	fateBadSender              // zero, broadcast or multicast ARP sender MAC (engine bad_sender)
	fateBcastQuery             // a request for 255.255.255.255 or 169.254.255.255: dropped by the client
	fateUnrelated              // well-formed ARP about other hosts: handed to netstack
	numFates
)

var fateNames = [numFates]string{"filtered", "not-arp", "malformed", "own", "bad-sender", "broadcast-query", "unrelated"}

// model classifies frame for a daemon with MAC us (which it must not be
// asked about: see floodGen).
func model(frame []byte, us acd.MAC) fate {
	if frame[0]&1 == 0 && acd.MAC(frame[0:6]) != us {
		return fateFiltered
	}
	if binary.BigEndian.Uint16(frame[12:14]) != 0x0806 {
		return fateNotARP
	}
	b := frame[14:]
	if len(b) < 28 ||
		binary.BigEndian.Uint16(b[0:2]) != 1 || b[4] != 6 || // hardware: Ethernet, 6-byte addresses
		binary.BigEndian.Uint16(b[2:4]) != 0x0800 || b[5] != 4 { // protocol: IPv4, 4-byte addresses
		return fateMalformed
	}
	op := binary.BigEndian.Uint16(b[6:8])
	if op != 1 && op != 2 {
		return fateMalformed
	}
	sha := acd.MAC(b[8:14])
	switch {
	case sha == us:
		return fateOwn
	case sha[0]&1 != 0 || sha == acd.MAC{}:
		return fateBadSender
	}
	tpa := b[24:28]
	if op == 1 && (tpa[0] == 255 && tpa[1] == 255 || tpa[0] == 169 && tpa[1] == 254) && tpa[2] == 255 && tpa[3] == 255 {
		return fateBcastQuery
	}
	return fateUnrelated
}

// floodGen makes random and malformed frames for a daemon with MAC us that
// holds addr. It never makes a frame that concerns addr (ARP sender or
// target IP addr: a conflict or a query, which the daemon rightly acts
// on) or that claims the kernel side's address (which would poison the
// netstack's neighbour entry for the pinging host), nor runts shorter than
// an Ethernet header (the kernel refuses to send them: EINVAL).
type floodGen struct {
	rng    *rand.Rand
	us     acd.MAC
	addr   netip.Addr
	kernel netip.Addr
	buf    []byte
}

func (g *floodGen) mac() acd.MAC {
	var m acd.MAC
	for i := range m {
		m[i] = byte(g.rng.Uint32())
	}
	return m
}

func (g *floodGen) unicast() acd.MAC {
	for {
		m := g.mac()
		m[0] &^= 1
		if m != g.us && m != (acd.MAC{}) {
			return m
		}
	}
}

func (g *floodGen) ip() netip.Addr {
	for {
		var a netip.Addr
		switch g.rng.IntN(4) {
		case 0:
			a = netip.AddrFrom4([4]byte{})
		case 1:
			a = netip.AddrFrom4([4]byte{byte(g.rng.Uint32()), byte(g.rng.Uint32()), byte(g.rng.Uint32()), byte(g.rng.Uint32())})
		default:
			a = netip.AddrFrom4([4]byte{169, 254, byte(g.rng.Uint32()), byte(g.rng.Uint32())})
		}
		if a != g.addr && a != g.kernel {
			return a
		}
	}
}

func (g *floodGen) dst() acd.MAC {
	switch r := g.rng.IntN(20); {
	case r < 12:
		return acd.BroadcastMAC
	case r < 16:
		return g.us
	case r < 18:
		return acd.MAC{0x01, 0x00, 0x5e, byte(g.rng.Uint32() & 0x7f), byte(g.rng.Uint32()), byte(g.rng.Uint32())} // IPv4 multicast
	default:
		return g.unicast() // someone else's: filtered by the link
	}
}

// arp returns a well-formed ARP frame about other hosts.
func (g *floodGen) arp() []byte {
	p := acd.Packet{Op: acd.Op(1 + g.rng.IntN(2)), SenderHW: g.unicast(), SenderIP: g.ip(), TargetIP: g.ip()}
	if g.rng.IntN(2) == 0 {
		p.TargetHW = g.unicast()
	}
	if p.SenderIP == (netip.AddrFrom4([4]byte{})) && g.rng.IntN(2) == 0 {
		p.Op = acd.OpRequest // a probe for someone else's candidate
	}
	b := acd.Frame{Dst: g.dst(), Src: p.SenderHW, Packet: p}.AppendBinary(g.buf[:0])
	if g.rng.IntN(8) == 0 { // trailing garbage, up to a full-size frame
		n := g.rng.IntN(1514 - len(b) + 1)
		for i := 0; i < n; i++ {
			b = append(b, byte(g.rng.Uint32()))
		}
	}
	return b
}

// next returns the next frame (valid until the next call).
func (g *floodGen) next() []byte {
	var b []byte
	switch r := g.rng.IntN(100); {
	case r < 15: // well-formed, unrelated
		b = g.arp()
	case r < 30: // truncated ARP: 0..27 bytes of body
		b = g.arp()
		b = b[:14+g.rng.IntN(28)]
	case r < 40: // wrong hardware type or length
		b = g.arp()
		if g.rng.IntN(2) == 0 {
			binary.BigEndian.PutUint16(b[14:], uint16(g.rng.Uint32()))
		} else {
			b[18] = byte(g.rng.Uint32())
		}
	case r < 50: // wrong protocol type or length
		b = g.arp()
		if g.rng.IntN(2) == 0 {
			binary.BigEndian.PutUint16(b[16:], uint16(g.rng.Uint32()))
		} else {
			b[19] = byte(g.rng.Uint32())
		}
	case r < 60: // unknown opcode
		b = g.arp()
		op := uint16(g.rng.Uint32())
		if g.rng.IntN(2) == 0 {
			op = uint16(g.rng.IntN(8)) // 0 and 3..7 are the likely ones
		}
		binary.BigEndian.PutUint16(b[20:], op)
	case r < 70: // impossible sender MAC: zero, broadcast or multicast
		b = g.arp()
		var m acd.MAC
		switch g.rng.IntN(3) {
		case 1:
			m = acd.BroadcastMAC
		case 2:
			m = g.mac()
			m[0] |= 1
		}
		copy(b[22:28], m[:])
	case r < 75: // our own frame looped back
		b = g.arp()
		copy(b[22:28], g.us[:])
	case r < 78: // a request for a broadcast address
		b = g.arp()
		binary.BigEndian.PutUint16(b[20:], 1)
		if g.rng.IntN(2) == 0 {
			copy(b[38:42], []byte{255, 255, 255, 255})
		} else {
			copy(b[38:42], []byte{169, 254, 255, 255})
		}
	case r < 95: // other EtherTypes: IPv4 and IPv6 garbage, VLAN-tagged ARP, LLDP, anything
		d := g.dst()
		b = append(g.buf[:0], d[:]...)
		s := g.unicast()
		b = append(b, s[:]...)
		et := []uint16{0x0800, 0x86dd, 0x8100, 0x88cc, 0x0000, 0xffff, uint16(g.rng.Uint32())}[g.rng.IntN(7)]
		if et == 0x0806 {
			et = 0x0807
		}
		b = binary.BigEndian.AppendUint16(b, et)
		if et == 0x8100 {
			b = append(b, 0, 1, 0x08, 0x06) // VLAN 1, then ARP
		}
		n := g.rng.IntN(1514 - len(b) + 1)
		for i := 0; i < n; i++ {
			b = append(b, byte(g.rng.Uint32()))
		}
	default: // random bytes, half of them with the ARP EtherType
		n := 14 + g.rng.IntN(1514-14+1)
		if g.rng.IntN(2) == 0 {
			n = 14 + g.rng.IntN(60)
		}
		b = g.buf[:0]
		for i := 0; i < n; i++ {
			b = append(b, byte(g.rng.Uint32()))
		}
		if g.rng.IntN(2) == 0 {
			binary.BigEndian.PutUint16(b[12:], 0x0806)
		}
		if len(b) >= 42 && (netip.AddrFrom4([4]byte(b[28:32])) == g.addr || netip.AddrFrom4([4]byte(b[38:42])) == g.addr ||
			netip.AddrFrom4([4]byte(b[28:32])) == g.kernel) {
			b[28] = 10 // never about our address or the kernel's
			b[38] = 10
		}
	}
	g.buf = b[:0]
	return b
}

// rssKiB returns a process's resident set size in KiB, or 0.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// TestR24_DaemonSurvivesMalformedFlood: a million (short form: 50,000)
// random and malformed frames from the kernel side of the TAP at a running
// autoipd: truncated ARP, wrong hardware and protocol types and lengths,
// unknown opcodes, zero, broadcast and multicast sender MACs, our own MAC,
// requests for broadcast addresses, non-ARP EtherTypes, VLAN tags, frames
// for other MACs and plain random bytes, of every length from a bare
// Ethernet header to 1514 bytes. The daemon stays up and bound to the same
// address, answers ping, still defends against a real conflict at once, and
// its counters (autoipd -status) account for every frame exactly: link
// rx_frames and rx_filtered, shim arp_in and dropped, engine frames,
// malformed, own and bad_sender (R24).
func TestR24_DaemonSurvivesMalformedFlood(t *testing.T) {
	frames := size(t, "AIP_HARDEN_FRAMES", 50_000, 1_000_000)
	sd := seed(t)
	const window = 8192 // frames in flight between the kernel and the daemon
	e := newDenv(t, 0x24, 4*window)
	p := e.start(fastArgs...)
	addr := e.waitBound(20 * time.Second)
	before, _ := e.statusCLI()
	kpk0, kdr0 := e.kernelTxStats()
	rss0 := rssKiB(p.cmd.Process.Pid)

	g := &floodGen{rng: rand.New(rand.NewPCG(sd, 24)), us: e.mac, addr: addr, kernel: netip.MustParseAddr(kernelLL)}
	var want [numFates]uint64
	seen := func() (uint64, error) { // frames the daemon's link has taken off the TAP
		r, err := e.status()
		if err != nil {
			return 0, err
		}
		return r.Counters.Link.RxFrames + r.Counters.Link.RxFiltered - before.Counters.Link.RxFrames - before.Counters.Link.RxFiltered, nil
	}
	start := time.Now()
	var sent uint64
	for i := 0; i < frames; i++ {
		b := g.next()
		want[model(b, e.mac)]++
		if err := e.wire.send(b); err != nil {
			t.Fatalf("frame %d (%d bytes): send: %v", i, len(b), err)
		}
		sent++
		if sent%2048 == 0 {
			for {
				n, err := seen()
				if err != nil {
					t.Fatalf("after %d frames the status socket fails: %v; daemon alive %v", sent, err, p.alive())
				}
				if sent-n <= window {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	waitFor(t, 60*time.Second, "the daemon to take every frame off the TAP", func() bool {
		n, err := seen()
		return err == nil && n >= sent
	})
	took := time.Since(start)
	kpk1, kdr1 := e.kernelTxStats()
	t.Logf("%d frames in %v (%.0f frames/s); daemon RSS %d -> %d KiB", sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), rss0, rssKiB(p.cmd.Process.Pid))
	var mix []string
	for f, n := range want {
		mix = append(mix, fmt.Sprintf("%s %d", fateNames[f], n))
	}
	t.Logf("mix: %s", strings.Join(mix, ", "))

	if !p.alive() {
		t.Fatalf("autoipd died: %v", p.state)
	}
	if kpk1-kpk0 != sent || kdr1 != kdr0 {
		t.Errorf("kernel side sent %d frames and dropped %d, want %d and 0", kpk1-kpk0, kdr1-kdr0, sent)
	}
	after, raw := e.statusCLI()
	if after.PID != p.cmd.Process.Pid || after.Configured != addr.String() || after.State != "bound" || after.LastConflict != nil ||
		after.Counters.Engine.Binds != before.Counters.Engine.Binds || after.Counters.Engine.BoundConflicts != before.Counters.Engine.BoundConflicts {
		t.Errorf("the flood disturbed the daemon: before %+v\nafter %+v", before, after)
	}
	if err := e.ping(addr); err != nil {
		t.Errorf("ping %v after the flood: %v", addr, err)
	}

	b, a := before.Counters, after.Counters
	arp := want[fateMalformed] + want[fateOwn] + want[fateBadSender] + want[fateBcastQuery] + want[fateUnrelated]
	dropped := want[fateMalformed] + want[fateOwn] + want[fateBadSender] + want[fateBcastQuery]
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"link rx_frames", a.Link.RxFrames - b.Link.RxFrames, sent - want[fateFiltered]},
		{"link rx_filtered", a.Link.RxFiltered - b.Link.RxFiltered, want[fateFiltered]},
		{"shim arp_in", a.Shim.ARPIn - b.Shim.ARPIn, arp},
		{"shim dropped", a.Shim.Dropped - b.Shim.Dropped, dropped},
		{"engine frames", a.Engine.Frames - b.Engine.Frames, arp},
		{"engine malformed", a.Engine.Malformed - b.Engine.Malformed, want[fateMalformed]},
		{"engine own", a.Engine.Own - b.Engine.Own, want[fateOwn]},
		{"engine bad_sender", a.Engine.BadSender - b.Engine.BadSender, want[fateBadSender]},
		{"engine sent", a.Engine.Sent - b.Engine.Sent, 0},
	} {
		if c.got != c.want {
			t.Errorf("R24: counter %s grew by %d, want %d", c.name, c.got, c.want)
		}
	}
	t.Logf("non-ARP frames delivered: %d; engine not_arp grew by %d, shim not_arp %v",
		want[fateNotARP], a.Engine.NotARP-b.Engine.NotARP, dig(raw, "counters", "shim", "not_arp"))

	// The engine is not stalled: a real conflict now is defended at once.
	mark := e.wire.mark()
	other := acd.MAC{0x02, 0xbb, 0, 0, 0, 0x24}
	if err := e.wire.send(acd.BroadcastFrame(acd.Announcement(other, addr)).AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a defensive announcement after the flood", func() bool {
		fs, _ := e.wire.sent(mark, e.mac)
		for _, f := range fs {
			if f.f.IsAnnouncement() && f.f.SenderIP == addr {
				return true
			}
		}
		return false
	})
	if r, err := e.status(); err != nil || r.Configured != addr.String() || r.LastConflict == nil || r.LastConflict.Event != "DEFEND" {
		t.Errorf("after a conflict following the flood: %+v %v, want the address defended and kept", r, err)
	}
}

// dig returns the value at path in a decoded JSON object, or nil.
func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestR24_DaemonCountsNonARPFrames: frames of other EtherTypes are counted
// as such in the status (engine not_arp, or a shim not_arp counter), so
// that the not_arp a user reads means what it says (R24: "non-ARP
// ethertypes ... are counted").
func TestR24_DaemonCountsNonARPFrames(t *testing.T) {
	e := newDenv(t, 0x25, 0)
	e.start(fastArgs...)
	addr := e.waitBound(20 * time.Second)
	before, rawBefore := e.statusCLI()
	const n = 300
	g := &floodGen{rng: rand.New(rand.NewPCG(1, 2)), us: e.mac, addr: addr, kernel: netip.MustParseAddr(kernelLL)}
	for i := 0; i < n; i++ {
		et := []uint16{0x0800, 0x86dd, 0x8100, 0x88cc, 0x1234}[i%5]
		b := append([]byte(nil), acd.BroadcastMAC[:]...)
		src := g.unicast()
		b = append(b, src[:]...)
		b = binary.BigEndian.AppendUint16(b, et)
		b = append(b, make([]byte, 46)...)
		if err := e.wire.send(b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the frames to arrive", func() bool {
		r, err := e.status()
		return err == nil && r.Counters.Link.RxFrames-before.Counters.Link.RxFrames >= n
	})
	after, rawAfter := e.statusCLI()
	engine := after.Counters.Engine.NotARP - before.Counters.Engine.NotARP
	shim, _ := dig(rawAfter, "counters", "shim", "not_arp").(float64)
	shim0, _ := dig(rawBefore, "counters", "shim", "not_arp").(float64)
	if engine != n && uint64(shim-shim0) != n {
		t.Errorf("R24: %d non-ARP frames arrived (link rx_frames +%d); engine not_arp +%d, shim not_arp +%v: neither counts them",
			n, after.Counters.Link.RxFrames-before.Counters.Link.RxFrames, engine, shim-shim0)
	}
}
