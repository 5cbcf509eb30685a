package autoip

import (
	"errors"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestR29_ImpossibleSenderClaimingOurAddressConflicts: an ARP packet whose
// sender IP is our candidate or bound address is a conflict whatever its
// sender hardware address (RFC 3927 §2.5 "MUST NOT ignore conflicting ARP
// packets"), and the impossible MAC is still counted as a bad sender.
func TestR29_ImpossibleSenderClaimingOurAddressConflicts(t *testing.T) {
	for _, m := range []acd.MAC{{}, acd.BroadcastMAC, {0x01, 0x00, 0x5e, 0, 0, 1}} {
		t.Run("probing/"+m.String(), func(t *testing.T) {
			h := startedHarness(t, testConfig())
			h.runUntil(10*time.Second, "first probe", isOurProbe)
			cand := h.e.Status().Addr
			v, got := h.inject(announceFrom(m, cand))
			if v != acd.VerdictConflict || len(filter(got, isEvent(EventConflict))) != 1 {
				t.Fatalf("verdict %v outputs\n%s", v, dumpSteps(got))
			}
			if s := h.e.Status(); s.Stats.BadSender != 1 || s.Stats.ProbeConflicts != 1 || s.Addr == cand {
				t.Errorf("status %+v", s)
			}
		})
		t.Run("bound/"+m.String(), func(t *testing.T) {
			h := startedHarness(t, testConfig())
			addr := h.runUntilBound()
			h.runUntilIdle(time.Minute)
			v, got := h.inject(replyFrom(m, addr, ourMAC, addr))
			if v != acd.VerdictConflict || len(filter(got, isEvent(EventDefend))) != 1 {
				t.Fatalf("verdict %v outputs\n%s", v, dumpSteps(got))
			}
			h.advance(time.Second)
			_, got = h.inject(announceFrom(m, addr))
			if len(filter(got, isKind(OutRemoveAddress))) != 1 {
				t.Fatalf("second conflict within DEFEND_INTERVAL kept the address:\n%s", dumpSteps(got))
			}
			if s := h.e.Status(); s.Stats.BadSender != 2 || s.Stats.BoundConflicts != 2 {
				t.Errorf("stats %+v", s.Stats)
			}
		})
	}
}

// TestR11_ConflictCountForgivenWhileHeld: the conflict count that drives
// the rate limit goes back to zero once an address has been held for
// RATE_LIMIT_INTERVAL, while it is held, and the zero is saved then (not
// only when the address is given up, which may be never).
func TestR11_ConflictCountForgivenWhileHeld(t *testing.T) {
	first := Candidate(SeedFromMAC(ourMAC), 0)
	second := Candidate(SeedFromMAC(ourMAC), 1)
	h := startedHarness(t, testConfig())
	h.responders = append(h.responders, rogueFor(rogueMAC, first, second))
	addr := h.runUntilBound()
	h.responders = nil
	if c := h.e.Saved().Conflicts; c != 2 {
		t.Fatalf("conflicts after two lost candidates: %d", c)
	}
	var boundAt time.Time
	for _, s := range events(h.outs, EventBind) {
		boundAt = s.At
	}
	rli := h.e.Timing().RateLimitInterval
	h.advanceTo(boundAt.Add(rli - time.Nanosecond))
	if c := h.e.Saved().Conflicts; c != 2 {
		t.Fatalf("count forgiven early: %d at %v", c, h.now.Sub(boundAt))
	}
	h.advanceTo(boundAt.Add(rli))
	if c := h.e.Saved().Conflicts; c != 0 {
		t.Fatalf("count %d after holding %v for RATE_LIMIT_INTERVAL", c, addr)
	}
	saves := filter(h.outs, func(s step) bool { return s.Kind == OutSaveState && s.At.Equal(boundAt.Add(rli)) })
	if len(saves) != 1 || saves[0].Saved.Conflicts != 0 || saves[0].Saved.Addr != addr {
		t.Fatalf("want one save of the forgiven count at bind+%v:\n%s", rli, dumpSteps(saves))
	}
	if _, ok := h.e.Deadline(); ok {
		t.Error("a deadline remains once bound, announced and forgiven")
	}
}

// TestSameSeedDifferentMACsDrawDifferentDelays: Seed selects the address
// sequence only; the delay stream is keyed by the MAC too, so two hosts
// forced onto the same candidates do not probe in lockstep for ever.
func TestSameSeedDifferentMACsDrawDifferentDelays(t *testing.T) {
	run := func(mac acd.MAC) (time.Time, []step) {
		h := startedHarness(t, Config{HW: mac, Seed: 42})
		s := h.runUntil(10*time.Second, "first probe", isOurProbe)
		return s.At, h.outs
	}
	a, outA := run(ourMAC)
	b, outB := run(peerMAC)
	if a.Equal(b) {
		t.Errorf("both first probes at %v", a.Sub(t0))
	}
	if pa, pb := probedAddrs(outA), probedAddrs(outB); len(pa) == 0 || len(pb) == 0 || pa[0] != pb[0] {
		t.Errorf("same seed, different first candidates: %v %v", pa, pb)
	}
}

// TestNotSentProbeDoesNotCount: a probe the link did not send is sent again,
// so the address is claimed only after PROBE_NUM probes really went out,
// and the stats say what was sent.
func TestNotSentProbeDoesNotCount(t *testing.T) {
	h := startedHarness(t, testConfig())
	fails := 2
	h.responders = append(h.responders, func(h *harness, s step) []acd.Frame {
		if isOurProbe(s) && fails > 0 {
			fails--
			h.e.NotSent(h.now, s.Frame)
		}
		return nil
	})
	h.runUntilBound()
	probes := filter(h.outs, isOurProbe)
	if len(probes) != 3+2 {
		t.Fatalf("%d probes asked for, want 5 (3 sent, 2 not):\n%s", len(probes), h.dump())
	}
	st := h.e.Status().Stats
	if st.NotSent != 2 || st.Sent != uint64(len(filter(h.outs, isKind(OutSendARP))))-2 || st.Attempts != 1 {
		t.Errorf("stats %+v", st)
	}
	tm := h.e.Timing()
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].At.Sub(probes[i-1].At); gap < tm.ProbeMin || gap > tm.ProbeMax {
			t.Errorf("probe gap %v outside [%v, %v]", gap, tm.ProbeMin, tm.ProbeMax)
		}
	}
}

// TestReannounceErrNotBound: Reannounce's error is matchable.
func TestReannounceErrNotBound(t *testing.T) {
	h := startedHarness(t, testConfig())
	if err := h.e.Reannounce(h.now); !errors.Is(err, ErrNotBound) {
		t.Fatalf("Reannounce while probing: %v, want ErrNotBound", err)
	}
}
