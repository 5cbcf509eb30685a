package autoip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// firstProbeDelay starts an engine at t0 and returns when its first probe
// goes out, relative to t0.
func firstProbeDelay(t *testing.T, cfg Config) time.Duration {
	t.Helper()
	h := startedHarness(t, cfg)
	return h.runUntil(time.Hour, "first probe", isOurProbe).At.Sub(t0)
}

// TestR05_FirstProbeUniformInProbeWait: the first probe goes out at a
// uniformly random time in [0, PROBE_WAIT] after start.
func TestR05_FirstProbeUniformInProbeWait(t *testing.T) {
	const n = 2000
	const bins = 10
	pw := acd.DefaultTiming().ProbeWait
	var hist [bins]int
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for seed := uint64(1); seed <= n; seed++ {
		cfg := testConfig()
		cfg.Seed = seed
		d := firstProbeDelay(t, cfg)
		if d < 0 || d > pw {
			t.Fatalf("seed %d: first probe after %v, want within [0, %v]", seed, d, pw)
		}
		lo, hi = min(lo, d), max(hi, d)
		hist[min(int(d*bins/(pw+1)), bins-1)]++
	}
	if lo == hi {
		t.Fatalf("every first probe after %v: no randomness", lo)
	}
	if lo > pw/20 || hi < pw-pw/20 {
		t.Errorf("first probes span [%v, %v], want most of [0, %v]", lo, hi, pw)
	}
	var x float64
	exp := float64(n) / bins
	for _, c := range hist {
		x += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if bound := 9 + 8*math.Sqrt(18); x > bound {
		t.Errorf("first-probe delays %v: chi-square %.1f > %.1f, not uniform", hist, x, bound)
	}
}

// TestR05_LinkUpDelayAddsToProbeWait: autoipd -t (LinkUpDelay) is waited
// before PROBE_WAIT; the QNX delay= option scales PROBE_WAIT.
func TestR05_LinkUpDelayAddsToProbeWait(t *testing.T) {
	tests := []struct {
		name   string
		opts   QNXOptions
		lo, hi time.Duration
	}{
		{"defaults", DefaultQNXOptions(), 0, time.Second},
		{"-t 5", QNXOptions{DelayMS: 2000, Probes: 3, Announces: 2, WaitSeconds: 2, LinkUpSeconds: 5}, 5 * time.Second, 6 * time.Second},
		{"delay=200", QNXOptions{DelayMS: 200, Probes: 3, Announces: 2, WaitSeconds: 2}, 0, 100 * time.Millisecond},
		{"delay=200 -t 1", QNXOptions{DelayMS: 200, Probes: 3, Announces: 2, WaitSeconds: 2, LinkUpSeconds: 1}, time.Second, 1100 * time.Millisecond},
		{"delay=8000 -t 3600", QNXOptions{DelayMS: 8000, Probes: 3, Announces: 2, WaitSeconds: 2, LinkUpSeconds: 3600}, time.Hour, time.Hour + 4*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, lud := qnxTiming(t, tt.opts)
			var ds []time.Duration
			for seed := uint64(1); seed <= 50; seed++ {
				cfg := testConfig()
				cfg.Seed, cfg.Timing, cfg.LinkUpDelay = seed, tm, lud
				h := startedHarness(t, cfg)
				d := h.runUntil(2*time.Hour, "first probe", isOurProbe).At.Sub(t0)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("seed %d: first probe after %v, want within [%v, %v]", seed, d, tt.lo, tt.hi)
				}
				ds = append(ds, d)
			}
			if slicesAllEqual(ds) {
				t.Errorf("all first probes after %v", ds[0])
			}
		})
	}
}

func slicesAllEqual[T comparable](s []T) bool {
	for _, x := range s {
		if x != s[0] {
			return false
		}
	}
	return true
}

// TestR05_QNXOptionsMapping: the documented mapping of QNX options onto
// the RFC constants.
func TestR05_QNXOptionsMapping(t *testing.T) {
	def := acd.DefaultTiming()
	with := func(f func(*acd.Timing)) acd.Timing { tm := def; f(&tm); return tm }
	opts := func(f func(*QNXOptions)) QNXOptions { o := DefaultQNXOptions(); f(&o); return o }
	tests := []struct {
		name   string
		opts   QNXOptions
		want   acd.Timing
		linkUp time.Duration
	}{
		{"defaults", DefaultQNXOptions(), def, 0},
		{"delay=200", opts(func(o *QNXOptions) { o.DelayMS = 200 }), with(func(t *acd.Timing) {
			t.ProbeMax, t.ProbeMin, t.ProbeWait = 200*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
		}), 0},
		{"delay=1", opts(func(o *QNXOptions) { o.DelayMS = 1 }), with(func(t *acd.Timing) {
			t.ProbeMax, t.ProbeMin, t.ProbeWait = time.Millisecond, 500*time.Microsecond, 500*time.Microsecond
		}), 0},
		{"delay=8000", opts(func(o *QNXOptions) { o.DelayMS = 8000 }), with(func(t *acd.Timing) {
			t.ProbeMax, t.ProbeMin, t.ProbeWait = 8*time.Second, 4*time.Second, 4*time.Second
		}), 0},
		{"-p 1", opts(func(o *QNXOptions) { o.Probes = 1 }), with(func(t *acd.Timing) { t.ProbeNum = 1 }), 0},
		{"-p 100", opts(func(o *QNXOptions) { o.Probes = 100 }), with(func(t *acd.Timing) { t.ProbeNum = 100 }), 0},
		{"-a 1", opts(func(o *QNXOptions) { o.Announces = 1 }), with(func(t *acd.Timing) { t.AnnounceNum = 1 }), 0},
		{"-a 100", opts(func(o *QNXOptions) { o.Announces = 100 }), with(func(t *acd.Timing) { t.AnnounceNum = 100 }), 0},
		{"-w 1", opts(func(o *QNXOptions) { o.WaitSeconds = 1 }), with(func(t *acd.Timing) {
			t.AnnounceWait, t.AnnounceInterval = time.Second, time.Second
		}), 0},
		{"-w 60", opts(func(o *QNXOptions) { o.WaitSeconds = 60 }), with(func(t *acd.Timing) {
			t.AnnounceWait, t.AnnounceInterval = time.Minute, time.Minute
		}), 0},
		{"-t 0", opts(func(o *QNXOptions) { o.LinkUpSeconds = 0 }), def, 0},
		{"-t 3600", opts(func(o *QNXOptions) { o.LinkUpSeconds = 3600 }), def, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lu, err := tt.opts.Timing()
			if err != nil {
				t.Fatalf("Timing(): %v", err)
			}
			if got != tt.want {
				t.Errorf("Timing()\n got %+v\nwant %+v", got, tt.want)
			}
			if lu != tt.linkUp {
				t.Errorf("link-up delay %v, want %v", lu, tt.linkUp)
			}
			cfg := testConfig()
			cfg.Timing, cfg.LinkUpDelay = got, lu
			e, err := NewEngine(cfg)
			if err != nil {
				t.Fatalf("NewEngine with mapped timing: %v", err)
			}
			if e.Timing() != tt.want {
				t.Errorf("Engine.Timing() = %+v, want %+v", e.Timing(), tt.want)
			}
		})
	}
	if DefaultQNXOptions() != (QNXOptions{DelayMS: 2000, Probes: 3, Announces: 2, WaitSeconds: 2, LinkUpSeconds: 0}) {
		t.Errorf("DefaultQNXOptions() = %+v", DefaultQNXOptions())
	}
}

// TestR05_QNXOptionsOutOfRangeRefused: every out-of-range option is
// refused with an error that names it, its value and the range.
func TestR05_QNXOptionsOutOfRangeRefused(t *testing.T) {
	opts := func(f func(*QNXOptions)) QNXOptions { o := DefaultQNXOptions(); f(&o); return o }
	tests := []struct {
		name string
		opts QNXOptions
		want []string // substrings of the error
	}{
		{"delay 0", opts(func(o *QNXOptions) { o.DelayMS = 0 }), []string{"delay", " 0 ms", "1..8000"}},
		{"delay 8001", opts(func(o *QNXOptions) { o.DelayMS = 8001 }), []string{"delay", "8001", "1..8000"}},
		{"delay -1", opts(func(o *QNXOptions) { o.DelayMS = -1 }), []string{"delay", "-1", "1..8000"}},
		{"-p 0", opts(func(o *QNXOptions) { o.Probes = 0 }), []string{"-p", " 0 ", "1..100"}},
		{"-p 101", opts(func(o *QNXOptions) { o.Probes = 101 }), []string{"-p", "101", "1..100"}},
		{"-a 0", opts(func(o *QNXOptions) { o.Announces = 0 }), []string{"-a", " 0 ", "1..100"}},
		{"-a 101", opts(func(o *QNXOptions) { o.Announces = 101 }), []string{"-a", "101", "1..100"}},
		{"-w 0", opts(func(o *QNXOptions) { o.WaitSeconds = 0 }), []string{"-w", " 0 s", "1..60"}},
		{"-w 61", opts(func(o *QNXOptions) { o.WaitSeconds = 61 }), []string{"-w", "61", "1..60"}},
		{"-t -1", opts(func(o *QNXOptions) { o.LinkUpSeconds = -1 }), []string{"-t", "-1", "0..3600"}},
		{"-t 3601", opts(func(o *QNXOptions) { o.LinkUpSeconds = 3601 }), []string{"-t", "3601", "0..3600"}},
		{"zero value", QNXOptions{}, []string{"delay", "1..8000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.opts.Timing()
			if err == nil {
				t.Fatalf("%+v accepted", tt.opts)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Engine-level range checks on the same knobs.
	for _, d := range []time.Duration{-time.Nanosecond, MaxLinkUpDelay + time.Nanosecond} {
		cfg := testConfig()
		cfg.LinkUpDelay = d
		if _, err := NewEngine(cfg); err == nil || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("NewEngine(LinkUpDelay %v) error %v, want one naming the value", d, err)
		}
	}
	cfg := testConfig()
	cfg.LinkUpDelay = MaxLinkUpDelay
	if _, err := NewEngine(cfg); err != nil {
		t.Errorf("NewEngine(LinkUpDelay %v): %v", MaxLinkUpDelay, err)
	}
}

// checkProbeFormat checks an RFC 5227 §2.1.1 probe for target from us.
func checkProbeFormat(t *testing.T, f acd.Frame, target netip.Addr) {
	t.Helper()
	if f.Dst != acd.BroadcastMAC {
		t.Errorf("probe to %v, want link-layer broadcast", f.Dst)
	}
	if f.Src != ourMAC || f.SenderHW != ourMAC {
		t.Errorf("probe from %v / sender %v, want %v", f.Src, f.SenderHW, ourMAC)
	}
	if f.Op != acd.OpRequest || f.SenderIP != zeroIP || f.TargetHW != (acd.MAC{}) || f.TargetIP != target {
		t.Errorf("probe %s, want request 0.0.0.0 -> 00:00:00:00:00:00/%v", fmtFrame(f), target)
	}
	b := rawFrame(f)
	want := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	want = append(want, ourMAC[:]...)
	want = append(want, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	want = append(want, ourMAC[:]...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	want = append(want, target.AsSlice()...)
	if !bytes.HasPrefix(b, want) || len(b) != acd.MinFrameLen {
		t.Errorf("probe on the wire % x, want % x padded to %d", b, want, acd.MinFrameLen)
	}
}

// TestR06_ProbeCountSpacingFormat: PROBE_NUM probes (-p), spaced in
// [PROBE_MIN, PROBE_MAX], in the RFC 5227 format, broadcast.
func TestR06_ProbeCountSpacingFormat(t *testing.T) {
	for _, delay := range []int{2000, 200} {
		for _, p := range []int{1, 3, 5} {
			t.Run(fmt.Sprintf("delay=%d,-p=%d", delay, p), func(t *testing.T) {
				tm, _ := qnxTiming(t, QNXOptions{DelayMS: delay, Probes: p, Announces: 2, WaitSeconds: 2})
				var gaps []time.Duration
				for seed := uint64(1); seed <= 20; seed++ {
					cfg := testConfig()
					cfg.Seed, cfg.Timing = seed, tm
					h := startedHarness(t, cfg)
					addr := h.runUntilBound()
					probes := filter(h.outs, isOurProbe)
					if len(probes) != p {
						t.Fatalf("seed %d: %d probes, want %d:\n%s", seed, len(probes), p, h.dump())
					}
					for i, pr := range probes {
						checkProbeFormat(t, pr.Frame, addr)
						if i > 0 {
							gap := pr.At.Sub(probes[i-1].At)
							if gap < tm.ProbeMin || gap > tm.ProbeMax {
								t.Errorf("seed %d: probe %d %v after the previous, want [%v, %v]", seed, i+1, gap, tm.ProbeMin, tm.ProbeMax)
							}
							gaps = append(gaps, gap)
						}
					}
					if s := h.e.Status().Stats; s.Attempts != 1 {
						t.Errorf("Stats.Attempts = %d, want 1", s.Attempts)
					}
				}
				if p > 1 && slicesAllEqual(gaps) {
					t.Errorf("all probe gaps are %v: not random", gaps[0])
				}
			})
		}
	}
}

// stage positions a harness at a point of the probing phase of the first
// candidate and returns that candidate.
type stage struct {
	name string
	run  func(h *harness) netip.Addr
}

func probingStages(tm acd.Timing) []stage {
	afterProbe := func(k int, extra time.Duration) func(h *harness) netip.Addr {
		return func(h *harness) netip.Addr {
			h.t.Helper()
			var last step
			for i := 0; i < k; i++ {
				n := len(filter(h.outs, isOurProbe))
				last = h.runUntil(time.Hour, "probe", func(s step) bool { return isOurProbe(s) && len(filter(h.outs, isOurProbe)) > n })
			}
			h.advanceTo(last.At.Add(extra))
			return last.Frame.TargetIP
		}
	}
	return []stage{
		{"waiting at start", func(h *harness) netip.Addr { return h.e.Status().Addr }},
		{"waiting just before first probe", func(h *harness) netip.Addr {
			d, _ := h.e.Deadline()
			h.advanceTo(d.Add(-time.Nanosecond))
			return h.e.Status().Addr
		}},
		{"right after probe 1", afterProbe(1, 0)},
		{"between probes 1 and 2", afterProbe(1, tm.ProbeMin/2)},
		{"between probes 2 and 3", afterProbe(2, tm.ProbeMin-time.Nanosecond)},
		{"right after the last probe", afterProbe(tm.ProbeNum, 0)},
		{"announce-wait", afterProbe(tm.ProbeNum, tm.AnnounceWait/2)},
		{"end of announce-wait", afterProbe(tm.ProbeNum, tm.AnnounceWait-time.Nanosecond)},
	}
}

// checkProbeConflict checks the outputs of a conflict during probing and
// that the engine then moves on and binds another address, never cand.
func checkProbeConflict(t *testing.T, h *harness, cand netip.Addr, got []step, from acd.MAC) {
	t.Helper()
	cs := events(got, EventConflict)
	if len(cs) != 1 {
		t.Fatalf("conflict step outputs:\n%s\nwant one EventConflict", dumpSteps(got))
	}
	ev := cs[0].Event
	if ev.Addr != cand || ev.Phase != acd.PhaseProbing || ev.From != from || ev.Frame.SenderHW != from {
		t.Errorf("EventConflict %+v, want addr %v phase probing from %v", ev, cand, from)
	}
	if len(filter(got, isKind(OutRemoveAddress))) != 0 || len(filter(got, isKind(OutSendARP))) != 0 {
		t.Errorf("conflict while probing removed or sent something:\n%s", dumpSteps(got))
	}
	if st := h.e.Status(); st.Addr == cand || st.State.IsBound() || st.LastConflict == nil || st.LastConflict.Addr != cand {
		t.Errorf("after conflict: status %+v", st)
	}
	conflictAt := len(h.outs)
	bound := h.runUntilBound()
	if bound == cand {
		t.Fatalf("bound the conflicted candidate %v", cand)
	}
	later := h.outs[conflictAt:]
	if p := probedAddrs(later); len(p) != 1 || p[0] != bound {
		t.Errorf("attempts after the conflict %v, want just %v", p, bound)
	}
	if n := len(filter(later, isProbeOf(bound))); n != h.e.Timing().ProbeNum {
		t.Errorf("%d probes for the new candidate, want a full PROBE_NUM %d", n, h.e.Timing().ProbeNum)
	}
	for _, s := range h.outs {
		if s.Kind == OutAddAddress && s.Prefix.Addr() == cand {
			t.Fatalf("conflicted candidate configured: %v", s)
		}
	}
	if n := len(filter(later, isProbeOf(cand))); n != 0 {
		t.Errorf("%d probes for the conflicted candidate after the conflict", n)
	}
}

// TestR07_SenderIPConflictDuringProbing: an ARP request or reply whose
// sender IP is the candidate, from another MAC, at any point of probing
// (waiting, probing, ANNOUNCE_WAIT), is a conflict.
func TestR07_SenderIPConflictDuringProbing(t *testing.T) {
	other := mustAddr("169.254.99.99")
	frames := []struct {
		name string
		make func(cand netip.Addr) acd.Frame
	}{
		{"request", func(c netip.Addr) acd.Frame { return requestFrom(rogueMAC, c, other) }},
		{"reply to us", func(c netip.Addr) acd.Frame { return replyFrom(rogueMAC, c, ourMAC, zeroIP) }},
		{"reply to another", func(c netip.Addr) acd.Frame { return replyFrom(rogueMAC, c, peerMAC, other) }},
		{"announcement", func(c netip.Addr) acd.Frame { return announceFrom(rogueMAC, c) }},
		{"proxied (ethernet src differs)", func(c netip.Addr) acd.Frame {
			f := announceFrom(rogueMAC, c)
			f.Src = peerMAC
			return f
		}},
	}
	for _, st := range probingStages(acd.DefaultTiming()) {
		for _, fr := range frames {
			t.Run(st.name+"/"+fr.name, func(t *testing.T) {
				h := startedHarness(t, testConfig())
				cand := st.run(h)
				if cand != Candidate(SeedFromMAC(ourMAC), 0) {
					t.Fatalf("stage candidate %v", cand)
				}
				if s := h.e.Status().State; s != StateWaiting && s != StateProbing {
					t.Fatalf("state %v at stage %q", s, st.name)
				}
				v, got := h.inject(fr.make(cand))
				if v != acd.VerdictConflict {
					t.Errorf("verdict %v, want conflict", v)
				}
				checkProbeConflict(t, h, cand, got, rogueMAC)
				if s := h.e.Status().Stats; s.ProbeConflicts != 1 || s.BoundConflicts != 0 {
					t.Errorf("stats %+v", s)
				}
			})
		}
	}
}

// TestR07_NotConflictsDuringProbing: frames that mention the candidate
// without claiming it do not disturb probing.
func TestR07_NotConflictsDuringProbing(t *testing.T) {
	other := mustAddr("169.254.99.99")
	cand := Candidate(SeedFromMAC(ourMAC), 0)
	frames := []struct {
		name string
		f    acd.Frame
		v    acd.Verdict
	}{
		{"request for the candidate", requestFrom(peerMAC, other, cand), acd.VerdictQuery},
		{"reply to the candidate", replyFrom(peerMAC, other, ourMAC, cand), acd.VerdictQuery},
		{"announcement of another address", announceFrom(peerMAC, other), acd.VerdictUnrelated},
		{"probe for another address", probeFrom(peerMAC, other), acd.VerdictUnrelated},
		{"request between others", requestFrom(peerMAC, other, mustAddr("169.254.99.100")), acd.VerdictUnrelated},
	}
	for _, fr := range frames {
		t.Run(fr.name, func(t *testing.T) {
			ref := startedHarness(t, testConfig())
			ref.runUntilBound()
			ref.runUntilIdle(time.Minute)

			h := startedHarness(t, testConfig())
			h.responders = append(h.responders, func(h *harness, s step) []acd.Frame {
				if s.Kind == OutSendARP {
					return []acd.Frame{fr.f}
				}
				return nil
			})
			if v, _ := h.inject(fr.f); v != fr.v {
				t.Errorf("verdict %v, want %v", v, fr.v)
			}
			if got := h.runUntilBound(); got != cand {
				t.Fatalf("bound %v, want %v", got, cand)
			}
			h.runUntilIdle(time.Minute)
			if fmt.Sprint(fmtSteps(ref.outs)) != fmt.Sprint(fmtSteps(h.outs)) {
				t.Errorf("outputs differ from an undisturbed run:\n%s\nvs\n%s", ref.dump(), h.dump())
			}
		})
	}
}

// fmtSteps formats outputs with their times but not their step numbers.
func fmtSteps(ss []step) []string {
	r := make([]string, len(ss))
	for i, s := range ss {
		r[i] = s.At.Sub(t0).String() + " " + fmtOutput(s.Output)
	}
	return r
}

// TestR08_SimultaneousProbeConflict: another host's probe for our
// candidate during probing is a conflict.
func TestR08_SimultaneousProbeConflict(t *testing.T) {
	for _, st := range probingStages(acd.DefaultTiming()) {
		t.Run(st.name, func(t *testing.T) {
			h := startedHarness(t, testConfig())
			cand := st.run(h)
			v, got := h.inject(probeFrom(peerMAC, cand))
			if v != acd.VerdictProbeConflict {
				t.Errorf("verdict %v, want probe-conflict", v)
			}
			checkProbeConflict(t, h, cand, got, peerMAC)
		})
	}
	// Raw bytes through HandleFrame take the same path.
	h := startedHarness(t, testConfig())
	cand := h.e.Status().Addr
	v, got := h.injectRaw(rawFrame(probeFrom(peerMAC, cand)))
	if v != acd.VerdictProbeConflict {
		t.Errorf("raw: verdict %v", v)
	}
	checkProbeConflict(t, h, cand, got, peerMAC)
}

// TestR09_OwnFramesNeverConflict: every frame the engine sends, looped back
// to it at once (at every stage: probing, announce-wait, announcing,
// bound), is counted as our own and never causes a conflict or a defence,
// under every defence policy.
func TestR09_OwnFramesNeverConflict(t *testing.T) {
	for _, pol := range []acd.DefendPolicy{acd.DefendOnce, acd.Abandon} {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/raw=%v", pol, raw), func(t *testing.T) {
				cfg := testConfig()
				cfg.Defend = pol
				h := startedHarness(t, cfg)
				if raw {
					h.responders = append(h.responders, func(h *harness, s step) []acd.Frame {
						if s.Kind == OutSendARP {
							if v := h.e.HandleFrame(h.now, rawFrame(s.Frame)); v != acd.VerdictOwn {
								h.t.Errorf("looped %s: verdict %v", fmtFrame(s.Frame), v)
							}
							h.collect()
						}
						return nil
					})
				} else {
					h.responders = append(h.responders, loopback)
				}
				want := Candidate(SeedFromMAC(ourMAC), 0)
				if got := h.runUntilBound(); got != want {
					t.Fatalf("bound %v, want %v", got, want)
				}
				h.runUntilIdle(time.Minute)
				// Bound and idle: our own announcement again, and a
				// reannouncement, also looped.
				h.inject(announceFrom(ourMAC, want))
				if err := h.e.Reannounce(h.now); err != nil {
					t.Fatal(err)
				}
				h.respond(h.collect())
				h.runUntilIdle(time.Minute)
				// Own frames with a rewritten Ethernet source (a bridge).
				f := announceFrom(ourMAC, want)
				f.Src = peerMAC
				if v, _ := h.inject(f); v != acd.VerdictOwn {
					t.Errorf("own announcement via a bridge: verdict %v", v)
				}
				for _, k := range []EventKind{EventConflict, EventDefend, EventUnbind} {
					if n := len(events(h.outs, k)); n != 0 {
						t.Fatalf("%d %v events from our own frames:\n%s", n, k, h.dump())
					}
				}
				if n := len(filter(h.outs, isKind(OutRemoveAddress))); n != 0 {
					t.Fatalf("address removed")
				}
				st := h.e.Status()
				if st.Addr != want || st.State != StateBound {
					t.Errorf("status %+v", st)
				}
				if st.Stats.Own != st.Stats.Sent+2 || st.Stats.Sent < 5 {
					t.Errorf("Stats.Own = %d, Sent = %d: want every sent frame (+2 injected) counted as own", st.Stats.Own, st.Stats.Sent)
				}
				if st.Stats.Defences+st.Stats.BoundConflicts+st.Stats.ProbeConflicts != 0 {
					t.Errorf("stats %+v", st.Stats)
				}
			})
		}
	}
	// A probe from our MAC for the candidate while probing (a stale copy
	// of our own probe) is ours too.
	for _, st := range probingStages(acd.DefaultTiming()) {
		t.Run("probe/"+st.name, func(t *testing.T) {
			h := startedHarness(t, testConfig())
			cand := st.run(h)
			for _, f := range []acd.Frame{probeFrom(ourMAC, cand), announceFrom(ourMAC, cand), replyFrom(ourMAC, cand, peerMAC, cand)} {
				if v, got := h.inject(f); v != acd.VerdictOwn || len(got) != 0 {
					t.Errorf("own %s: verdict %v, outputs %v", fmtFrame(f), v, got)
				}
			}
			if got := h.runUntilBound(); got != cand {
				t.Errorf("bound %v, want %v", got, cand)
			}
		})
	}
}

// checkBindRules checks R10 over a recorded run: every OutAddAddress for a
// candidate comes after PROBE_NUM probes for it and ANNOUNCE_WAIT after the
// last, in the same step as (right after) its first announcement, never
// after a conflict on it in that attempt, and no frame before it carries
// the candidate as sender IP.
func checkBindRules(t *testing.T, outs []step, tm acd.Timing) int {
	t.Helper()
	type attempt struct {
		addr      netip.Addr
		probes    int
		lastProbe time.Time
		dead      bool
	}
	var cur attempt
	binds := 0
	for i, s := range outs {
		switch {
		case isOurProbe(s):
			if s.Frame.TargetIP == cur.addr {
				cur.probes++
				cur.lastProbe = s.At
			}
		case s.Kind == OutSendARP:
			if s.Frame.SenderIP == cur.addr && !cur.dead {
				// Before the bind, only the first announcement carries the
				// candidate as sender IP, and the bind follows it at once.
				if i+1 >= len(outs) || outs[i+1].Kind != OutAddAddress || outs[i+1].Prefix.Addr() != cur.addr || outs[i+1].Step != s.Step {
					t.Errorf("%v: sender IP %v used before the bind", s, cur.addr)
				}
			}
		case s.Kind == OutEvent && s.Event.Kind == EventProbe:
			cur = attempt{addr: s.Event.Addr, probes: 1, lastProbe: s.At}
		case s.Kind == OutEvent && s.Event.Kind == EventConflict && s.Event.Addr == cur.addr:
			cur.dead = true
		case s.Kind == OutAddAddress:
			binds++
			a := s.Prefix.Addr()
			if a != cur.addr || cur.dead {
				t.Errorf("%v: configured %v, current attempt %+v", s, a, cur)
				continue
			}
			if cur.probes < tm.ProbeNum {
				t.Errorf("%v: configured after %d probes, want %d", s, cur.probes, tm.ProbeNum)
			}
			if s.At.Sub(cur.lastProbe) < tm.AnnounceWait {
				t.Errorf("%v: configured %v after the last probe, want >= ANNOUNCE_WAIT %v", s, s.At.Sub(cur.lastProbe), tm.AnnounceWait)
			}
			if i == 0 || !isOurAnnouncement(outs[i-1]) || outs[i-1].Frame.SenderIP != a || outs[i-1].Step != s.Step {
				t.Errorf("%v: not right after the first announcement", s)
			}
			if n := len(filter(outs[:i], func(x step) bool { return isOurAnnouncement(x) && x.Frame.SenderIP == a && !x.At.Before(cur.lastProbe) })); n != 1 {
				t.Errorf("%v: %d announcements of it before the bind, want 1", s, n)
			}
			cur.dead = true // bound; later adds need a new attempt
		}
	}
	return binds
}

// TestR10_NoUseBeforeProbingCompletes: the candidate is configured only
// after PROBE_NUM probes and ANNOUNCE_WAIT, never when conflicted, and is
// never a sender IP before then.
func TestR10_NoUseBeforeProbingCompletes(t *testing.T) {
	for _, p := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("-p %d", p), func(t *testing.T) {
			tm, _ := qnxTiming(t, QNXOptions{DelayMS: 2000, Probes: p, Announces: 2, WaitSeconds: 2})
			cfg := testConfig()
			cfg.Timing = tm
			h := startedHarness(t, cfg)
			first := Candidate(SeedFromMAC(ourMAC), 0)
			// Status never claims the candidate before the bind.
			for {
				st := h.e.Status()
				if st.State.IsBound() {
					break
				}
				if len(filter(h.outs, isKind(OutAddAddress))) != 0 {
					t.Fatal("added while not bound")
				}
				if !h.next() {
					t.Fatal("idle")
				}
			}
			h.runUntilIdle(time.Minute)
			if n := checkBindRules(t, h.outs, tm); n != 1 {
				t.Errorf("%d binds", n)
			}
			for _, s := range h.outs {
				if s.Kind != OutSendARP {
					continue
				}
				if s.Frame.IsProbe() && s.Frame.SenderIP != zeroIP {
					t.Errorf("probe with sender IP %v", s.Frame.SenderIP)
				}
				if s.Frame.SenderIP == first && s.At.Before(filter(h.outs, isKind(OutAddAddress))[0].At) {
					t.Errorf("%v: sender IP = candidate before the bind", s)
				}
			}
		})
	}
	// A conflict at the last instant of ANNOUNCE_WAIT: the candidate is
	// never configured.
	h := startedHarness(t, testConfig())
	tm := h.e.Timing()
	var last step
	for i := 0; i < tm.ProbeNum; i++ {
		n := len(filter(h.outs, isOurProbe))
		last = h.runUntil(time.Hour, "probe", func(s step) bool { return isOurProbe(s) && len(filter(h.outs, isOurProbe)) > n })
	}
	h.advanceTo(last.At.Add(tm.AnnounceWait - time.Nanosecond))
	cand := last.Frame.TargetIP
	if s := h.e.Status(); s.State != StateProbing || s.State.IsBound() {
		t.Fatalf("state %v during ANNOUNCE_WAIT", s.State)
	}
	h.inject(replyFrom(rogueMAC, cand, ourMAC, zeroIP))
	h.runUntilBound()
	h.runUntilIdle(time.Minute)
	if n := checkBindRules(t, h.outs, tm); n != 1 {
		t.Errorf("%d binds", n)
	}
	for _, s := range h.outs {
		if (s.Kind == OutAddAddress && s.Prefix.Addr() == cand) || (s.Kind == OutSendARP && s.Frame.SenderIP == cand) {
			t.Errorf("conflicted candidate used: %v", s)
		}
	}
}

// TestBindPointAfterFirstAnnouncement pins the bind point: OutAddAddress and
// EventBind come right after the first announcement, in the same step, and
// before the second.
func TestBindPointAfterFirstAnnouncement(t *testing.T) {
	if acd.BindAfterAnnouncement != 1 {
		t.Fatalf("acd.BindAfterAnnouncement = %d, the engine documents 1", acd.BindAfterAnnouncement)
	}
	h := startedHarness(t, testConfig())
	addr := h.runUntilBound()
	var bind []step
	for _, s := range h.outs {
		if s.Step == h.steps {
			bind = append(bind, s)
		}
	}
	want := []string{
		"send-arp " + fmtFrame(announceFrom(ourMAC, addr)),
		"add-address " + netip.PrefixFrom(addr, 16).String(),
		fmt.Sprintf("event BIND addr=%v t=%v", addr, h.now.Sub(t0)),
		"save-state",
	}
	if len(bind) != len(want) {
		t.Fatalf("bind step:\n%s", dumpSteps(bind))
	}
	for i, s := range bind {
		if got := fmtOutput(s.Output); !strings.HasPrefix(got, want[i]) {
			t.Errorf("bind step output %d = %q, want %q", i, got, want[i])
		}
	}
	if n := len(filter(h.outs, isOurAnnouncement)); n != 1 {
		t.Errorf("%d announcements up to the bind, want 1", n)
	}
	if s := h.e.Status(); s.State != StateAnnouncing || !s.State.IsBound() || s.Addr != addr {
		t.Errorf("status after bind %+v", s)
	}
	if s := h.e.Status().Stats; s.Binds != 1 {
		t.Errorf("Stats.Binds = %d", s.Binds)
	}
	if n := len(filter(h.outs, isKind(OutAddAddress))); n != 1 {
		t.Errorf("%d adds", n)
	}
	if got := binary.BigEndian.Uint16(rawFrame(bind[0].Frame)[12:14]); got != acd.EtherTypeARP {
		t.Errorf("ethertype %#x", got)
	}
}
