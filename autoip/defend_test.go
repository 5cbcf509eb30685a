package autoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestR12_Announcements: ANNOUNCE_NUM announcements (-a), ANNOUNCE_WAIT
// after the last probe and ANNOUNCE_INTERVAL (-w) apart, each a broadcast
// request with sender IP = target IP = the claimed address.
func TestR12_Announcements(t *testing.T) {
	for _, tt := range []struct{ a, w int }{{2, 2}, {1, 1}, {4, 3}, {3, 60}} {
		t.Run(fmt.Sprintf("-a %d -w %d", tt.a, tt.w), func(t *testing.T) {
			tm, _ := qnxTiming(t, QNXOptions{DelayMS: 2000, Probes: 3, Announces: tt.a, WaitSeconds: tt.w})
			cfg := testConfig()
			cfg.Timing = tm
			h := startedHarness(t, cfg)
			addr := h.runUntilBound()
			h.runUntilIdle(time.Hour)
			ann := filter(h.outs, isOurAnnouncement)
			if len(ann) != tt.a {
				t.Fatalf("%d announcements, want %d:\n%s", len(ann), tt.a, h.dump())
			}
			probes := filter(h.outs, isOurProbe)
			w := time.Duration(tt.w) * time.Second
			if d := ann[0].At.Sub(probes[len(probes)-1].At); d != w {
				t.Errorf("first announcement %v after the last probe, want ANNOUNCE_WAIT %v", d, w)
			}
			for i, a := range ann {
				f := a.Frame
				if f.Op != acd.OpRequest || f.SenderIP != addr || f.TargetIP != addr || f.SenderHW != ourMAC || f.Src != ourMAC || f.Dst != acd.BroadcastMAC || f.TargetHW != (acd.MAC{}) {
					t.Errorf("announcement %d: %s", i+1, fmtFrame(f))
				}
				if i > 0 {
					if d := a.At.Sub(ann[i-1].At); d != w {
						t.Errorf("announcement %d %v after the previous, want ANNOUNCE_INTERVAL %v", i+1, d, w)
					}
				}
			}
			if _, ok := h.e.Deadline(); ok {
				t.Error("deadline after the last announcement")
			}
			if s := h.e.Status(); s.State != StateBound || s.Addr != addr {
				t.Errorf("status %+v", s)
			}
			// Nothing more is ever sent without input.
			n := len(h.outs)
			h.advance(24 * time.Hour)
			if len(h.outs) != n {
				t.Errorf("outputs while idle: %v", h.outs[n:])
			}
		})
	}
}

// boundHarness returns a harness bound to its first candidate, with the
// announcements done.
func boundHarness(t *testing.T, pol acd.DefendPolicy) (*harness, netip.Addr) {
	t.Helper()
	cfg := testConfig()
	cfg.Defend = pol
	h := startedHarness(t, cfg)
	addr := h.runUntilBound()
	h.runUntilIdle(time.Minute)
	h.advance(time.Minute)
	return h, addr
}

// conflictFrames are the shapes a conflicting frame (sender IP = ours,
// sender MAC not ours) can take while we are bound.
func conflictFrames(addr netip.Addr) map[string]acd.Frame {
	return map[string]acd.Frame{
		"announcement":     announceFrom(rogueMAC, addr),
		"request":          requestFrom(rogueMAC, addr, mustAddr("169.254.99.99")),
		"reply":            replyFrom(rogueMAC, addr, peerMAC, mustAddr("169.254.99.99")),
		"gratuitous reply": replyFrom(rogueMAC, addr, acd.BroadcastMAC, addr),
	}
}

// checkDefence checks the outputs of one defended conflict.
func checkDefence(t *testing.T, got []step, addr netip.Addr, from acd.MAC) {
	t.Helper()
	if len(got) != 2 || !isOurAnnouncement(got[0]) || got[0].Frame.SenderIP != addr || got[0].Frame.Dst != acd.BroadcastMAC || !isEvent(EventDefend)(got[1]) {
		t.Fatalf("defence outputs:\n%s\nwant one announcement and EventDefend", dumpSteps(got))
	}
	if ev := got[1].Event; ev.Addr != addr || ev.From != from || ev.Phase != acd.PhaseBound {
		t.Errorf("EventDefend %+v", ev)
	}
}

// checkLoss checks the outputs of a conflict that cost us addr: the
// address is removed first, before anything is sent, and EventConflict
// (phase bound) is reported in the same step.
func checkLoss(t *testing.T, got []step, addr netip.Addr, from acd.MAC) {
	t.Helper()
	if len(got) == 0 || got[0].Kind != OutRemoveAddress || got[0].Prefix != netip.PrefixFrom(addr, 16) {
		t.Fatalf("loss outputs:\n%s\nwant OutRemoveAddress %v first", dumpSteps(got), addr)
	}
	if n := len(filter(got, isKind(OutSendARP))); n != 0 {
		t.Errorf("%d frames sent on loss", n)
	}
	if n := len(filter(got, isKind(OutRemoveAddress))); n != 1 {
		t.Errorf("%d removes", n)
	}
	cs := events(got, EventConflict)
	if len(cs) != 1 || cs[0].Event.Addr != addr || cs[0].Event.Phase != acd.PhaseBound || cs[0].Event.From != from {
		t.Errorf("loss events %v", cs)
	}
}

// TestR15_DefendOnceThenGiveUp: the default policy defends once per
// DEFEND_INTERVAL, keeping the address, and gives it up on a second
// conflict inside the interval, then probes a new candidate.
func TestR15_DefendOnceThenGiveUp(t *testing.T) {
	for name, f := range conflictFrames(Candidate(SeedFromMAC(ourMAC), 0)) {
		t.Run(name, func(t *testing.T) {
			h, addr := boundHarness(t, acd.DefendOnce)
			di := h.e.Timing().DefendInterval
			v, got := h.inject(f)
			if v != acd.VerdictConflict {
				t.Errorf("verdict %v", v)
			}
			checkDefence(t, got, addr, rogueMAC)
			if s := h.e.Status(); s.State != StateBound || s.Addr != addr || s.Stats.Defences != 1 || s.LastConflict == nil || s.LastConflict.Kind != EventDefend {
				t.Errorf("status after defence %+v", s)
			}
			h.advance(di - time.Nanosecond)
			_, got = h.inject(f)
			checkLoss(t, got, addr, rogueMAC)
			if s := h.e.Status(); s.State.IsBound() || s.Addr == addr {
				t.Errorf("status after loss %+v", s)
			}
			next := h.runUntilBound()
			if next == addr {
				t.Fatalf("rebound the lost address")
			}
			if p := probedAddrs(h.outs); p[len(p)-1] != next || p[len(p)-2] != addr {
				t.Errorf("attempts %v", p)
			}
		})
	}
	for _, after := range []time.Duration{10 * time.Second, 10*time.Second + time.Nanosecond, time.Hour} {
		t.Run(fmt.Sprintf("second after %v", after), func(t *testing.T) {
			h, addr := boundHarness(t, acd.DefendOnce)
			if h.e.Timing().DefendInterval != 10*time.Second {
				t.Fatal("default DEFEND_INTERVAL")
			}
			_, got := h.inject(announceFrom(rogueMAC, addr))
			checkDefence(t, got, addr, rogueMAC)
			h.advance(after)
			_, got = h.inject(announceFrom(peerMAC, addr))
			checkDefence(t, got, addr, peerMAC)
			if n := len(filter(h.outs, isKind(OutRemoveAddress))); n != 0 {
				t.Error("address removed")
			}
		})
	}
	// A probe for our bound address is not a conflict: the stack answers.
	h, addr := boundHarness(t, acd.DefendOnce)
	if v, got := h.inject(probeFrom(rogueMAC, addr)); v != acd.VerdictQuery || len(got) != 0 {
		t.Errorf("probe for bound address: %v %v", v, got)
	}
	if v, got := h.inject(requestFrom(rogueMAC, mustAddr("169.254.99.99"), addr)); v != acd.VerdictQuery || len(got) != 0 {
		t.Errorf("request for bound address: %v %v", v, got)
	}
}

// TestR15_ConflictWhileAnnouncing: a conflict between the first and the
// last announcement is handled as a bound conflict.
func TestR15_ConflictWhileAnnouncing(t *testing.T) {
	h := startedHarness(t, testConfig())
	addr := h.runUntilBound()
	if h.e.Status().State != StateAnnouncing {
		t.Fatalf("state %v", h.e.Status().State)
	}
	_, got := h.inject(announceFrom(rogueMAC, addr))
	checkDefence(t, got, addr, rogueMAC)
	h.advance(time.Second)
	_, got = h.inject(announceFrom(rogueMAC, addr))
	checkLoss(t, got, addr, rogueMAC)
	// The pending announcement of the lost address is never sent.
	h.runUntilBound()
	for _, s := range h.outs {
		if s.Kind == OutSendARP && s.Frame.SenderIP == addr && s.Step > got[0].Step {
			t.Errorf("lost address announced: %v", s)
		}
	}
}

// TestR16_AbandonGivesUpAtOnce: under Abandon the first conflict removes
// the address, with no defensive announcement.
func TestR16_AbandonGivesUpAtOnce(t *testing.T) {
	for name, f := range conflictFrames(Candidate(SeedFromMAC(ourMAC), 0)) {
		t.Run(name, func(t *testing.T) {
			h, addr := boundHarness(t, acd.Abandon)
			v, got := h.inject(f)
			if v != acd.VerdictConflict {
				t.Errorf("verdict %v", v)
			}
			checkLoss(t, got, addr, rogueMAC)
			if s := h.e.Status().Stats; s.Defences != 0 || s.BoundConflicts != 1 {
				t.Errorf("stats %+v", s)
			}
			if next := h.runUntilBound(); next == addr {
				t.Error("rebound the abandoned address")
			}
		})
	}
}

// TestDefendForeverRefusedForLinkLocal: RFC 3927 §2.5 allows a link-local
// host only to abandon at once (a) or to defend once (b); the engine refuses
// DefendForever (c), which acd offers for other addresses.
func TestDefendForeverRefusedForLinkLocal(t *testing.T) {
	_, err := NewEngine(Config{HW: ourMAC, Defend: acd.DefendForever})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "forever") {
		t.Fatalf("NewEngine(DefendForever) = %v, want ErrInvalidConfig naming the policy", err)
	}
}

// TestR17_DefendOnceNeverMoreThanOnePerInterval: under the default policy,
// a stream of conflicts at varied spacing never yields two defences of the
// same binding within DEFEND_INTERVAL.
func TestR17_DefendOnceNeverMoreThanOnePerInterval(t *testing.T) {
	for _, pol := range []acd.DefendPolicy{acd.DefendOnce} {
		t.Run(pol.String(), func(t *testing.T) {
			h, _ := boundHarness(t, pol)
			di := h.e.Timing().DefendInterval
			gaps := []time.Duration{3 * time.Second, 7 * time.Second, 9999 * time.Millisecond, 10 * time.Second, 11 * time.Second, 500 * time.Millisecond, 20 * time.Second}
			for i := 0; i < 200; i++ {
				if a := h.e.Status().Addr; h.e.Status().State.IsBound() {
					h.inject(announceFrom(rogueMAC, a))
				}
				h.advance(gaps[i%len(gaps)])
			}
			lastDef := map[netip.Addr]time.Time{}
			for _, s := range h.outs {
				switch {
				case isEvent(EventBind)(s):
					delete(lastDef, s.Event.Addr)
				case isEvent(EventDefend)(s):
					if last, ok := lastDef[s.Event.Addr]; ok && s.At.Sub(last) < di {
						t.Errorf("defences of %v at %v and %v", s.Event.Addr, last.Sub(t0), s.At.Sub(t0))
					}
					lastDef[s.Event.Addr] = s.At
				}
			}
			if len(events(h.outs, EventDefend)) < 5 {
				t.Errorf("only %d defences", len(events(h.outs, EventDefend)))
			}
		})
	}
}

// TestR18_LossRemovesAtOnce: on loss, OutRemoveAddress comes in the same
// step as the conflict, first, with EventConflict; Stop while bound removes
// the address, reports EventStop with it and saves state.
func TestR18_LossRemovesAtOnce(t *testing.T) {
	t.Run("second conflict", func(t *testing.T) {
		h, addr := boundHarness(t, acd.DefendOnce)
		h.inject(announceFrom(rogueMAC, addr))
		h.advance(time.Second)
		v, got := h.inject(replyFrom(rogueMAC, addr, ourMAC, addr))
		if v != acd.VerdictConflict {
			t.Errorf("verdict %v", v)
		}
		checkLoss(t, got, addr, rogueMAC)
		saves := filter(got, isKind(OutSaveState))
		if len(saves) != 1 || saves[0].Saved.Conflicts != 1 {
			t.Errorf("loss saves %v", saves)
		}
	})
	t.Run("abandon", func(t *testing.T) {
		h, addr := boundHarness(t, acd.Abandon)
		_, got := h.inject(announceFrom(rogueMAC, addr))
		checkLoss(t, got, addr, rogueMAC)
	})
	t.Run("stop while bound", func(t *testing.T) {
		for _, announcing := range []bool{true, false} {
			cfg := testConfig()
			cfg.Initial = mustAddr("169.254.3.4")
			h := startedHarness(t, cfg)
			addr := h.runUntilBound()
			if !announcing {
				h.runUntilIdle(time.Minute)
			}
			got := h.do(h.e.Stop)
			want := []string{
				"remove-address " + netip.PrefixFrom(addr, 16).String(),
				fmt.Sprintf("event STOP addr=%v t=%v", addr, h.now.Sub(t0)),
			}
			if len(got) != 3 || fmtOutput(got[0].Output) != want[0] || fmtOutput(got[1].Output) != want[1] || got[2].Kind != OutSaveState {
				t.Fatalf("stop outputs:\n%s", dumpSteps(got))
			}
			if sv := got[2].Saved; sv.Addr != addr || sv.Initial != cfg.Initial {
				t.Errorf("saved %+v", sv)
			}
			if s := h.e.Status(); s.State != StateStopped || s.Addr.IsValid() {
				t.Errorf("status %+v", s)
			}
			if _, ok := h.e.Deadline(); ok {
				t.Error("deadline after stop")
			}
			n := len(h.outs)
			h.advance(time.Hour)
			h.inject(announceFrom(rogueMAC, addr))
			h.do(h.e.Stop)
			if len(h.outs) != n {
				t.Errorf("outputs after stop: %v", h.outs[n:])
			}
		}
	})
	t.Run("stop while probing", func(t *testing.T) {
		h := startedHarness(t, testConfig())
		h.runUntil(time.Minute, "probe", isOurProbe)
		got := h.do(h.e.Stop)
		if len(got) != 2 || !isEvent(EventStop)(got[0]) || got[0].Event.Addr.IsValid() || got[1].Kind != OutSaveState {
			t.Fatalf("stop outputs:\n%s", dumpSteps(got))
		}
	})
	t.Run("stop before start", func(t *testing.T) {
		h := newHarness(t, testConfig())
		if got := h.do(h.e.Stop); len(got) != 0 {
			t.Errorf("outputs %v", got)
		}
	})
}
