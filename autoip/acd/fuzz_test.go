package acd_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/autoip-project/autoip/autoip/acd"
)

// decodeSeeds are frames every decoding fuzz target starts from: valid
// frames of every shape and one example of every rejection (R24).
func decodeSeeds(t testing.TB) [][]byte {
	good := wire(t, bcast(otherMAC, acd.Announcement(otherMAC, candIP)))
	return [][]byte{
		good,
		good[:42],
		wire(t, acd.BroadcastFrame(acd.Probe(selfMAC, candIP))),
		wire(t, acd.Frame{Dst: selfMAC, Src: bridgeMAC, Packet: pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP)}),
		wire(t, bcast(otherMAC, pkt(acd.OpRequest, mcastMAC, thirdIP, acd.BroadcastMAC, zeroIP))),
		append(append([]byte(nil), good...), bytes.Repeat([]byte{0xee}, 100)...),
		nil,
		good[:13],
		good[:14],
		good[:41],
		edit(good, func(b []byte) { b[12], b[13] = 0x08, 0x00 }),
		edit(good, func(b []byte) { b[12], b[13] = 0x00, 0x2e }), // 802.3 length field
		edit(good, func(b []byte) { b[15] = 6 }),
		edit(good, func(b []byte) { b[18] = 8 }),
		edit(good, func(b []byte) { b[16], b[17] = 0x86, 0xdd }),
		edit(good, func(b []byte) { b[19] = 16 }),
		edit(good, func(b []byte) { b[21] = 3 }),
		edit(good, func(b []byte) { b[18], b[19] = 0, 0 }),      // gopacket accepts an empty layout
		edit(good, func(b []byte) { b[18], b[19] = 0x80, 0 }),   // gopacket's uint8 length overflows
		edit(good[:30], func(b []byte) { b[18], b[19] = 2, 2 }), // short but self-consistent layout
	}
}

// wantDecodeErr is an independent statement of DecodeFrame's rules: which
// error, if any, the input must give.
func wantDecodeErr(b []byte) error {
	switch {
	case len(b) < 14:
		return acd.ErrTruncated
	case binary.BigEndian.Uint16(b[12:14]) != 0x0806:
		return acd.ErrNotARP
	case len(b) < 42:
		return acd.ErrTruncated
	case binary.BigEndian.Uint16(b[14:16]) != 1 || b[18] != 6:
		return acd.ErrHardwareType
	case binary.BigEndian.Uint16(b[16:18]) != 0x0800 || b[19] != 4:
		return acd.ErrProtocolType
	case b[20] != 0 || (b[21] != 1 && b[21] != 2):
		return acd.ErrUnknownOpcode
	}
	return nil
}

// FuzzDecodeFrame (R24): no input panics; the error is the one the rules
// give; a decoded frame re-encodes to the input's first 42 bytes plus zero
// padding and decodes to itself; Classify is total on it.
func FuzzDecodeFrame(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := acd.DecodeFrame(data)
		want := wantDecodeErr(data)
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("DecodeFrame(% x) error = %v, want %v", data, err, want)
		}
		if err != nil {
			if fr != (acd.Frame{}) {
				t.Fatalf("non-zero frame with error: %+v", fr)
			}
			return
		}
		enc := wire(t, fr)
		if len(enc) != acd.MinFrameLen {
			t.Fatalf("encoded length %d", len(enc))
		}
		if !bytes.Equal(enc[:42], data[:42]) {
			t.Fatalf("re-encoded header+body differs:\n got % x\nwant % x", enc[:42], data[:42])
		}
		if !bytes.Equal(enc[42:], make([]byte, acd.MinFrameLen-42)) {
			t.Fatalf("padding not zero: % x", enc[42:])
		}
		back, err := acd.DecodeFrame(enc)
		if err != nil || back != fr {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, fr)
		}
		if !fr.SenderIP.Is4() || !fr.TargetIP.Is4() {
			t.Fatalf("decoded addresses are not IPv4: %v %v", fr.SenderIP, fr.TargetIP)
		}
		for _, ph := range []acd.Phase{acd.PhaseIdle, acd.PhaseProbing, acd.PhaseBound} {
			v := acd.Classify(ph, fr, selfMAC, candIP)
			if v < acd.VerdictUnrelated || v > acd.VerdictProbeConflict {
				t.Fatalf("Classify(%v) = %v", ph, v)
			}
			// R29: a bad sender conflicts only by claiming our address.
			if v.IsConflict() && (fr.SenderHW == selfMAC || (!fr.SenderHW.IsUnicast() && fr.SenderIP != candIP) || ph == acd.PhaseIdle) {
				t.Fatalf("Classify(%v, %+v) = %v: conflict from own frame, from a bad sender not claiming our address, or while idle", ph, fr.Packet, v)
			}
		}
	})
}

// FuzzPacketRoundTrip checks the 28-byte ARP body: a decoded body
// re-encodes byte for byte, and a packet built from arbitrary fields
// survives marshal and unmarshal.
func FuzzPacketRoundTrip(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		if len(b) >= 14 {
			f.Add(b[14:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p acd.Packet
		err := p.UnmarshalBinary(data)
		if want := wantDecodeErr(append(make([]byte, 12), append([]byte{0x08, 0x06}, data...)...)); !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("UnmarshalBinary(% x) = %v, want %v", data, err, want)
		}
		if err == nil {
			enc, _ := p.MarshalBinary()
			if !bytes.Equal(enc, data[:acd.PacketLen]) {
				t.Fatalf("re-encoded body differs:\n got % x\nwant % x", enc, data[:acd.PacketLen])
			}
			switch k := p.Kind(); {
			case p.IsProbe() && k != acd.KindProbe, p.IsAnnouncement() && k != acd.KindAnnouncement,
				p.IsProbe() && p.IsAnnouncement(),
				k == acd.KindReply && p.Op != acd.OpReply, k == acd.KindRequest && p.Op != acd.OpRequest:
				t.Fatalf("inconsistent shape of %+v: kind %v probe %v announcement %v", p, k, p.IsProbe(), p.IsAnnouncement())
			}
		}
		if len(data) < acd.PacketLen {
			return
		}
		// Build a packet from the bytes as fields and round-trip it.
		q := acd.Packet{
			Op:       acd.Op(data[0]&1 + 1),
			SenderHW: acd.MAC(data[0:6]),
			SenderIP: netip.AddrFrom4([4]byte(data[6:10])),
			TargetHW: acd.MAC(data[10:16]),
			TargetIP: netip.AddrFrom4([4]byte(data[16:20])),
		}
		enc, _ := q.MarshalBinary()
		var back acd.Packet
		if err := back.UnmarshalBinary(enc); err != nil || back != q {
			t.Fatalf("round trip of %+v: %+v, %v", q, back, err)
		}
	})
}

// gopacketARP decodes an ARP body with gopacket, recovering from its
// panics (see FuzzDecodeVsGopacket).
func gopacketARP(b []byte) (arp layers.ARP, err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	err = arp.DecodeFromBytes(b, gopacket.NilDecodeFeedback)
	return arp, err, false
}

// FuzzDecodeVsGopacket (R24) is a differential test of DecodeFrame against
// gopacket's layers.Ethernet and layers.ARP.
//
// Whenever DecodeFrame accepts, gopacket must accept too and agree on every
// field. Where DecodeFrame rejects, gopacket's fields must show the reason.
// Differences found (gopacket v1.1.19), all of them gopacket being more
// permissive, none a disagreement on a frame we accept:
//   - gopacket accepts any hardware type, protocol type and opcode, and any
//     address lengths the data is long enough for (e.g. hlen=plen=0 decodes
//     from 8 bytes), so it accepts many bodies we reject.
//   - gopacket computes the ARP length 8+2*hlen+2*plen in uint8 and slices
//     with uint8 offsets: for hlen/plen whose sum overflows (e.g. hlen=0x80)
//     the length check passes and DecodeFromBytes panics with a slice out of
//     range (gopacket.NewPacket recovers it into a DecodeFailure layer). We
//     reject such bodies with ErrHardwareType/ErrProtocolType.
//   - gopacket stores the 16-bit ARP hardware type in AddrType, a uint8
//     LinkType, dropping the high byte: hardware type 0x3001 reads as
//     LinkTypeEthernet (1). We reject it with ErrHardwareType. (Found by
//     this fuzzer; testdata/fuzz/FuzzDecodeVsGopacket/7dd4842eade12844.)
//   - gopacket's Ethernet decoder reads an EtherType below 0x0600 as an
//     802.3 length and reports LLC; we report ErrNotARP.
func FuzzDecodeVsGopacket(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := acd.DecodeFrame(data)

		var eth layers.Ethernet
		ethErr := eth.DecodeFromBytes(data, gopacket.NilDecodeFeedback)
		if len(data) < 14 {
			if ethErr == nil || !errors.Is(err, acd.ErrTruncated) {
				t.Fatalf("%d bytes: gopacket Ethernet error %v, ours %v", len(data), ethErr, err)
			}
			return
		}
		if ethErr != nil {
			t.Fatalf("gopacket rejected a %d-byte Ethernet header: %v", len(data), ethErr)
		}
		if errors.Is(err, acd.ErrNotARP) {
			if eth.EthernetType == layers.EthernetTypeARP {
				t.Fatalf("we say not ARP, gopacket says EtherType %v", eth.EthernetType)
			}
			return
		}
		if eth.EthernetType != layers.EthernetTypeARP {
			t.Fatalf("we decode ARP (err %v), gopacket says EtherType %v", err, eth.EthernetType)
		}

		arp, arpErr, panicked := gopacketARP(eth.Payload)
		// gopacket keeps only the low byte of the hardware type (AddrType
		// is a uint8 LinkType), so the high byte is read from the input.
		ethOK := len(data) > 14 && arp.AddrType == layers.LinkTypeEthernet && data[14] == 0 && arp.HwAddressSize == 6
		ipv4OK := arp.Protocol == layers.EthernetTypeIPv4 && arp.ProtAddressSize == 4
		switch {
		case err == nil:
			if arpErr != nil {
				t.Fatalf("we accept, gopacket rejects: %v", arpErr)
			}
			if !ethOK || !ipv4OK || arp.ProtAddressSize != 4 {
				t.Fatalf("we accept, gopacket header: addrtype %v hlen %d proto %v plen %d", arp.AddrType, arp.HwAddressSize, arp.Protocol, arp.ProtAddressSize)
			}
			sip, tip := fr.SenderIP.As4(), fr.TargetIP.As4()
			if arp.Operation != uint16(fr.Op) ||
				!bytes.Equal(arp.SourceHwAddress, fr.SenderHW[:]) ||
				!bytes.Equal(arp.SourceProtAddress, sip[:]) ||
				!bytes.Equal(arp.DstHwAddress, fr.TargetHW[:]) ||
				!bytes.Equal(arp.DstProtAddress, tip[:]) {
				t.Fatalf("field disagreement:\n ours %+v\n gopacket op %d sha % x spa % x tha % x tpa % x",
					fr.Packet, arp.Operation, arp.SourceHwAddress, arp.SourceProtAddress, arp.DstHwAddress, arp.DstProtAddress)
			}
			if !bytes.Equal(eth.SrcMAC, fr.Src[:]) || !bytes.Equal(eth.DstMAC, fr.Dst[:]) {
				t.Fatalf("Ethernet addresses: ours %v>%v gopacket %v>%v", fr.Src, fr.Dst, eth.SrcMAC, eth.DstMAC)
			}
			if !bytes.Equal(arp.Payload, data[42:]) {
				t.Fatalf("gopacket padding % x, want % x", arp.Payload, data[42:])
			}
			// The full decoding path must agree too.
			pk := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
			l, ok := pk.Layer(layers.LayerTypeARP).(*layers.ARP)
			if !ok || pk.ErrorLayer() != nil {
				t.Fatalf("gopacket.NewPacket found no ARP layer: %v", pk)
			}
			if l.Operation != arp.Operation || !bytes.Equal(l.SourceHwAddress, arp.SourceHwAddress) || !bytes.Equal(l.DstProtAddress, arp.DstProtAddress) {
				t.Fatalf("gopacket.NewPacket disagrees with DecodeFromBytes: %+v", l)
			}
		case errors.Is(err, acd.ErrTruncated):
			if len(data) >= 42 {
				t.Fatalf("ErrTruncated for %d bytes", len(data))
			}
			// gopacket may accept a shorter layout, never ours.
			if arpErr == nil && ethOK && ipv4OK {
				t.Fatalf("gopacket decoded a truncated Ethernet/IPv4 body of %d bytes", len(eth.Payload))
			}
		case errors.Is(err, acd.ErrHardwareType):
			if ethOK {
				t.Fatalf("ErrHardwareType but gopacket reads addrtype %v hlen %d", arp.AddrType, arp.HwAddressSize)
			}
		case errors.Is(err, acd.ErrProtocolType):
			if !ethOK || ipv4OK {
				t.Fatalf("ErrProtocolType but gopacket reads addrtype %v hlen %d proto %v plen %d", arp.AddrType, arp.HwAddressSize, arp.Protocol, arp.ProtAddressSize)
			}
		case errors.Is(err, acd.ErrUnknownOpcode):
			if !ethOK || !ipv4OK || arpErr != nil || panicked {
				t.Fatalf("ErrUnknownOpcode but gopacket: header ok %v/%v err %v", ethOK, ipv4OK, arpErr)
			}
			if arp.Operation == layers.ARPRequest || arp.Operation == layers.ARPReply {
				t.Fatalf("ErrUnknownOpcode but gopacket reads operation %d", arp.Operation)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// fuzzTiming derives a valid Timing and policy from seed. Bit 8 selects
// nanosecond-scale timing, which stresses the timer arithmetic.
func fuzzTiming(seed uint64) (acd.Timing, acd.DefendPolicy) {
	rng := rand.New(rand.NewPCG(seed, 1))
	unit := time.Millisecond
	if seed&0x100 != 0 {
		unit = time.Nanosecond
	}
	dur := func(lo, hi int64) time.Duration { return time.Duration(lo+rng.Int64N(hi-lo+1)) * unit }
	tm := acd.Timing{
		ProbeWait:        dur(1, 2000),
		ProbeNum:         1 + rng.IntN(4),
		ProbeMin:         dur(1, 2000),
		AnnounceWait:     dur(1, 3000),
		AnnounceNum:      1 + rng.IntN(4),
		AnnounceInterval: dur(1, 3000),
		DefendInterval:   dur(1, 15000),
	}
	tm.ProbeMax = tm.ProbeMin + dur(0, 2000)
	return tm, acd.DefendPolicy(rng.IntN(3))
}

// detectorChecker runs a detector through a fuzz script and checks the
// protocol invariants after every step.
type detectorChecker struct {
	t    *testing.T
	d    *acd.Detector
	tm   acd.Timing
	pol  acd.DefendPolicy
	now  time.Time
	buf  []acd.Output
	seen map[string]int // notable events, for checking the seeds

	// Per attempt, reset by Start.
	running    bool
	startAt    time.Time
	delay      time.Duration
	late       bool // a timer fired after its deadline in this attempt
	probes     []time.Time
	ready      bool
	series     int       // scheduled announcements in the current series
	lastAnn    time.Time // last scheduled announcement
	defended   bool
	lastDefend time.Time
}

func (c *detectorChecker) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("at +%v (state %v): %s", c.now.Sub(epoch), c.d.State(), fmt.Sprintf(format, args...))
}

// timer fires HandleTimer at c.now and checks what it sends.
func (c *detectorChecker) timer() {
	c.t.Helper()
	if dl, ok := c.d.Deadline(); ok && dl.Before(c.now) {
		c.late = true
		c.seen["late"]++
	}
	wasRunning := c.running
	c.d.HandleTimer(c.now)
	outs := c.drain()
	if !wasRunning && len(outs) > 0 {
		c.fail("stopped detector output %v on a timer", outs)
	}
	if len(outs) == 0 {
		return
	}
	e := outs[0]
	c.checkSend(e)
	p := e.Frame.Packet
	switch {
	case p.IsProbe():
		if c.ready || len(c.probes) >= c.tm.ProbeNum {
			c.fail("probe %d after %d probes, ready %v", len(c.probes)+1, c.tm.ProbeNum, c.ready)
		}
		if len(c.probes) == 0 {
			wait := c.now.Sub(c.startAt)
			if wait < c.delay || (!c.late && wait > c.delay+c.tm.ProbeWait) {
				c.fail("first probe %v after Start, want %v + [0, %v]", wait, c.delay, c.tm.ProbeWait)
			}
			if len(outs) != 2 || outs[1].Kind != acd.OutProbeStart || outs[1].Addr != candIP {
				c.fail("first probe not followed by probe-start: %v", outs)
			}
		} else {
			gap := c.now.Sub(c.probes[len(c.probes)-1])
			if gap < c.tm.ProbeMin || (!c.late && gap > c.tm.ProbeMax) {
				c.fail("probe gap %v, want [%v, %v]", gap, c.tm.ProbeMin, c.tm.ProbeMax)
			}
			if len(outs) != 1 {
				c.fail("later probe with extra outputs %v", outs)
			}
		}
		c.probes = append(c.probes, c.now)
	case p.IsAnnouncement():
		if !c.ready {
			if len(c.probes) != c.tm.ProbeNum {
				c.fail("announcing after %d probes, want %d", len(c.probes), c.tm.ProbeNum)
			}
			if w := c.now.Sub(c.probes[len(c.probes)-1]); w < c.tm.AnnounceWait || (!c.late && w != c.tm.AnnounceWait) {
				c.fail("first announcement %v after the last probe, want ANNOUNCE_WAIT %v", w, c.tm.AnnounceWait)
			}
			if len(outs) != 2 || outs[1].Kind != acd.OutReady || outs[1].Addr != candIP {
				c.fail("first announcement not followed by ready: %v", outs)
			}
			c.ready = true
			c.seen["ready"]++
		} else {
			if gap := c.now.Sub(c.lastAnn); gap < c.tm.AnnounceInterval || (!c.late && gap != c.tm.AnnounceInterval) {
				c.fail("announcement gap %v, want %v", gap, c.tm.AnnounceInterval)
			}
			if len(outs) != 1 {
				c.fail("later announcement with extra outputs %v", outs)
			}
		}
		c.series++
		if c.series > c.tm.AnnounceNum {
			c.fail("%d announcements in a series, ANNOUNCE_NUM %d", c.series, c.tm.AnnounceNum)
		}
		c.lastAnn = c.now
	default:
		c.fail("timer sent neither probe nor announcement: %+v", p)
	}
	if next, ok := c.d.Deadline(); ok && !next.After(c.now) {
		c.fail("deadline %v not after the timer at %v", next.Sub(epoch), c.now.Sub(epoch))
	}
}

// checkSend checks what every sent frame must look like (R06, R12, R14).
func (c *detectorChecker) checkSend(e acd.Output) {
	c.t.Helper()
	f := e.Frame
	if e.Kind != acd.OutSend || e.Addr != candIP || f.Dst != acd.BroadcastMAC || f.Src != selfMAC || f.SenderHW != selfMAC ||
		f.Op != acd.OpRequest || !f.TargetHW.IsZero() || f.TargetIP != candIP || (f.SenderIP != zeroIP && f.SenderIP != candIP) {
		c.fail("bad send %+v", e)
	}
}

func (c *detectorChecker) drain() []acd.Output {
	c.buf = c.d.AppendOutputs(c.buf[:0])
	if c.d.HasOutputs() {
		c.fail("outputs left after AppendOutputs")
	}
	return c.buf
}

// frame feeds f and checks the reaction.
func (c *detectorChecker) frame(f acd.Frame) {
	c.t.Helper()
	phase := c.d.State().Phase()
	want := acd.Classify(phase, f, selfMAC, c.d.Addr())
	v := c.d.HandleFrame(c.now, f)
	outs := c.drain()
	if v != want {
		c.fail("HandleFrame verdict %v, Classify says %v", v, want)
	}
	if f.SenderHW == selfMAC && (v != acd.VerdictOwn || len(outs) != 0) {
		c.fail("own frame gave %v %v", v, outs)
	}
	c.seen["verdict-"+v.String()]++
	if !v.IsConflict() {
		if len(outs) != 0 {
			c.fail("non-conflict %v gave outputs %v", v, outs)
		}
		return
	}
	if !c.running {
		c.fail("conflict %v while stopped", v)
	}
	recent := c.defended && c.now.Sub(c.lastDefend) < c.tm.DefendInterval
	switch {
	case len(outs) == 1 && outs[0].Kind == acd.OutConflict:
		o := outs[0]
		if o.Phase != phase || o.Verdict != v || o.Frame != f || o.Addr != candIP {
			c.fail("conflict output %+v", o)
		}
		if phase == acd.PhaseBound && !(c.pol == acd.Abandon || (c.pol == acd.DefendOnce && recent)) {
			c.fail("gave the bound address up under %v (defended %v, last +%v)", c.pol, c.defended, c.lastDefend.Sub(epoch))
		}
		if c.d.State() != acd.StateStopped {
			c.fail("still %v after conflict", c.d.State())
		}
		c.running = false
		c.seen["conflict-"+phase.String()]++
	case len(outs) == 2 && outs[1].Kind == acd.OutDefend:
		c.checkSend(outs[0])
		if !outs[0].Frame.IsAnnouncement() || phase != acd.PhaseBound || c.pol == acd.Abandon || recent {
			c.fail("defence %v in %v under %v, recent %v", outs, phase, c.pol, recent)
		}
		if o := outs[1]; o.Verdict != v || o.Frame != f || o.Addr != candIP {
			c.fail("defend output %+v", o)
		}
		c.defended, c.lastDefend = true, c.now
		c.seen["defend"]++
	case len(outs) == 1 && outs[0].Kind == acd.OutDefendSuppressed:
		if phase != acd.PhaseBound || c.pol != acd.DefendForever || !recent {
			c.fail("suppressed in %v under %v, recent %v", phase, c.pol, recent)
		}
		c.seen["suppressed"]++
	default:
		c.fail("conflict %v gave outputs %v", v, outs)
	}
}

// fuzzMACs and fuzzIPs are what structured fuzz frames are made of.
var (
	fuzzMACs = []acd.MAC{selfMAC, otherMAC, {}, acd.BroadcastMAC, mcastMAC, bridgeMAC}
	fuzzIPs  = []netip.Addr{zeroIP, candIP, otherIP}
)

// FuzzDetector interprets the script as steps (start, stop, reannounce,
// clock advances with a perfect or a late timer, structured and mutated
// frames) and checks after every step: nothing is sent while stopped; every
// frame sent is a broadcast probe or announcement from our MAC (R06, R12,
// R14); probes and announcements keep their RFC spacing; OutReady only
// after PROBE_NUM probes and ANNOUNCE_WAIT (R10); at most one defence per
// DEFEND_INTERVAL (R15, R17); our own frames never conflict (R09); the
// verdict is Classify's.
func FuzzDetector(f *testing.F) {
	for _, sd := range detectorSeeds {
		f.Add(sd.seed, sd.script)
	}
	f.Fuzz(func(t *testing.T, seed uint64, script []byte) { runDetectorScript(t, seed, script) })
}

// runDetectorScript runs one FuzzDetector input and returns how often each
// notable event happened, so that tests can check the seeds reach them.
func runDetectorScript(t *testing.T, seed uint64, script []byte) map[string]int {
	if len(script) > 4096 {
		return nil
	}
	tm, pol := fuzzTiming(seed)
	d, err := acd.NewDetector(acd.DetectorConfig{HW: selfMAC, Timing: tm, Defend: pol, Rand: rand.New(rand.NewPCG(seed, 2))})
	if err != nil {
		t.Fatalf("NewDetector(%+v): %v", tm, err)
	}
	c := &detectorChecker{t: t, d: d, tm: tm, pol: pol, now: epoch, seen: map[string]int{}}
	next := func() byte {
		if len(script) == 0 {
			return 0
		}
		b := script[0]
		script = script[1:]
		return b
	}
	for len(script) > 0 {
		switch op := next(); op % 8 {
		case 0: // Start
			c.delay = time.Duration(next()) * tm.ProbeWait / 64
			if err := d.Start(c.now, candIP, c.delay); err != nil {
				t.Fatal(err)
			}
			if outs := c.drain(); len(outs) != 0 {
				c.fail("Start output %v", outs)
			}
			*c = detectorChecker{t: t, d: d, tm: tm, pol: pol, now: c.now, buf: c.buf, seen: c.seen, running: true, startAt: c.now, delay: c.delay}
		case 1: // Stop
			d.Stop()
			if outs := c.drain(); len(outs) != 0 {
				c.fail("Stop output %v", outs)
			}
			c.running = false
		case 2: // Reannounce
			bound := c.running && c.ready
			d.Reannounce(c.now)
			outs := c.drain()
			if !bound {
				if len(outs) != 0 {
					c.fail("Reannounce while not bound output %v", outs)
				}
				break
			}
			if len(outs) != 1 || !outs[0].Frame.IsAnnouncement() {
				c.fail("Reannounce output %v", outs)
			}
			c.checkSend(outs[0])
			c.series, c.lastAnn = 1, c.now
			c.seen["reannounce"]++
		case 3: // advance with a perfect timer
			to := c.now.Add(time.Duration(int(next())<<8|int(next())) * tm.ProbeMin / 256)
			for i := 0; ; i++ {
				dl, ok := d.Deadline()
				if !ok || dl.After(to) {
					break
				}
				if i > 100 {
					c.fail("more than 100 timers in one advance")
				}
				if dl.After(c.now) {
					c.now = dl
				}
				c.timer()
			}
			c.now = to
		case 4: // advance, then one late timer
			c.now = c.now.Add(time.Duration(int(next())<<8|int(next())) * tm.ProbeMin / 256)
			c.timer()
		case 5, 6: // a structured frame
			a, b := next(), next()
			sha := fuzzMACs[int(a)%len(fuzzMACs)]
			op := acd.OpRequest
			if a&0x08 != 0 {
				op = acd.OpReply
			}
			p := pkt(op, sha, fuzzIPs[int(a>>4)%3], fuzzMACs[int(b>>2)%3], fuzzIPs[int(b)%3])
			src := []acd.MAC{sha, selfMAC, bridgeMAC}[int(b>>4)%3]
			c.frame(bcast(src, p))
		case 7: // a mutated frame, through the decoder
			raw := wire(t, bcast(otherMAC, acd.Probe(otherMAC, candIP)))
			for n := next() % 8; n > 0; n-- {
				raw[int(next())%len(raw)] = next()
			}
			if fr, err := acd.DecodeFrame(raw); err == nil {
				c.frame(fr)
			}
		}
		if c.running != (d.State() != acd.StateStopped) {
			c.fail("detector running %v, checker thinks %v", d.State() != acd.StateStopped, c.running)
		}
		if (d.State().Phase() == acd.PhaseBound) != (c.running && c.ready) {
			c.fail("phase %v but ready %v running %v", d.State().Phase(), c.ready, c.running)
		}
		dl, ok := d.Deadline()
		if !c.running && ok {
			c.fail("stopped detector has a deadline")
		}
		if ok && dl.Before(c.now) {
			c.fail("deadline %v in the past: the detector would stall", dl.Sub(epoch))
		}
	}
	return c.seen
}

// detectorSeeds are FuzzDetector's seed inputs. TestFuzzDetectorSeeds
// checks that together they reach every notable event.
var detectorSeeds = []struct {
	seed   uint64
	script []byte
}{
	// Policy once: claim, defend, lose within DEFEND_INTERVAL.
	{0, []byte{0, 0, 3, 0xff, 0xff, 3, 0xff, 0xff, 5, 0x19, 0x01, 3, 0x00, 0x01, 5, 0x19, 0x01}},
	// Policy abandon: claim, reannounce, lose at the first conflict.
	{1, []byte{0, 10, 3, 0xff, 0xff, 3, 0xff, 0xff, 2, 3, 0xff, 0xff, 5, 0x11, 0x00}},
	// Late timers all the way, then stop.
	{2, []byte{0, 0, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 4, 0x80, 0x00, 1, 3, 0xff, 0xff}},
	// Nanosecond timing, conflicts while probing, own frames, mutated frames.
	{0x102, []byte{0, 0, 5, 0x02, 0x00, 5, 0x10, 0x01, 5, 0x00, 0x01, 3, 0x00, 0x01, 6, 0x11, 0x01, 7, 4, 21, 3, 14, 1, 0, 0, 5, 0x01, 0x00}},
	// Policy forever: claim, flood of conflicts, defence, suppression.
	{12, []byte{0, 0, 3, 0xff, 0xff, 3, 0xff, 0xff, 5, 0x25, 0x01, 5, 0x19, 0x01, 5, 0x11, 0x01, 5, 0x11, 0x02, 3, 0xff, 0xff, 5, 0x11, 0x01}},
	// Simultaneous probe.
	{7, []byte{0, 0, 3, 0x01, 0x00, 5, 0x01, 0x01}},
}

// TestFuzzDetectorSeeds runs FuzzDetector's seeds and checks they reach the
// states worth fuzzing from, so that the seed corpus cannot silently rot.
func TestFuzzDetectorSeeds(t *testing.T) {
	total := map[string]int{}
	for i, sd := range detectorSeeds {
		_, pol := fuzzTiming(sd.seed)
		seen := runDetectorScript(t, sd.seed, sd.script)
		t.Logf("seed %d (policy %v): %v", i, pol, seen)
		for k, v := range seen {
			total[k] += v
		}
	}
	for _, k := range []string{"ready", "defend", "suppressed", "conflict-probing", "conflict-bound", "reannounce", "late", "verdict-own", "verdict-bad-sender", "verdict-query", "verdict-probe-conflict"} {
		if total[k] == 0 {
			t.Errorf("no seed reaches %q; seen %v", k, total)
		}
	}
}
