package acd_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// checkProbe fails unless e sends an RFC 5227 probe for candIP (R06).
func checkProbe(t testing.TB, e event) {
	t.Helper()
	p := e.Frame.Packet
	if e.Kind != acd.OutSend || e.Addr != candIP || e.Frame.Dst != acd.BroadcastMAC || e.Frame.Src != selfMAC ||
		p.Op != acd.OpRequest || p.SenderHW != selfMAC || p.SenderIP != zeroIP || !p.TargetHW.IsZero() || p.TargetIP != candIP {
		t.Fatalf("not a probe for %v: %v", candIP, e)
	}
}

// checkAnnouncement fails unless e sends an RFC 5227 announcement of
// candIP (R12).
func checkAnnouncement(t testing.TB, e event) {
	t.Helper()
	p := e.Frame.Packet
	if e.Kind != acd.OutSend || e.Addr != candIP || e.Frame.Dst != acd.BroadcastMAC || e.Frame.Src != selfMAC ||
		p.Op != acd.OpRequest || p.SenderHW != selfMAC || p.SenderIP != candIP || !p.TargetHW.IsZero() || p.TargetIP != candIP {
		t.Fatalf("not an announcement of %v: %v", candIP, e)
	}
}

// claim starts d on candIP and runs it with a perfect timer until it holds
// the address with every announcement sent.
func claim(t testing.TB, d *acd.Detector) *sim {
	t.Helper()
	s := newSim(t, d)
	s.start(0)
	s.runUntil(acd.StateBound)
	return s
}

// probeSends and announceSends split a log's sends by packet shape.
func probeSends(evs []event) []event {
	var r []event
	for _, e := range sends(evs) {
		if e.Frame.IsProbe() {
			r = append(r, e)
		}
	}
	return r
}

func announceSends(evs []event) []event {
	var r []event
	for _, e := range sends(evs) {
		if e.Frame.IsAnnouncement() {
			r = append(r, e)
		}
	}
	return r
}

func TestNewDetector_Config(t *testing.T) {
	bad := []struct {
		name string
		cfg  acd.DetectorConfig
		want string
	}{
		{"zero HW", acd.DetectorConfig{}, "00:00:00:00:00:00"},
		{"broadcast HW", acd.DetectorConfig{HW: acd.BroadcastMAC}, "ff:ff:ff:ff:ff:ff"},
		{"multicast HW", acd.DetectorConfig{HW: mcastMAC}, "01:00:5e:00:00:01"},
		{"bad timing", acd.DetectorConfig{HW: selfMAC, Timing: acd.Timing{ProbeNum: -1}}, "PROBE_NUM"},
		{"unknown policy", acd.DetectorConfig{HW: selfMAC, Defend: acd.DefendForever + 1}, "policy 3"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d, err := acd.NewDetector(tt.cfg)
			if err == nil || d != nil {
				t.Fatalf("NewDetector = %v, %v; want error", d, err)
			}
			if !errors.Is(err, acd.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
	d, err := acd.NewDetector(acd.DetectorConfig{HW: selfMAC, Timing: acd.Timing{ProbeNum: 4}})
	if err != nil {
		t.Fatal(err)
	}
	want := acd.DefaultTiming()
	want.ProbeNum = 4
	if d.Timing() != want {
		t.Errorf("Timing() = %+v, want defaults with ProbeNum 4", d.Timing())
	}
	if d.State() != acd.StateStopped || d.Addr().IsValid() || d.HasOutputs() {
		t.Errorf("new detector: state %v addr %v outputs %v", d.State(), d.Addr(), d.HasOutputs())
	}
	if _, ok := d.Deadline(); ok {
		t.Error("new detector has a deadline")
	}
}

func TestDetectorStart_Rejects(t *testing.T) {
	d := newDetector(t, acd.Timing{}, acd.DefendOnce, 1)
	for _, tc := range []struct {
		addr  netip.Addr
		delay time.Duration
	}{
		{netip.Addr{}, 0},
		{zeroIP, 0},
		{netip.MustParseAddr("fe80::1"), 0},
		{netip.MustParseAddr("::ffff:169.254.10.20"), 0},
		{candIP, -time.Nanosecond},
	} {
		if err := d.Start(epoch, tc.addr, tc.delay); err == nil {
			t.Errorf("Start(%v, %v) succeeded", tc.addr, tc.delay)
		}
		if d.State() != acd.StateStopped || d.HasOutputs() {
			t.Errorf("Start(%v, %v) failed but left state %v", tc.addr, tc.delay, d.State())
		}
	}
}

// TestR05_FirstProbeWithinDelayPlusProbeWait checks, over many seeds, that
// the first probe goes out at delay + [0, PROBE_WAIT] after Start, that an
// early timer sends nothing, and that the wait is actually random.
func TestR05_FirstProbeWithinDelayPlusProbeWait(t *testing.T) {
	for _, tm := range []acd.Timing{{}, {ProbeWait: 300 * time.Millisecond}} {
		pw := tm.WithDefaults().ProbeWait
		for _, delay := range []time.Duration{0, 500 * time.Millisecond, 2 * time.Second} {
			t.Run(fmt.Sprintf("wait=%v/delay=%v", pw, delay), func(t *testing.T) {
				lo, hi := pw, time.Duration(0)
				for seed := range uint64(300) {
					d := newDetector(t, tm, acd.DefendOnce, seed)
					s := newSim(t, d)
					s.start(delay)
					if d.State() != acd.StateWaiting || d.Addr() != candIP || d.State().Phase() != acd.PhaseProbing {
						t.Fatalf("after Start: state %v addr %v", d.State(), d.Addr())
					}
					dl, ok := d.Deadline()
					if !ok {
						t.Fatal("no deadline after Start")
					}
					wait := dl.Sub(epoch) - delay
					if wait < 0 || wait > pw {
						t.Fatalf("seed %d: first probe due %v after Start, want delay %v + [0, %v]", seed, dl.Sub(epoch), delay, pw)
					}
					lo, hi = min(lo, wait), max(hi, wait)
					d.HandleTimer(dl.Add(-time.Nanosecond))
					if d.HasOutputs() || d.State() != acd.StateWaiting {
						t.Fatalf("seed %d: early timer acted: %v", seed, d.AppendOutputs(nil))
					}
					evs, _ := s.fireNext()
					if !sameKinds(evs, acd.OutSend, acd.OutProbeStart) {
						t.Fatalf("seed %d: at the first deadline got %v, want send, probe-start", seed, kinds(evs))
					}
					checkProbe(t, evs[0])
					if evs[1].Addr != candIP {
						t.Errorf("probe-start addr %v", evs[1].Addr)
					}
				}
				if lo > pw/10 || hi < pw*9/10 {
					t.Errorf("waits over 300 seeds span [%v, %v]; want most of [0, %v]", lo, hi, pw)
				}
			})
		}
	}
}

// TestR05_R06_RandomRangesInclusive checks that both ends of the random
// ranges are drawn: [0, PROBE_WAIT] and [PROBE_MIN, PROBE_MAX] are closed.
func TestR05_R06_RandomRangesInclusive(t *testing.T) {
	tm := acd.Timing{ProbeWait: time.Nanosecond, ProbeNum: 2, ProbeMin: time.Second, ProbeMax: time.Second + time.Nanosecond}
	waits, gaps := map[time.Duration]bool{}, map[time.Duration]bool{}
	for seed := range uint64(200) {
		s := newSim(t, newDetector(t, tm, acd.DefendOnce, seed))
		s.start(0)
		s.runUntil(acd.StateAnnounceWait)
		p := probeSends(s.log)
		if len(p) != 2 {
			t.Fatalf("%d probes, want 2", len(p))
		}
		waits[p[0].at.Sub(epoch)] = true
		gaps[p[1].at.Sub(p[0].at)] = true
	}
	if len(waits) != 2 || !waits[0] || !waits[time.Nanosecond] {
		t.Errorf("first-probe waits drawn: %v; want exactly 0 and 1ns", waits)
	}
	if len(gaps) != 2 || !gaps[time.Second] || !gaps[time.Second+time.Nanosecond] {
		t.Errorf("probe gaps drawn: %v; want exactly 1s and 1.000000001s", gaps)
	}
}

// TestR06_ProbesSpacedAndFormatted checks PROBE_NUM probes, each an RFC 5227
// probe, spaced within [PROBE_MIN, PROBE_MAX] measured between consecutive
// sends, over many seeds, and that the spacing is actually random.
func TestR06_ProbesSpacedAndFormatted(t *testing.T) {
	for _, tm := range []acd.Timing{
		{},
		{ProbeNum: 1},
		{ProbeNum: 5, ProbeMin: 100 * time.Millisecond, ProbeMax: 300 * time.Millisecond},
		{ProbeNum: 4, ProbeMin: 2 * time.Second, ProbeMax: 2 * time.Second},
	} {
		w := tm.WithDefaults()
		t.Run(fmt.Sprintf("num=%d/min=%v/max=%v", w.ProbeNum, w.ProbeMin, w.ProbeMax), func(t *testing.T) {
			lo, hi := w.ProbeMax, w.ProbeMin
			for seed := range uint64(200) {
				s := newSim(t, newDetector(t, tm, acd.DefendOnce, seed))
				s.start(0)
				s.runUntil(acd.StateAnnounceWait)
				if n := len(sends(s.log)); n != w.ProbeNum {
					t.Fatalf("seed %d: %d sends before announce-wait, want %d\n%s", seed, n, w.ProbeNum, s.dump())
				}
				starts := 0
				for i, e := range s.log {
					if e.Kind == acd.OutProbeStart {
						starts++
						if i != 1 || s.log[0].Kind != acd.OutSend {
							t.Fatalf("probe-start is not right after the first probe:\n%s", s.dump())
						}
					}
				}
				if starts != 1 {
					t.Fatalf("seed %d: %d probe-start outputs, want 1", seed, starts)
				}
				probes := sends(s.log)
				for i, e := range probes {
					checkProbe(t, e)
					if i == 0 {
						continue
					}
					gap := e.at.Sub(probes[i-1].at)
					if gap < w.ProbeMin || gap > w.ProbeMax {
						t.Fatalf("seed %d: gap %d is %v, want [%v, %v]\n%s", seed, i, gap, w.ProbeMin, w.ProbeMax, s.dump())
					}
					lo, hi = min(lo, gap), max(hi, gap)
				}
			}
			if w.ProbeNum > 1 && w.ProbeMax > w.ProbeMin {
				span := w.ProbeMax - w.ProbeMin
				if lo > w.ProbeMin+span/10 || hi < w.ProbeMax-span/10 {
					t.Errorf("gaps span [%v, %v]; want most of [%v, %v]", lo, hi, w.ProbeMin, w.ProbeMax)
				}
			}
		})
	}
}

// TestR12_AnnouncementsSpacedAnnounceInterval checks that the first
// announcement goes out ANNOUNCE_WAIT after the last probe and the
// ANNOUNCE_NUM announcements are ANNOUNCE_INTERVAL apart, then nothing.
func TestR12_AnnouncementsSpacedAnnounceInterval(t *testing.T) {
	for _, tm := range []acd.Timing{
		{},
		{AnnounceNum: 1},
		{AnnounceNum: 4, AnnounceWait: 500 * time.Millisecond, AnnounceInterval: 3 * time.Second},
	} {
		w := tm.WithDefaults()
		t.Run(fmt.Sprintf("num=%d/wait=%v/interval=%v", w.AnnounceNum, w.AnnounceWait, w.AnnounceInterval), func(t *testing.T) {
			for seed := range uint64(20) {
				s := claim(t, newDetector(t, tm, acd.DefendOnce, seed))
				probes, anns := probeSends(s.log), announceSends(s.log)
				if len(probes)+len(anns) != len(sends(s.log)) {
					t.Fatalf("sends that are neither probes nor announcements:\n%s", s.dump())
				}
				if len(anns) != w.AnnounceNum {
					t.Fatalf("%d announcements, want %d\n%s", len(anns), w.AnnounceNum, s.dump())
				}
				last := probes[len(probes)-1]
				if got := anns[0].at.Sub(last.at); got != w.AnnounceWait {
					t.Errorf("first announcement %v after the last probe, want ANNOUNCE_WAIT %v", got, w.AnnounceWait)
				}
				for i, a := range anns {
					checkAnnouncement(t, a)
					if i > 0 {
						if got := a.at.Sub(anns[i-1].at); got != w.AnnounceInterval {
							t.Errorf("announcement %d is %v after the previous, want %v", i+1, got, w.AnnounceInterval)
						}
					}
				}
				if _, ok := s.d.Deadline(); ok {
					t.Errorf("bound detector still has a deadline")
				}
				if evs := s.advance(s.now.Add(time.Hour)); len(evs) != 0 {
					t.Errorf("bound detector sent %v in the next hour", kinds(evs))
				}
			}
		})
	}
}

// TestBindPoint_AfterFirstAnnouncement pins the bind point: OutReady comes
// right after the first announcement's OutSend, once per claim.
func TestBindPoint_AfterFirstAnnouncement(t *testing.T) {
	if acd.BindAfterAnnouncement != 1 {
		t.Fatalf("BindAfterAnnouncement = %d, want 1", acd.BindAfterAnnouncement)
	}
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("ANNOUNCE_NUM=%d", n), func(t *testing.T) {
			s := newSim(t, newDetector(t, acd.Timing{AnnounceNum: n}, acd.DefendOnce, 7))
			s.start(0)
			s.runUntil(acd.StateAnnounceWait)
			evs, _ := s.fireNext()
			if !sameKinds(evs, acd.OutSend, acd.OutReady) {
				t.Fatalf("at the first announcement got %v, want send, ready", kinds(evs))
			}
			checkAnnouncement(t, evs[0])
			if evs[1].Addr != candIP {
				t.Errorf("ready for %v, want %v", evs[1].Addr, candIP)
			}
			wantState := acd.StateAnnouncing
			if n == 1 {
				wantState = acd.StateBound
			}
			if s.d.State() != wantState || s.d.State().Phase() != acd.PhaseBound {
				t.Errorf("state after the first announcement = %v, want %v", s.d.State(), wantState)
			}
			s.runUntil(acd.StateBound)
			ready := 0
			for _, e := range s.log {
				if e.Kind == acd.OutReady {
					ready++
				}
			}
			if ready != 1 || len(announceSends(s.log)) != n {
				t.Errorf("%d ready outputs and %d announcements, want 1 and %d\n%s", ready, len(announceSends(s.log)), n, s.dump())
			}
		})
	}
}

// TestR10_NotReadyBeforeProbingCompletes checks that nothing says the
// address is usable before ANNOUNCE_WAIT after the last probe.
func TestR10_NotReadyBeforeProbingCompletes(t *testing.T) {
	for seed := range uint64(50) {
		s := newSim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, seed))
		s.start(0)
		s.runUntil(acd.StateAnnounceWait)
		last := s.now
		if evs := s.advance(last.Add(2*time.Second - time.Nanosecond)); len(evs) != 0 {
			t.Fatalf("outputs %v before ANNOUNCE_WAIT elapsed", kinds(evs))
		}
		if s.d.State() != acd.StateAnnounceWait || s.d.State().Phase() != acd.PhaseProbing {
			t.Fatalf("state %v before ANNOUNCE_WAIT elapsed", s.d.State())
		}
		for _, e := range s.log {
			if e.Kind == acd.OutReady {
				t.Fatalf("ready before ANNOUNCE_WAIT:\n%s", s.dump())
			}
		}
		evs := s.advance(last.Add(2 * time.Second))
		if !sameKinds(evs, acd.OutSend, acd.OutReady) {
			t.Fatalf("at ANNOUNCE_WAIT got %v", kinds(evs))
		}
	}
}

// probingFrames are frames that conflict with candIP while probing.
func probingConflicts() []struct {
	name string
	f    acd.Frame
	v    acd.Verdict
} {
	return []struct {
		name string
		f    acd.Frame
		v    acd.Verdict
	}{
		{"announcement", bcast(otherMAC, acd.Announcement(otherMAC, candIP)), acd.VerdictConflict},
		{"reply", acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, candIP, selfMAC, zeroIP)}, acd.VerdictConflict},
		{"request", bcast(otherMAC, pkt(acd.OpRequest, otherMAC, candIP, acd.MAC{}, otherIP)), acd.VerdictConflict},
		{"gratuitous reply", bcast(bridgeMAC, pkt(acd.OpReply, otherMAC, candIP, acd.MAC{}, candIP)), acd.VerdictConflict},
		{"probe", bcast(otherMAC, acd.Probe(otherMAC, candIP)), acd.VerdictProbeConflict},
	}
}

// driveTo runs a fresh claim to st with a perfect timer.
func driveTo(t *testing.T, pol acd.DefendPolicy, seed uint64, st acd.State) *sim {
	t.Helper()
	s := newSim(t, newDetector(t, acd.Timing{}, pol, seed))
	s.start(0)
	if st != acd.StateWaiting {
		s.runUntil(st)
	}
	s.now = s.now.Add(time.Millisecond)
	return s
}

// TestR07_R08_ConflictWhileProbingEndsAttempt checks that a conflict in any
// state of the probing phase (waiting, probing, announce-wait) stops the
// detector with one OutConflict in PhaseProbing, whatever the policy, and
// that nothing is sent afterwards.
func TestR07_R08_ConflictWhileProbingEndsAttempt(t *testing.T) {
	for _, st := range []acd.State{acd.StateWaiting, acd.StateProbing, acd.StateAnnounceWait} {
		for _, pol := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon, acd.DefendForever} {
			for _, c := range probingConflicts() {
				rule := "R07"
				if c.v == acd.VerdictProbeConflict {
					rule = "R08"
				}
				t.Run(fmt.Sprintf("%s/%v/%v/%s", rule, st, pol, c.name), func(t *testing.T) {
					s := driveTo(t, pol, 3, st)
					v, evs := s.frame(c.f)
					if v != c.v {
						t.Errorf("verdict %v, want %v", v, c.v)
					}
					if !sameKinds(evs, acd.OutConflict) {
						t.Fatalf("outputs %v, want one conflict", kinds(evs))
					}
					o := evs[0]
					if o.Addr != candIP || o.Phase != acd.PhaseProbing || o.Verdict != c.v || o.Frame != c.f {
						t.Errorf("conflict output %+v", o.Output)
					}
					if s.d.State() != acd.StateStopped || s.d.Addr().IsValid() {
						t.Errorf("after conflict: state %v addr %v", s.d.State(), s.d.Addr())
					}
					if _, ok := s.d.Deadline(); ok {
						t.Error("stopped detector has a deadline")
					}
					s.d.HandleTimer(s.now.Add(time.Hour))
					if evs := s.drain(); len(evs) != 0 {
						t.Errorf("stopped detector output %v", kinds(evs))
					}
				})
			}
		}
	}
}

// TestR07_HarmlessFramesDoNotDisturbProbing feeds queries, unrelated
// frames, our own echoes and bad senders between every step of a claim and
// checks that the claim is output for output the undisturbed one.
func TestR07_HarmlessFramesDoNotDisturbProbing(t *testing.T) {
	harmless := []acd.Frame{
		bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, candIP)),     // query
		bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, thirdIP)),    // unrelated
		bcast(otherMAC, acd.Probe(otherMAC, otherIP)),                                 // probe for another address
		bcast(bridgeMAC, acd.Announcement(selfMAC, candIP)),                           // own echo
		bcast(otherMAC, acd.Announcement(acd.MAC{}, otherIP)),                         // bad sender, not claiming ours
		bcast(otherMAC, pkt(acd.OpReply, acd.BroadcastMAC, otherIP, selfMAC, candIP)), // bad sender, not claiming ours
		bcast(otherMAC, acd.Probe(acd.MAC{}, candIP)),                                 // bad sender probing
	}
	for seed := range uint64(20) {
		ref := claim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, seed))
		s := newSim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, seed))
		s.start(0)
		for s.d.State() != acd.StateBound {
			for _, f := range harmless {
				if v, evs := s.frame(f); v.IsConflict() || len(evs) != 0 {
					t.Fatalf("in %v, frame %+v: verdict %v outputs %v", s.d.State(), f.Packet, v, kinds(evs))
				}
			}
			if _, ok := s.fireNext(); !ok {
				t.Fatalf("stuck in %v", s.d.State())
			}
		}
		if got, want := s.dump(), ref.dump(); got != want {
			t.Fatalf("seed %d: disturbed claim\n%s\nwant\n%s", seed, got, want)
		}
	}
}

// TestR09_OwnFramesLoopedBackNeverConflict feeds every frame the detector
// sends straight back to it, as is and with the Ethernet source rewritten,
// under every policy, and checks it claims the address as if alone.
func TestR09_OwnFramesLoopedBackNeverConflict(t *testing.T) {
	for _, pol := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon, acd.DefendForever} {
		t.Run(pol.String(), func(t *testing.T) {
			ref := claim(t, newDetector(t, acd.Timing{}, pol, 11))
			s := newSim(t, newDetector(t, acd.Timing{}, pol, 11))
			s.start(0)
			for s.d.State() != acd.StateBound {
				evs, ok := s.fireNext()
				if !ok {
					t.Fatalf("stuck in %v", s.d.State())
				}
				for _, e := range sends(evs) {
					for _, f := range []acd.Frame{e.Frame, {Dst: e.Frame.Dst, Src: bridgeMAC, Packet: e.Frame.Packet}} {
						if v := s.d.HandleFrame(s.now, f); v != acd.VerdictOwn {
							t.Fatalf("own %v looped back: verdict %v", f.Kind(), v)
						}
						if s.d.HasOutputs() {
							t.Fatalf("own %v looped back produced %v", f.Kind(), s.d.AppendOutputs(nil))
						}
					}
				}
			}
			if got, want := s.dump(), ref.dump(); got != want {
				t.Fatalf("claim with loopback\n%s\nwant\n%s", got, want)
			}
			// Bound: a reply from our own address (what the stack sends) too.
			own := bcast(selfMAC, pkt(acd.OpReply, selfMAC, candIP, otherMAC, otherIP))
			if v, evs := s.frame(own); v != acd.VerdictOwn || len(evs) != 0 {
				t.Errorf("own reply while bound: %v %v", v, kinds(evs))
			}
		})
	}
}

// TestR08_ProbeWhileBoundIsNotConflict: a probe for our bound address is a
// query; the stack's reply defends.
func TestR08_ProbeWhileBoundIsNotConflict(t *testing.T) {
	for _, pol := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon, acd.DefendForever} {
		s := claim(t, newDetector(t, acd.Timing{}, pol, 1))
		for range 3 {
			if v, evs := s.frame(bcast(otherMAC, acd.Probe(otherMAC, candIP))); v != acd.VerdictQuery || len(evs) != 0 {
				t.Fatalf("%v: probe while bound: %v %v", pol, v, kinds(evs))
			}
		}
		if s.d.State() != acd.StateBound {
			t.Errorf("%v: state %v after probes", pol, s.d.State())
		}
	}
}

// checkDefence fails unless evs is one announcement then OutDefend for f.
func checkDefence(t *testing.T, evs []event, f acd.Frame) {
	t.Helper()
	if !sameKinds(evs, acd.OutSend, acd.OutDefend) {
		t.Fatalf("outputs %v, want send, defend", kinds(evs))
	}
	checkAnnouncement(t, evs[0])
	if o := evs[1]; o.Addr != candIP || o.Verdict != acd.VerdictConflict || o.Frame != f {
		t.Errorf("defend output %+v", o.Output)
	}
}

// TestR15_DefendOnce checks the default policy: the first conflict is
// defended with one announcement; a second within DEFEND_INTERVAL gives the
// address up; a second at or after DEFEND_INTERVAL is defended again.
func TestR15_DefendOnce(t *testing.T) {
	conflict := bcast(otherMAC, acd.Announcement(otherMAC, candIP))
	reply := acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, candIP, selfMAC, otherIP)}
	for _, tm := range []acd.Timing{{}, {DefendInterval: 3 * time.Second}} {
		di := tm.WithDefaults().DefendInterval
		t.Run(fmt.Sprintf("interval=%v/second-within", di), func(t *testing.T) {
			s := claim(t, newDetector(t, tm, acd.DefendOnce, 5))
			t0 := s.now.Add(time.Minute)
			s.now = t0
			v, evs := s.frame(conflict)
			if v != acd.VerdictConflict {
				t.Fatalf("verdict %v", v)
			}
			checkDefence(t, evs, conflict)
			if s.d.State() != acd.StateBound {
				t.Fatalf("state after defence %v", s.d.State())
			}
			s.now = t0.Add(di - time.Nanosecond)
			_, evs = s.frame(reply)
			if !sameKinds(evs, acd.OutConflict) {
				t.Fatalf("second conflict within DEFEND_INTERVAL: %v, want conflict", kinds(evs))
			}
			if o := evs[0]; o.Phase != acd.PhaseBound || o.Addr != candIP || o.Verdict != acd.VerdictConflict || o.Frame != reply {
				t.Errorf("conflict output %+v", o.Output)
			}
			if s.d.State() != acd.StateStopped || s.d.Addr().IsValid() {
				t.Errorf("state %v addr %v after giving up", s.d.State(), s.d.Addr())
			}
		})
		t.Run(fmt.Sprintf("interval=%v/second-after", di), func(t *testing.T) {
			s := claim(t, newDetector(t, tm, acd.DefendOnce, 5))
			t0 := s.now.Add(time.Minute)
			s.now = t0
			_, evs := s.frame(conflict)
			checkDefence(t, evs, conflict)
			// A query in between is not a conflict and does not count.
			s.now = t0.Add(di / 2)
			if v, evs := s.frame(bcast(otherMAC, acd.Probe(otherMAC, candIP))); v != acd.VerdictQuery || len(evs) != 0 {
				t.Fatalf("probe while bound: %v %v", v, kinds(evs))
			}
			s.now = t0.Add(di)
			_, evs = s.frame(reply)
			checkDefence(t, evs, reply)
			s.now = t0.Add(di + di - time.Nanosecond)
			if _, evs := s.frame(conflict); !sameKinds(evs, acd.OutConflict) {
				t.Fatalf("third conflict within DEFEND_INTERVAL of the second: %v", kinds(evs))
			}
		})
	}
}

// TestR15_DefendWhileAnnouncing checks that a conflict between the
// announcements is defended and the announcements carry on as scheduled.
func TestR15_DefendWhileAnnouncing(t *testing.T) {
	s := newSim(t, newDetector(t, acd.Timing{AnnounceNum: 3}, acd.DefendOnce, 9))
	s.start(0)
	s.runUntil(acd.StateAnnouncing)
	first := s.now
	s.now = first.Add(time.Second)
	conflict := bcast(otherMAC, pkt(acd.OpReply, otherMAC, candIP, acd.MAC{}, candIP))
	_, evs := s.frame(conflict)
	checkDefence(t, evs, conflict)
	if s.d.State() != acd.StateAnnouncing {
		t.Fatalf("state %v after defence while announcing", s.d.State())
	}
	evs = s.advance(first.Add(4*time.Second + time.Nanosecond))
	a := announceSends(evs)
	if len(a) != 2 || a[0].at != first.Add(2*time.Second) || a[1].at != first.Add(4*time.Second) {
		t.Fatalf("scheduled announcements after defence:\n%s", s.dump())
	}
	for _, e := range evs {
		if e.Kind == acd.OutReady {
			t.Errorf("second ready after defence")
		}
	}
	s.now = first.Add(5 * time.Second) // within DEFEND_INTERVAL of the defence
	if _, evs := s.frame(conflict); !sameKinds(evs, acd.OutConflict) || evs[0].Phase != acd.PhaseBound {
		t.Fatalf("second conflict: %v", evs)
	}
}

// TestR16_AbandonGivesUpAtFirstConflict checks the abandon policy while
// announcing and while bound: no defence, the address is given up at once.
func TestR16_AbandonGivesUpAtFirstConflict(t *testing.T) {
	for _, st := range []acd.State{acd.StateAnnouncing, acd.StateBound} {
		t.Run(st.String(), func(t *testing.T) {
			s := driveTo(t, acd.Abandon, 2, st)
			f := bcast(otherMAC, acd.Announcement(otherMAC, candIP))
			v, evs := s.frame(f)
			if v != acd.VerdictConflict || !sameKinds(evs, acd.OutConflict) {
				t.Fatalf("verdict %v outputs %v, want conflict and one conflict output", v, kinds(evs))
			}
			if o := evs[0]; o.Phase != acd.PhaseBound || o.Addr != candIP || o.Frame != f {
				t.Errorf("conflict output %+v", o.Output)
			}
			if s.d.State() != acd.StateStopped {
				t.Errorf("state %v", s.d.State())
			}
			if evs := s.advance(s.now.Add(time.Hour)); len(evs) != 0 {
				t.Errorf("outputs after abandoning: %v", kinds(evs))
			}
		})
	}
}

// TestR17_DefendForeverRateLimited floods a DefendForever detector with
// 1000 conflicting frames within one DEFEND_INTERVAL: exactly one defensive
// announcement, every other frame suppressed, the address kept; the next
// interval allows one more defence.
func TestR17_DefendForeverRateLimited(t *testing.T) {
	s := claim(t, newDetector(t, acd.Timing{}, acd.DefendForever, 4))
	flood := []acd.Frame{
		bcast(otherMAC, acd.Announcement(otherMAC, candIP)),
		acd.Frame{Dst: selfMAC, Src: otherMAC, Packet: pkt(acd.OpReply, otherMAC, candIP, selfMAC, otherIP)},
		bcast(otherMAC, pkt(acd.OpRequest, otherMAC, candIP, acd.MAC{}, thirdIP)),
	}
	t0 := s.now.Add(time.Second)
	const n = 1000
	step := 10 * time.Second / n
	var all []event
	for i := range n {
		s.now = t0.Add(time.Duration(i) * step)
		v, evs := s.frame(flood[i%len(flood)])
		if v != acd.VerdictConflict {
			t.Fatalf("frame %d: verdict %v", i, v)
		}
		if i == 0 {
			checkDefence(t, evs, flood[0])
		} else if !sameKinds(evs, acd.OutDefendSuppressed) {
			t.Fatalf("frame %d at +%v: outputs %v, want defend-suppressed", i, s.now.Sub(t0), kinds(evs))
		} else if evs[0].Verdict != acd.VerdictConflict || evs[0].Addr != candIP || evs[0].Frame != flood[i%len(flood)] {
			t.Fatalf("suppressed output %+v", evs[0].Output)
		}
		all = append(all, evs...)
	}
	count := map[acd.OutputKind]int{}
	for _, e := range all {
		count[e.Kind]++
	}
	if count[acd.OutSend] != 1 || count[acd.OutDefend] != 1 || count[acd.OutDefendSuppressed] != n-1 || count[acd.OutConflict] != 0 {
		t.Errorf("flood outputs %v", count)
	}
	if s.d.State() != acd.StateBound || s.d.Addr() != candIP {
		t.Fatalf("state %v addr %v after flood", s.d.State(), s.d.Addr())
	}
	s.now = t0.Add(10 * time.Second)
	_, evs := s.frame(flood[1])
	checkDefence(t, evs, flood[1])
	s.now = s.now.Add(time.Millisecond)
	if _, evs := s.frame(flood[0]); !sameKinds(evs, acd.OutDefendSuppressed) {
		t.Errorf("right after the second defence: %v", kinds(evs))
	}
}

// TestR06_R12_LateTimersNeverShortenGaps calls HandleTimer late by various amounts
// and checks that each call sends at most one packet and the next gap is
// measured from the actual send.
func TestR06_R12_LateTimersNeverShortenGaps(t *testing.T) {
	w := acd.DefaultTiming()
	for _, late := range []time.Duration{time.Nanosecond, 700 * time.Millisecond, 5 * time.Second, time.Hour} {
		t.Run(late.String(), func(t *testing.T) {
			for seed := range uint64(20) {
				d := newDetector(t, acd.Timing{}, acd.DefendOnce, seed)
				s := newSim(t, d)
				s.start(0)
				var sent []event
				for {
					dl, ok := d.Deadline()
					if !ok {
						break
					}
					s.now = dl.Add(late)
					d.HandleTimer(s.now)
					evs := sends(s.drain())
					if len(evs) != 1 {
						t.Fatalf("timer %v late sent %d packets, want 1", late, len(evs))
					}
					sent = append(sent, evs[0])
					if next, ok := d.Deadline(); ok && !next.After(s.now) {
						t.Fatalf("next deadline %v is not after the send at %v", next.Sub(epoch), s.now.Sub(epoch))
					}
				}
				if len(sent) != w.ProbeNum+w.AnnounceNum {
					t.Fatalf("%d sends, want %d", len(sent), w.ProbeNum+w.AnnounceNum)
				}
				for i := 1; i < len(sent); i++ {
					gap := sent[i].at.Sub(sent[i-1].at)
					var lo, hi time.Duration
					switch {
					case i < w.ProbeNum:
						lo, hi = w.ProbeMin, w.ProbeMax
					case i == w.ProbeNum:
						lo, hi = w.AnnounceWait, w.AnnounceWait
					default:
						lo, hi = w.AnnounceInterval, w.AnnounceInterval
					}
					if gap < lo+late || gap > hi+late {
						t.Fatalf("gap %d is %v with timers %v late, want [%v, %v] + %v", i, gap, late, lo, hi, late)
					}
				}
			}
		})
	}
}

// TestHandleTimer_EarlyOrIdleDoesNothing checks calls when nothing is due.
func TestHandleTimer_EarlyOrIdleDoesNothing(t *testing.T) {
	d := newDetector(t, acd.Timing{}, acd.DefendOnce, 8)
	d.HandleTimer(epoch.Add(time.Hour))
	if d.HasOutputs() || d.State() != acd.StateStopped {
		t.Fatal("stopped detector acted on a timer")
	}
	if err := d.Start(epoch, candIP, time.Second); err != nil {
		t.Fatal(err)
	}
	dl, _ := d.Deadline()
	for _, at := range []time.Time{epoch.Add(-time.Hour), epoch, epoch.Add(time.Second - time.Nanosecond), dl.Add(-time.Nanosecond)} {
		d.HandleTimer(at)
		if d.HasOutputs() || d.State() != acd.StateWaiting {
			t.Fatalf("HandleTimer(%v) before the deadline %v acted", at.Sub(epoch), dl.Sub(epoch))
		}
		if dl2, _ := d.Deadline(); dl2 != dl {
			t.Fatalf("deadline moved from %v to %v", dl.Sub(epoch), dl2.Sub(epoch))
		}
	}
}

// TestR12_Reannounce checks that Reannounce sends ANNOUNCE_NUM announcements
// again, the first at once, without a second OutReady, and does nothing
// unless the address is bound.
func TestR12_Reannounce(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("ANNOUNCE_NUM=%d", n), func(t *testing.T) {
			tm := acd.Timing{AnnounceNum: n}
			s := claim(t, newDetector(t, tm, acd.DefendOnce, 6))
			t0 := s.now.Add(time.Minute)
			s.now = t0
			s.d.Reannounce(t0)
			evs := s.drain()
			if !sameKinds(evs, acd.OutSend) {
				t.Fatalf("Reannounce: %v, want one send", kinds(evs))
			}
			checkAnnouncement(t, evs[0])
			evs = s.advance(t0.Add(time.Hour))
			if len(evs) != n-1 {
				t.Fatalf("after Reannounce: %v, want %d more sends", kinds(evs), n-1)
			}
			for i, e := range evs {
				checkAnnouncement(t, e)
				if want := t0.Add(time.Duration(i+1) * 2 * time.Second); e.at != want {
					t.Errorf("re-announcement %d at %v, want %v", i+2, e.at.Sub(t0), want.Sub(t0))
				}
			}
			if s.d.State() != acd.StateBound {
				t.Errorf("state %v after re-announcing", s.d.State())
			}
		})
	}
	t.Run("during announcing restarts the series", func(t *testing.T) {
		s := newSim(t, newDetector(t, acd.Timing{AnnounceNum: 3}, acd.DefendOnce, 6))
		s.start(0)
		s.runUntil(acd.StateAnnouncing)
		first := s.now
		s.now = first.Add(time.Second)
		s.d.Reannounce(s.now)
		if evs := s.drain(); !sameKinds(evs, acd.OutSend) {
			t.Fatalf("Reannounce while announcing: %v", kinds(evs))
		}
		evs := s.advance(first.Add(time.Hour))
		if len(evs) != 2 || evs[0].at != first.Add(3*time.Second) || evs[1].at != first.Add(5*time.Second) {
			t.Fatalf("re-announcements:\n%s", s.dump())
		}
	})
	for _, st := range []acd.State{acd.StateStopped, acd.StateWaiting, acd.StateProbing, acd.StateAnnounceWait} {
		t.Run("ignored in "+st.String(), func(t *testing.T) {
			s := newSim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, 6))
			if st != acd.StateStopped {
				s.start(0)
				if st != acd.StateWaiting {
					s.runUntil(st)
				}
			}
			dl, ok := s.d.Deadline()
			s.d.Reannounce(s.now)
			if s.d.HasOutputs() || s.d.State() != st {
				t.Errorf("Reannounce in %v: outputs %v state %v", st, s.d.AppendOutputs(nil), s.d.State())
			}
			if dl2, ok2 := s.d.Deadline(); dl2 != dl || ok2 != ok {
				t.Errorf("Reannounce in %v moved the deadline", st)
			}
		})
	}
}

// TestStop_Silences checks that a stopped detector neither sends nor
// reports conflicts, from every state.
func TestStop_Silences(t *testing.T) {
	for _, st := range []acd.State{acd.StateWaiting, acd.StateProbing, acd.StateAnnounceWait, acd.StateAnnouncing, acd.StateBound} {
		t.Run(st.String(), func(t *testing.T) {
			s := driveTo(t, acd.DefendOnce, 12, st)
			s.d.Stop()
			if s.d.State() != acd.StateStopped || s.d.Addr().IsValid() || s.d.State().Phase() != acd.PhaseIdle {
				t.Fatalf("after Stop: state %v addr %v", s.d.State(), s.d.Addr())
			}
			if _, ok := s.d.Deadline(); ok {
				t.Fatal("deadline after Stop")
			}
			for _, c := range probingConflicts() {
				if v, evs := s.frame(c.f); v != acd.VerdictUnrelated || len(evs) != 0 {
					t.Errorf("stopped, %s: %v %v", c.name, v, kinds(evs))
				}
			}
			s.d.Reannounce(s.now)
			if evs := s.advance(s.now.Add(time.Hour)); len(evs) != 0 {
				t.Errorf("stopped detector output %v", kinds(evs))
			}
		})
	}
}

// TestR15_StartForgetsDefence checks that a new claim starts with no
// defence on record: its first conflict is defended, not fatal.
func TestR15_StartForgetsDefence(t *testing.T) {
	s := claim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, 13))
	f := bcast(otherMAC, acd.Announcement(otherMAC, candIP))
	_, evs := s.frame(f)
	checkDefence(t, evs, f)
	s.start(0) // same address, fresh claim
	s.runUntil(acd.StateBound)
	if s.now.Sub(evs[0].at) >= 10*time.Second {
		t.Fatalf("test setup: the new claim took %v, not within DEFEND_INTERVAL", s.now.Sub(evs[0].at))
	}
	_, evs = s.frame(f)
	checkDefence(t, evs, f)
}

// TestR17_DefendIntervalFromDefenceNotSuppressed checks that suppressed
// conflicts do not push the next allowed defence back.
func TestR17_DefendIntervalFromDefenceNotSuppressed(t *testing.T) {
	s := claim(t, newDetector(t, acd.Timing{DefendInterval: 4 * time.Second}, acd.DefendForever, 14))
	f := bcast(otherMAC, acd.Announcement(otherMAC, candIP))
	t0 := s.now
	_, evs := s.frame(f)
	checkDefence(t, evs, f)
	s.now = t0.Add(3 * time.Second)
	if _, evs := s.frame(f); !sameKinds(evs, acd.OutDefendSuppressed) {
		t.Fatalf("at +3s: %v", kinds(evs))
	}
	s.now = t0.Add(4 * time.Second)
	_, evs = s.frame(f)
	checkDefence(t, evs, f)
}

func TestTimingValidate(t *testing.T) {
	good := []struct {
		name string
		tm   acd.Timing
	}{
		{"zero takes defaults", acd.Timing{}},
		{"defaults", acd.DefaultTiming()},
		{"PROBE_MIN equals PROBE_MAX", acd.Timing{ProbeMin: 3 * time.Second, ProbeMax: 3 * time.Second}},
		{"at the limits", acd.Timing{ProbeWait: acd.MaxTimingDuration, ProbeNum: acd.MaxTimingCount, ProbeMin: acd.MaxTimingDuration, ProbeMax: acd.MaxTimingDuration,
			AnnounceWait: acd.MaxTimingDuration, AnnounceNum: acd.MaxTimingCount, AnnounceInterval: acd.MaxTimingDuration,
			MaxConflicts: acd.MaxTimingCount, RateLimitInterval: acd.MaxTimingDuration, DefendInterval: acd.MaxTimingDuration}},
		{"smallest", acd.Timing{ProbeWait: 1, ProbeNum: 1, ProbeMin: 1, ProbeMax: 1, AnnounceWait: 1, AnnounceNum: 1, AnnounceInterval: 1, MaxConflicts: 1, RateLimitInterval: 1, DefendInterval: 1}},
	}
	for _, tt := range good {
		t.Run("good/"+tt.name, func(t *testing.T) {
			if err := tt.tm.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	const over = acd.MaxTimingDuration + time.Nanosecond
	bad := []struct {
		name  string
		tm    acd.Timing
		wants []string
	}{
		{"negative PROBE_WAIT", acd.Timing{ProbeWait: -time.Second}, []string{"PROBE_WAIT", "-1s"}},
		{"negative PROBE_MIN", acd.Timing{ProbeMin: -time.Nanosecond}, []string{"PROBE_MIN", "-1ns"}},
		{"negative PROBE_MAX", acd.Timing{ProbeMax: -time.Millisecond}, []string{"PROBE_MAX", "-1ms"}},
		{"negative ANNOUNCE_WAIT", acd.Timing{AnnounceWait: -2 * time.Second}, []string{"ANNOUNCE_WAIT", "-2s"}},
		{"negative ANNOUNCE_INTERVAL", acd.Timing{AnnounceInterval: -3 * time.Second}, []string{"ANNOUNCE_INTERVAL", "-3s"}},
		{"negative RATE_LIMIT_INTERVAL", acd.Timing{RateLimitInterval: -time.Minute}, []string{"RATE_LIMIT_INTERVAL", "-1m0s"}},
		{"negative DEFEND_INTERVAL", acd.Timing{DefendInterval: -4 * time.Second}, []string{"DEFEND_INTERVAL", "-4s"}},
		{"PROBE_WAIT over limit", acd.Timing{ProbeWait: over}, []string{"PROBE_WAIT", over.String(), acd.MaxTimingDuration.String()}},
		{"PROBE_MAX over limit", acd.Timing{ProbeMax: over}, []string{"PROBE_MAX", over.String()}},
		{"ANNOUNCE_WAIT over limit", acd.Timing{AnnounceWait: 25 * time.Hour}, []string{"ANNOUNCE_WAIT", "25h0m0s"}},
		{"ANNOUNCE_INTERVAL over limit", acd.Timing{AnnounceInterval: over}, []string{"ANNOUNCE_INTERVAL", over.String()}},
		{"RATE_LIMIT_INTERVAL over limit", acd.Timing{RateLimitInterval: 48 * time.Hour}, []string{"RATE_LIMIT_INTERVAL", "48h0m0s"}},
		{"DEFEND_INTERVAL over limit", acd.Timing{DefendInterval: over}, []string{"DEFEND_INTERVAL", over.String()}},
		{"negative PROBE_NUM", acd.Timing{ProbeNum: -1}, []string{"PROBE_NUM", "-1", "1..1000"}},
		{"negative ANNOUNCE_NUM", acd.Timing{AnnounceNum: -2}, []string{"ANNOUNCE_NUM", "-2"}},
		{"negative MAX_CONFLICTS", acd.Timing{MaxConflicts: -3}, []string{"MAX_CONFLICTS", "-3"}},
		{"PROBE_NUM over limit", acd.Timing{ProbeNum: acd.MaxTimingCount + 1}, []string{"PROBE_NUM", "1001"}},
		{"ANNOUNCE_NUM over limit", acd.Timing{AnnounceNum: 5000}, []string{"ANNOUNCE_NUM", "5000"}},
		{"MAX_CONFLICTS over limit", acd.Timing{MaxConflicts: 1 << 40}, []string{"MAX_CONFLICTS", "1099511627776"}},
		{"PROBE_MIN more than PROBE_MAX", acd.Timing{ProbeMin: 3 * time.Second, ProbeMax: 2500 * time.Millisecond}, []string{"PROBE_MIN", "PROBE_MAX", "3s", "2.5s"}},
		{"PROBE_MIN 1ns more than PROBE_MAX", acd.Timing{ProbeMin: 2*time.Second + 1, ProbeMax: 2 * time.Second}, []string{"PROBE_MIN", "PROBE_MAX", "2.000000001s", "2s"}},
		{"PROBE_MIN more than default PROBE_MAX", acd.Timing{ProbeMin: 3 * time.Second}, []string{"PROBE_MIN", "PROBE_MAX", "3s", "2s"}},
		{"PROBE_MAX less than default PROBE_MIN", acd.Timing{ProbeMax: 500 * time.Millisecond}, []string{"PROBE_MIN", "PROBE_MAX", "1s", "500ms"}},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.name, func(t *testing.T) {
			err := tt.tm.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want error", tt.tm)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := acd.NewDetector(acd.DetectorConfig{HW: selfMAC, Timing: tt.tm}); !errors.Is(err, acd.ErrInvalidConfig) {
				t.Errorf("NewDetector accepted it: %v", err)
			}
		})
	}
}

// TestDefaultTiming_RFCValues pins the constants of RFC 3927 §9 and RFC
// 5227 §1.1 as listed in CONFORMANCE.md.
func TestDefaultTiming_RFCValues(t *testing.T) {
	want := acd.Timing{
		ProbeWait: time.Second, ProbeNum: 3, ProbeMin: time.Second, ProbeMax: 2 * time.Second,
		AnnounceWait: 2 * time.Second, AnnounceNum: 2, AnnounceInterval: 2 * time.Second,
		MaxConflicts: 10, RateLimitInterval: 60 * time.Second, DefendInterval: 10 * time.Second,
	}
	if got := acd.DefaultTiming(); got != want {
		t.Errorf("DefaultTiming() = %+v\nwant %+v", got, want)
	}
	if got := (acd.Timing{}).WithDefaults(); got != want {
		t.Errorf("Timing{}.WithDefaults() = %+v", got)
	}
	custom := acd.Timing{ProbeNum: 5, AnnounceInterval: time.Second, DefendInterval: -1}
	got := custom.WithDefaults()
	w := want
	w.ProbeNum, w.AnnounceInterval, w.DefendInterval = 5, time.Second, -1
	if got != w {
		t.Errorf("WithDefaults kept the wrong fields: %+v", got)
	}
}

func TestDefendPolicy_ParseString(t *testing.T) {
	for _, p := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon, acd.DefendForever} {
		got, err := acd.ParseDefendPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseDefendPolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	for s, want := range map[string]acd.DefendPolicy{"once": acd.DefendOnce, "abandon": acd.Abandon, "forever": acd.DefendForever} {
		if got, _ := acd.ParseDefendPolicy(s); got != want || got.String() != s {
			t.Errorf("ParseDefendPolicy(%q) = %v", s, got)
		}
	}
	if acd.DefendPolicy(0) != acd.DefendOnce {
		t.Error("the zero DefendPolicy is not DefendOnce (the RFC default)")
	}
	for _, s := range []string{"", "Once", "ONCE", " once", "defend", "forever!", "policy(3)"} {
		if _, err := acd.ParseDefendPolicy(s); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseDefendPolicy(%q) error = %v, want one quoting the input", s, err)
		}
	}
	if got := acd.DefendPolicy(9).String(); got != "policy(9)" {
		t.Errorf("DefendPolicy(9).String() = %q", got)
	}
}

func TestStateAndOutputKindStrings(t *testing.T) {
	states := map[acd.State][2]string{
		acd.StateStopped:      {"stopped", "idle"},
		acd.StateWaiting:      {"waiting", "probing"},
		acd.StateProbing:      {"probing", "probing"},
		acd.StateAnnounceWait: {"announce-wait", "probing"},
		acd.StateAnnouncing:   {"announcing", "bound"},
		acd.StateBound:        {"bound", "bound"},
		42:                    {"state(42)", "idle"},
	}
	for s, want := range states {
		if s.String() != want[0] || s.Phase().String() != want[1] {
			t.Errorf("State %d: %q phase %q, want %q %q", s, s.String(), s.Phase(), want[0], want[1])
		}
	}
	kinds := map[acd.OutputKind]string{
		acd.OutSend: "send", acd.OutProbeStart: "probe-start", acd.OutReady: "ready", acd.OutConflict: "conflict",
		acd.OutDefend: "defend", acd.OutDefendSuppressed: "defend-suppressed", 0: "output(0)", 99: "output(99)",
	}
	for k, want := range kinds {
		if k.String() != want {
			t.Errorf("OutputKind %d: %q, want %q", k, k.String(), want)
		}
	}
}

// script runs a fixed scenario with plenty of random draws and returns its
// outputs formatted, with the wire bytes of every frame sent.
func script(t *testing.T, d *acd.Detector) string {
	t.Helper()
	s := newSim(t, d)
	var b strings.Builder
	emit := func(evs []event) {
		for _, e := range evs {
			b.WriteString(e.String())
			if e.Kind == acd.OutSend {
				b.WriteString(" wire=" + hex.EncodeToString(wire(t, e.Frame)))
			}
			b.WriteByte('\n')
		}
	}
	for attempt := range 3 {
		if err := d.Start(s.now, candIP, time.Duration(attempt)*time.Second); err != nil {
			t.Fatal(err)
		}
		emit(s.drain())
		for d.State() != acd.StateBound {
			evs, ok := s.fireNext()
			if !ok {
				t.Fatalf("stuck in %v", d.State())
			}
			emit(evs)
			_, evs = s.frame(bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, candIP)))
			emit(evs)
		}
		s.now = s.now.Add(3 * time.Second)
		_, evs := s.frame(bcast(otherMAC, acd.Announcement(otherMAC, candIP)))
		emit(evs)
		s.now = s.now.Add(time.Second)
		_, evs = s.frame(bcast(otherMAC, acd.Announcement(otherMAC, candIP)))
		emit(evs)
		s.now = s.now.Add(time.Minute)
	}
	return b.String()
}

// TestDeterminism_SameSeedSameOutputs checks that a detector's outputs
// depend on nothing but its inputs and seed: same seed, byte-identical
// output; different seeds, different timing.
func TestDeterminism_SameSeedSameOutputs(t *testing.T) {
	distinct := map[string]bool{}
	for seed := range uint64(10) {
		a := script(t, newDetector(t, acd.Timing{}, acd.DefendOnce, seed))
		b := script(t, newDetector(t, acd.Timing{}, acd.DefendOnce, seed))
		if a != b {
			t.Fatalf("seed %d: runs differ\n%s\n---\n%s", seed, a, b)
		}
		if !strings.Contains(a, "conflict") || strings.Count(a, "ready") != 3 {
			t.Fatalf("scenario did not run as intended:\n%s", a)
		}
		distinct[a] = true
	}
	if len(distinct) < 9 {
		t.Errorf("10 seeds gave only %d distinct runs", len(distinct))
	}
	// Without Rand, the detector seeds itself from its hardware address.
	run := func() string {
		d, err := acd.NewDetector(acd.DetectorConfig{HW: selfMAC})
		if err != nil {
			t.Fatal(err)
		}
		return script(t, d)
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("nil Rand: runs differ\n%s\n---\n%s", a, b)
	}
}

// TestDetectorHandleFrame_UnrelatedZeroAllocs checks that frames that need
// no output (unrelated, queries, own echoes, bad senders) cost a bound
// detector no allocation, nor does decoding them.
func TestDetectorHandleFrame_UnrelatedZeroAllocs(t *testing.T) {
	s := claim(t, newDetector(t, acd.Timing{}, acd.DefendOnce, 1))
	for _, tc := range []struct {
		name string
		f    acd.Frame
		v    acd.Verdict
	}{
		{"unrelated", bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, thirdIP)), acd.VerdictUnrelated},
		{"query", bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, candIP)), acd.VerdictQuery},
		{"own", acd.BroadcastFrame(acd.Announcement(selfMAC, candIP)), acd.VerdictOwn},
		{"bad sender", bcast(otherMAC, acd.Announcement(acd.MAC{}, otherIP)), acd.VerdictBadSender},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v acd.Verdict
			allocs := testing.AllocsPerRun(200, func() { v = s.d.HandleFrame(s.now, tc.f) })
			if allocs != 0 || v != tc.v || s.d.HasOutputs() {
				t.Errorf("HandleFrame: %v allocs, verdict %v, outputs %v; want 0 allocs, %v, none", allocs, v, s.d.HasOutputs(), tc.v)
			}
		})
	}
	t.Run("decode and handle unrelated frame", func(t *testing.T) {
		b := wire(t, bcast(otherMAC, pkt(acd.OpReply, otherMAC, otherIP, bridgeMAC, thirdIP)))
		var v acd.Verdict
		allocs := testing.AllocsPerRun(200, func() {
			f, err := acd.DecodeFrame(b)
			if err == nil {
				v = s.d.HandleFrame(s.now, f)
			}
		})
		if allocs != 0 || v != acd.VerdictUnrelated {
			t.Errorf("%v allocs, verdict %v; want 0, unrelated", allocs, v)
		}
	})
}
