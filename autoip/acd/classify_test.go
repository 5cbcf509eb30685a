package acd_test

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
)

// mustHex decodes a hex string written with optional spaces.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\n' && s[i] != '\t' {
			clean = append(clean, s[i])
		}
	}
	b, err := hex.DecodeString(string(clean))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestClassify_R07_R08_R09_R15_R24 is the table of what every kind of ARP frame
// means in every phase. Each row decodes its wire bytes with DecodeFrame
// first, so the table also pins which frames never reach Classify (R24).
func TestClassify_R07_R08_R09_R15_R24(t *testing.T) {
	var (
		probeP        = acd.PhaseProbing
		boundP        = acd.PhaseBound
		idleP         = acd.PhaseIdle
		zeroMAC       acd.MAC
		w             = func(f acd.Frame) []byte { return wire(t, f) }
		otherAnnounce = w(bcast(otherMAC, acd.Announcement(otherMAC, candIP)))
	)
	// A valid frame to corrupt for the decode-error rows.
	good := w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, zeroMAC, candIP)))

	tests := []struct {
		name    string
		rule    string
		phase   acd.Phase
		frame   []byte
		wantErr error
		want    acd.Verdict
	}{
		// R09: our own frames seen again, in every phase, whatever they say.
		{name: "own probe looped back while probing", rule: "R09", phase: probeP,
			frame: w(acd.BroadcastFrame(acd.Probe(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own announcement looped back while probing", rule: "R09", phase: probeP,
			frame: w(acd.BroadcastFrame(acd.Announcement(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own announcement looped back while bound", rule: "R09", phase: boundP,
			frame: w(acd.BroadcastFrame(acd.Announcement(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own probe looped back while bound", rule: "R09", phase: boundP,
			frame: w(acd.BroadcastFrame(acd.Probe(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own announcement while idle", rule: "R09", phase: idleP,
			frame: w(acd.BroadcastFrame(acd.Announcement(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own reply from bound address looped back", rule: "R09", phase: boundP,
			frame: w(bcast(selfMAC, pkt(acd.OpReply, selfMAC, candIP, otherMAC, otherIP))), want: acd.VerdictOwn},
		{name: "own announcement echoed by bridge rewriting eth src, probing", rule: "R09", phase: probeP,
			frame: w(bcast(bridgeMAC, acd.Announcement(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own probe echoed by bridge rewriting eth src, probing", rule: "R09", phase: probeP,
			frame: w(bcast(bridgeMAC, acd.Probe(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own announcement echoed by bridge rewriting eth src, bound", rule: "R09", phase: boundP,
			frame: w(bcast(otherMAC, acd.Announcement(selfMAC, candIP))), want: acd.VerdictOwn},
		{name: "own frame, hand-written bytes", rule: "R09", phase: probeP,
			frame: mustHex(t, "ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 a9fe0a14 000000000000 a9fe0a14"),
			want:  acd.VerdictOwn},

		// R24: impossible senders are counted and ignored...
		{name: "multicast sender MAC probing for candidate", rule: "R24", phase: probeP,
			frame: w(bcast(otherMAC, acd.Probe(mcastMAC, candIP))), want: acd.VerdictBadSender},
		{name: "zero sender MAC while idle", rule: "R24", phase: idleP,
			frame: w(bcast(otherMAC, acd.Announcement(zeroMAC, otherIP))), want: acd.VerdictBadSender},
		{name: "zero sender MAC claiming another address", rule: "R24", phase: boundP,
			frame: w(bcast(otherMAC, acd.Announcement(zeroMAC, otherIP))), want: acd.VerdictBadSender},
		// R29: ...unless they claim our candidate or address: a conflict all the same.
		{name: "zero sender MAC claiming candidate", rule: "R29", phase: probeP,
			frame: w(bcast(otherMAC, acd.Announcement(zeroMAC, candIP))), want: acd.VerdictConflict},
		{name: "broadcast sender MAC claiming bound address", rule: "R29", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpReply, acd.BroadcastMAC, candIP, selfMAC, otherIP))), want: acd.VerdictConflict},
		{name: "multicast 01:00:5e sender MAC claiming bound address", rule: "R29", phase: boundP,
			frame: w(bcast(otherMAC, acd.Announcement(mcastMAC, candIP))), want: acd.VerdictConflict},
		{name: "multicast sender MAC with eth src ours", rule: "R29", phase: boundP,
			frame: w(bcast(selfMAC, acd.Announcement(acd.MAC{0x03, 0, 0, 0, 0, 1}, candIP))), want: acd.VerdictConflict},

		// Queries: someone asks about our address without claiming it.
		{name: "plain request for candidate while probing", rule: "R07", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, zeroMAC, candIP))), want: acd.VerdictQuery},
		{name: "plain request for bound address", rule: "R15", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, zeroMAC, candIP))), want: acd.VerdictQuery},
		{name: "reply to us from another address", rule: "R15", phase: boundP,
			frame: w(acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP)}), want: acd.VerdictQuery},
		{name: "another host's probe for bound address", rule: "R08", phase: boundP,
			frame: w(bcast(otherMAC, acd.Probe(otherMAC, candIP))), want: acd.VerdictQuery},

		// R08: simultaneous probe.
		{name: "another host's probe for candidate while probing", rule: "R08", phase: probeP,
			frame: w(bcast(otherMAC, acd.Probe(otherMAC, candIP))), want: acd.VerdictProbeConflict},
		{name: "another host's probe with nonzero target HW", rule: "R08", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, zeroIP, selfMAC, candIP))), want: acd.VerdictProbeConflict},
		{name: "another host's probe for candidate, hand-written", rule: "R08", phase: probeP,
			frame: mustHex(t, "ffffffffffff 020000000002 0806 0001 0800 06 04 0001 020000000002 00000000 000000000000 a9fe0a14"+
				"000000000000000000000000000000000000"),
			want: acd.VerdictProbeConflict},

		// R07: sender IP is the candidate while probing.
		{name: "announcement of candidate while probing", rule: "R07", phase: probeP,
			frame: otherAnnounce, want: acd.VerdictConflict},
		{name: "reply from candidate while probing", rule: "R07", phase: probeP,
			frame: w(acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, candIP, selfMAC, zeroIP)}), want: acd.VerdictConflict},
		{name: "request from candidate (not an announcement) while probing", rule: "R07", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, candIP, zeroMAC, otherIP))), want: acd.VerdictConflict},
		{name: "gratuitous reply of candidate while probing", rule: "R07", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpReply, otherMAC, candIP, acd.BroadcastMAC, candIP))), want: acd.VerdictConflict},
		{name: "announcement of candidate, hand-written, padded", rule: "R07", phase: probeP,
			frame: mustHex(t, "ffffffffffff 020000000002 0806 0001 0800 06 04 0001 020000000002 a9fe0a14 000000000000 a9fe0a14"+
				"deadbeefdeadbeefdeadbeefdeadbeefdead"),
			want: acd.VerdictConflict},

		// R15: sender IP is our bound address.
		{name: "announcement of bound address", rule: "R15", phase: boundP,
			frame: otherAnnounce, want: acd.VerdictConflict},
		{name: "broadcast reply from bound address", rule: "R14/R15", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpReply, otherMAC, candIP, otherMAC, otherIP))), want: acd.VerdictConflict},
		{name: "unicast reply from bound address", rule: "R15", phase: boundP,
			frame: w(acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, candIP, selfMAC, otherIP)}), want: acd.VerdictConflict},
		{name: "gratuitous reply of bound address", rule: "R15", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpReply, otherMAC, candIP, zeroMAC, candIP))), want: acd.VerdictConflict},
		{name: "request from bound address", rule: "R15", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, candIP, zeroMAC, otherIP))), want: acd.VerdictConflict},
		{name: "foreign SHA claiming bound address behind rewriting bridge", rule: "R15", phase: boundP,
			frame: w(bcast(bridgeMAC, acd.Announcement(otherMAC, candIP))), want: acd.VerdictConflict},
		{name: "foreign SHA claiming candidate with eth src ours", rule: "R07", phase: probeP,
			frame: w(bcast(selfMAC, acd.Announcement(otherMAC, candIP))), want: acd.VerdictConflict},
		{name: "foreign SHA claiming bound address with eth src ours", rule: "R15", phase: boundP,
			frame: w(bcast(selfMAC, pkt(acd.OpReply, otherMAC, candIP, selfMAC, candIP))), want: acd.VerdictConflict},

		// Frames about other addresses, and phases with nothing to protect.
		{name: "request between two other hosts while bound", rule: "R15", phase: boundP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, zeroMAC, thirdIP))), want: acd.VerdictUnrelated},
		{name: "request between two other hosts while probing", rule: "R07", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, zeroMAC, thirdIP))), want: acd.VerdictUnrelated},
		{name: "probe for another address while probing", rule: "R08", phase: probeP,
			frame: w(bcast(otherMAC, acd.Probe(otherMAC, otherIP))), want: acd.VerdictUnrelated},
		{name: "announcement of another address while bound", rule: "R15", phase: boundP,
			frame: w(bcast(otherMAC, acd.Announcement(otherMAC, otherIP))), want: acd.VerdictUnrelated},
		{name: "gratuitous reply of another address while probing", rule: "R07", phase: probeP,
			frame: w(bcast(otherMAC, pkt(acd.OpReply, otherMAC, otherIP, zeroMAC, otherIP))), want: acd.VerdictUnrelated},
		{name: "reply to our MAC about other addresses", rule: "R15", phase: boundP,
			frame: w(acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, otherIP, selfMAC, thirdIP)}), want: acd.VerdictUnrelated},
		{name: "announcement of candidate while idle", rule: "R07", phase: idleP,
			frame: otherAnnounce, want: acd.VerdictUnrelated},
		{name: "probe for candidate while idle", rule: "R08", phase: idleP,
			frame: w(bcast(otherMAC, acd.Probe(otherMAC, candIP))), want: acd.VerdictUnrelated},

		// R24: frames that are not Ethernet/IPv4 ARP never reach Classify.
		{name: "hardware type 6 (IEEE 802)", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[14], b[15] = 0, 6 }), wantErr: acd.ErrHardwareType},
		{name: "hardware address length 8", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[18] = 8 }), wantErr: acd.ErrHardwareType},
		{name: "protocol type 0x86dd", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[16], b[17] = 0x86, 0xdd }), wantErr: acd.ErrProtocolType},
		{name: "protocol address length 16", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[19] = 16 }), wantErr: acd.ErrProtocolType},
		{name: "unknown opcode 3 (RARP request)", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[20], b[21] = 0, 3 }), wantErr: acd.ErrUnknownOpcode},
		{name: "opcode 0", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[20], b[21] = 0, 0 }), wantErr: acd.ErrUnknownOpcode},
		{name: "opcode 0x0101", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[20], b[21] = 1, 1 }), wantErr: acd.ErrUnknownOpcode},
		{name: "truncated to 41 bytes", rule: "R24", phase: boundP,
			frame: good[:41], wantErr: acd.ErrTruncated},
		{name: "Ethernet header only", rule: "R24", phase: boundP,
			frame: good[:14], wantErr: acd.ErrTruncated},
		{name: "shorter than an Ethernet header", rule: "R24", phase: boundP,
			frame: good[:13], wantErr: acd.ErrTruncated},
		{name: "empty", rule: "R24", phase: boundP,
			frame: nil, wantErr: acd.ErrTruncated},
		{name: "ethertype 0x0800 (IPv4)", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[12], b[13] = 0x08, 0x00 }), wantErr: acd.ErrNotARP},
		{name: "802.1Q tagged ARP", rule: "R24", phase: boundP,
			frame:   mustHex(t, "ffffffffffff 020000000002 8100 0001 0806 0001 0800 06 04 0001 020000000002 a9fe0a14 000000000000 a9fe0a14"),
			wantErr: acd.ErrNotARP},
		{name: "reversed ethertype 0x0608", rule: "R24", phase: boundP,
			frame: edit(good, func(b []byte) { b[12], b[13] = 0x06, 0x08 }), wantErr: acd.ErrNotARP},
		{name: "ethertype wrong and ARP body truncated: ethertype wins", rule: "R24", phase: boundP,
			frame: edit(good[:20], func(b []byte) { b[12] = 0x86; b[13] = 0xdd }), wantErr: acd.ErrNotARP},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.name, func(t *testing.T) {
			f, err := acd.DecodeFrame(tt.frame)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecodeFrame(% x) error = %v, want %v", tt.frame, err, tt.wantErr)
				}
				if f != (acd.Frame{}) {
					t.Errorf("DecodeFrame returned a non-zero frame with error %v: %+v", err, f)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeFrame(% x): %v", tt.frame, err)
			}
			got := acd.Classify(tt.phase, f, selfMAC, candIP)
			if got != tt.want {
				t.Errorf("Classify(%v, %+v) = %v, want %v", tt.phase, f.Packet, got, tt.want)
			}
		})
	}
}

// TestR08_SimultaneousProbeIsConflict checks, apart from the table, that the
// probe verdict depends on the phase: a conflict only while probing.
func TestR08_SimultaneousProbeIsConflict(t *testing.T) {
	f := bcast(otherMAC, acd.Probe(otherMAC, candIP))
	for _, tc := range []struct {
		phase acd.Phase
		want  acd.Verdict
	}{
		{acd.PhaseProbing, acd.VerdictProbeConflict},
		{acd.PhaseBound, acd.VerdictQuery},
		{acd.PhaseIdle, acd.VerdictUnrelated},
	} {
		t.Run(tc.phase.String(), func(t *testing.T) {
			if got := acd.Classify(tc.phase, f, selfMAC, candIP); got != tc.want {
				t.Errorf("Classify(%v, probe for candidate) = %v, want %v", tc.phase, got, tc.want)
			}
		})
	}
}

// TestR09_OwnSenderNeverConflicts classifies, in every phase, every frame
// shape with our sender hardware address, whatever its addresses say.
func TestR09_OwnSenderNeverConflicts(t *testing.T) {
	ips := []netip.Addr{zeroIP, candIP, otherIP}
	macs := []acd.MAC{{}, selfMAC, otherMAC, acd.BroadcastMAC}
	for _, phase := range []acd.Phase{acd.PhaseIdle, acd.PhaseProbing, acd.PhaseBound} {
		for _, op := range []acd.Op{acd.OpRequest, acd.OpReply} {
			for _, spa := range ips {
				for _, tpa := range ips {
					for _, src := range macs {
						f := acd.Frame{Dst: acd.BroadcastMAC, Src: src, Packet: pkt(op, selfMAC, spa, acd.MAC{}, tpa)}
						if v := acd.Classify(phase, f, selfMAC, candIP); v != acd.VerdictOwn {
							t.Errorf("Classify(%v, %v src=%v spa=%v tpa=%v) = %v, want own", phase, op, src, spa, tpa, v)
						}
					}
				}
			}
		}
	}
}

// TestR29_BadSenderClaimingOurAddressConflicts checks that an impossible
// sender hardware address is a conflict when the sender IP is our candidate
// or bound address (RFC 3927 §2.5 "MUST NOT ignore conflicting ARP
// packets") and is only counted otherwise (R24): probes (sender IP 0) and
// frames about other addresses, and anything while idle.
func TestR29_BadSenderClaimingOurAddressConflicts(t *testing.T) {
	bad := []acd.MAC{{}, acd.BroadcastMAC, mcastMAC, {0x33, 0x33, 0, 0, 0, 1}, {0x01, 0x80, 0xc2, 0, 0, 0}}
	for _, phase := range []acd.Phase{acd.PhaseIdle, acd.PhaseProbing, acd.PhaseBound} {
		for _, sha := range bad {
			claims := []acd.Packet{acd.Announcement(sha, candIP), pkt(acd.OpReply, sha, candIP, selfMAC, candIP), pkt(acd.OpRequest, sha, candIP, acd.MAC{}, otherIP)}
			for _, p := range claims {
				want := acd.VerdictConflict
				if phase == acd.PhaseIdle {
					want = acd.VerdictBadSender
				}
				if v := acd.Classify(phase, bcast(otherMAC, p), selfMAC, candIP); v != want {
					t.Errorf("Classify(%v, %v from %v claiming %v) = %v, want %v", phase, p.Kind(), sha, candIP, v, want)
				}
			}
			for _, p := range []acd.Packet{acd.Probe(sha, candIP), acd.Announcement(sha, otherIP)} {
				if v := acd.Classify(phase, bcast(otherMAC, p), selfMAC, candIP); v != acd.VerdictBadSender {
					t.Errorf("Classify(%v, %v from %v) = %v, want bad-sender", phase, p.Kind(), sha, v)
				}
			}
		}
	}
}

// TestVerdict_DropAndIsConflict pins Drop and IsConflict for every verdict.
func TestVerdict_DropAndIsConflict(t *testing.T) {
	tests := []struct {
		v          acd.Verdict
		name       string
		drop, conf bool
	}{
		{acd.VerdictUnrelated, "unrelated", false, false},
		{acd.VerdictOwn, "own", true, false},
		{acd.VerdictBadSender, "bad-sender", true, false},
		{acd.VerdictQuery, "query", false, false},
		{acd.VerdictConflict, "conflict", true, true},
		{acd.VerdictProbeConflict, "probe-conflict", true, true},
		{acd.VerdictMalformed, "malformed", true, false},
		{acd.VerdictNotARP, "not-arp", false, false},
		{0, "verdict(0)", false, false},
		{200, "verdict(200)", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Drop(); got != tt.drop {
				t.Errorf("%v.Drop() = %v, want %v", tt.v, got, tt.drop)
			}
			if got := tt.v.IsConflict(); got != tt.conf {
				t.Errorf("%v.IsConflict() = %v, want %v", tt.v, got, tt.conf)
			}
			if got := tt.v.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
		})
	}
}

// TestR24_DecodeErrorsAreDistinct checks that the decode errors are
// distinct sentinels, so that callers can count drops by reason.
func TestR24_DecodeErrorsAreDistinct(t *testing.T) {
	errs := []error{acd.ErrTruncated, acd.ErrNotARP, acd.ErrHardwareType, acd.ErrProtocolType, acd.ErrUnknownOpcode}
	for i, a := range errs {
		for j, b := range errs {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}

// TestClassify_NoAddress checks that a phase without a valid address
// protects nothing, even against a frame built in Go whose addresses are the
// zero netip.Addr too.
func TestClassify_NoAddress(t *testing.T) {
	f := bcast(otherMAC, acd.Packet{Op: acd.OpRequest, SenderHW: otherMAC})
	for _, phase := range []acd.Phase{acd.PhaseProbing, acd.PhaseBound} {
		if v := acd.Classify(phase, f, selfMAC, netip.Addr{}); v != acd.VerdictUnrelated {
			t.Errorf("Classify(%v, zero addresses, addr invalid) = %v, want unrelated", phase, v)
		}
	}
}

func TestPhaseString(t *testing.T) {
	for p, want := range map[acd.Phase]string{acd.PhaseIdle: "idle", acd.PhaseProbing: "probing", acd.PhaseBound: "bound", 9: "phase(9)"} {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d).String() = %q, want %q", p, got, want)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	f := bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, thirdIP))
	var v acd.Verdict
	allocs := testing.AllocsPerRun(100, func() { v = acd.Classify(acd.PhaseBound, f, selfMAC, candIP) })
	if allocs != 0 || v != acd.VerdictUnrelated {
		t.Errorf("Classify: %v allocs, verdict %v; want 0 allocs, unrelated", allocs, v)
	}
}
