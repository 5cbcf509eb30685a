package autoip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// badFrame is a frame the engine must count and ignore.
type badFrame struct {
	name    string
	bytes   []byte
	verdict acd.Verdict
	counter func(Stats) uint64
}

// badFrames builds, around addr (our candidate or bound address), frames
// that would conflict if they were well formed: the only thing wrong with
// each is its framing or its sender.
func badFrames(addr netip.Addr) []badFrame {
	good := rawFrame(announceFrom(rogueMAC, addr))
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	malformed := func(s Stats) uint64 { return s.Malformed }
	notARP := func(s Stats) uint64 { return s.NotARP }
	badSender := func(s Stats) uint64 { return s.BadSender }
	withSender := func(m acd.MAC) []byte {
		// A probe: an impossible sender claiming addr itself would be a
		// conflict all the same (R29).
		f := probeFrom(m, addr)
		f.Src = rogueMAC
		return rawFrame(f)
	}
	return []badFrame{
		{"empty", nil, acd.VerdictMalformed, malformed},
		{"one byte", []byte{0x08}, acd.VerdictMalformed, malformed},
		{"truncated ethernet header", good[:13], acd.VerdictMalformed, malformed},
		{"ethernet header only", good[:14], acd.VerdictMalformed, malformed},
		{"truncated ARP body", good[:14+27], acd.VerdictMalformed, malformed},
		{"hardware type 6", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[14:], 6); return b }), acd.VerdictMalformed, malformed},
		{"hardware length 8", mod(func(b []byte) []byte { b[18] = 8; return b }), acd.VerdictMalformed, malformed},
		{"hardware length 0", mod(func(b []byte) []byte { b[18] = 0; return b }), acd.VerdictMalformed, malformed},
		{"protocol IPv6", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[16:], 0x86dd); return b }), acd.VerdictMalformed, malformed},
		{"protocol length 16", mod(func(b []byte) []byte { b[19] = 16; return b }), acd.VerdictMalformed, malformed},
		{"opcode 0", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[20:], 0); return b }), acd.VerdictMalformed, malformed},
		{"opcode 3 (RARP request)", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[20:], 3); return b }), acd.VerdictMalformed, malformed},
		{"opcode 0xffff", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[20:], 0xffff); return b }), acd.VerdictMalformed, malformed},
		{"ethertype IPv4", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], 0x0800); return b }), acd.VerdictNotARP, notARP},
		{"ethertype IPv6", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], 0x86dd); return b }), acd.VerdictNotARP, notARP},
		{"ethertype RARP", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], 0x8035); return b }), acd.VerdictNotARP, notARP},
		{"VLAN-tagged ARP", mod(func(b []byte) []byte {
			return append(append(append([]byte(nil), b[:12]...), 0x81, 0x00, 0x00, 0x05), b[12:]...)
		}), acd.VerdictNotARP, notARP},
		{"802.3 length field", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], 46); return b }), acd.VerdictNotARP, notARP},
		{"zero sender MAC", withSender(acd.MAC{}), acd.VerdictBadSender, badSender},
		{"broadcast sender MAC", withSender(acd.BroadcastMAC), acd.VerdictBadSender, badSender},
		{"multicast sender MAC", withSender(acd.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}), acd.VerdictBadSender, badSender},
		{"IPv6 multicast sender MAC", withSender(acd.MAC{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}), acd.VerdictBadSender, badSender},
	}
}

// TestR24_MalformedFramesCountedAndIgnored: each bad frame is classified,
// counted under its reason, and produces no output, at every stage.
func TestR24_MalformedFramesCountedAndIgnored(t *testing.T) {
	stages := append(probingStages(acd.DefaultTiming()), stage{"bound", func(h *harness) netip.Addr {
		a := h.runUntilBound()
		h.runUntilIdle(time.Minute)
		return a
	}}, stage{"announcing", func(h *harness) netip.Addr { return h.runUntilBound() }})
	for _, st := range stages {
		t.Run(st.name, func(t *testing.T) {
			h := startedHarness(t, testConfig())
			addr := st.run(h)
			for _, bf := range badFrames(addr) {
				before := h.e.Status()
				dl, dok := h.e.Deadline()
				v, got := h.injectRaw(bf.bytes)
				after := h.e.Status()
				if v != bf.verdict {
					t.Errorf("%s: verdict %v, want %v", bf.name, v, bf.verdict)
				}
				if len(got) != 0 {
					t.Errorf("%s: outputs %v", bf.name, got)
				}
				if d := bf.counter(after.Stats) - bf.counter(before.Stats); d != 1 {
					t.Errorf("%s: counter moved by %d, want 1", bf.name, d)
				}
				if after.Stats.Frames != before.Stats.Frames+1 {
					t.Errorf("%s: Stats.Frames %d -> %d", bf.name, before.Stats.Frames, after.Stats.Frames)
				}
				if !v.Drop() && v != acd.VerdictNotARP {
					t.Errorf("%s: verdict %v not dropped", bf.name, v)
				}
				bs, as := before, after
				bs.Stats, as.Stats = Stats{}, Stats{}
				if fmt.Sprint(bs) != fmt.Sprint(as) {
					t.Errorf("%s: status changed %+v -> %+v", bf.name, bs, as)
				}
				if d2, ok2 := h.e.Deadline(); d2 != dl || ok2 != dok {
					t.Errorf("%s: deadline changed", bf.name)
				}
			}
			// Decoded bad senders through HandleARP too.
			for _, m := range []acd.MAC{{}, acd.BroadcastMAC, {0x01, 0, 0, 0, 0, 0}} {
				if v, got := h.inject(probeFrom(m, addr)); v != acd.VerdictBadSender || len(got) != 0 {
					t.Errorf("sender %v: %v %v", m, v, got)
				}
			}
		})
	}
}

// TestR24_GarbageChangesNothing: a run interleaved with every kind of bad
// frame, at every stage, produces exactly the outputs of a clean run.
func TestR24_GarbageChangesNothing(t *testing.T) {
	run := func(garbage bool) (*harness, []string) {
		h := startedHarness(t, testConfig())
		spray := func() {
			if !garbage {
				return
			}
			addr := h.e.Status().Addr
			for _, bf := range badFrames(addr) {
				h.injectRaw(bf.bytes)
			}
			// Random bytes of every length, with the ARP ethertype.
			for n := 0; n < 80; n++ {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(i*31 + n*7)
				}
				if n >= 14 {
					binary.BigEndian.PutUint16(b[12:], acd.EtherTypeARP)
				}
				h.injectRaw(b)
			}
		}
		spray()
		for i := 0; i < 12; i++ {
			d, ok := h.e.Deadline()
			if !ok {
				break
			}
			h.advanceTo(d.Add(-time.Millisecond))
			spray()
			h.next()
			spray()
		}
		h.advance(time.Minute)
		spray()
		return h, fmtSteps(h.outs)
	}
	clean, want := run(false)
	dirty, got := run(true)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("garbage changed the outputs:\nclean:\n%s\nwith garbage:\n%s", clean.dump(), dirty.dump())
	}
	if len(events(dirty.outs, EventBind)) != 1 {
		t.Fatalf("no bind:\n%s", dirty.dump())
	}
	s := dirty.e.Status().Stats
	if s.Malformed == 0 || s.NotARP == 0 || s.BadSender == 0 {
		t.Errorf("stats %+v", s)
	}
	if s.Frames != s.Malformed+s.NotARP+s.BadSender {
		t.Errorf("Frames %d != Malformed %d + NotARP %d + BadSender %d", s.Frames, s.Malformed, s.NotARP, s.BadSender)
	}
}
