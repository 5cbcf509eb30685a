package hardening

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// vt0 is where the virtual-time engine runs begin.
var vt0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// stamped is one engine output with the virtual time it came out at.
type stamped struct {
	at time.Time
	autoip.Output
}

// engineRun drives an autoip.Engine in virtual time: nothing sleeps.
type engineRun struct {
	t    testing.TB
	e    *autoip.Engine
	now  time.Time
	outs []stamped
}

func newEngineRun(t testing.TB, cfg autoip.Config) *engineRun {
	t.Helper()
	e, err := autoip.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &engineRun{t: t, e: e, now: vt0}
	e.Start(r.now)
	r.collect()
	return r
}

func (r *engineRun) collect() {
	for _, o := range r.e.AppendOutputs(nil) {
		r.outs = append(r.outs, stamped{at: r.now, Output: o})
	}
}

// advanceTo runs every timer due up to t and leaves the clock at t.
func (r *engineRun) advanceTo(t time.Time) {
	for {
		dl, ok := r.e.Deadline()
		if !ok || dl.After(t) {
			break
		}
		if dl.After(r.now) {
			r.now = dl
		}
		r.e.HandleTimer(r.now)
		r.collect()
	}
	if t.After(r.now) {
		r.now = t
	}
}

// frame delivers f now.
func (r *engineRun) frame(f acd.Frame) acd.Verdict {
	v := r.e.HandleARP(r.now, f)
	r.collect()
	return v
}

// waitBound runs timers until the engine is bound with its announcements
// done, and returns the address.
func (r *engineRun) waitBound(limit time.Duration) netip.Addr {
	r.t.Helper()
	end := r.now.Add(limit)
	for r.e.State() != autoip.StateBound {
		dl, ok := r.e.Deadline()
		if !ok || dl.After(end) {
			r.t.Fatalf("not bound within %v: state %v", limit, r.e.State())
		}
		r.advanceTo(dl)
	}
	return r.e.Status().Addr
}

// events returns the events of kind from index from on.
func (r *engineRun) events(from int, kind autoip.EventKind) []stamped {
	var out []stamped
	for _, o := range r.outs[from:] {
		if o.Kind == autoip.OutEvent && o.Event.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// sentAnnouncements returns the announcements of a that the engine sent
// from index from on.
func (r *engineRun) sentAnnouncements(from int, a netip.Addr) []stamped {
	var out []stamped
	for _, o := range r.outs[from:] {
		if o.Kind == autoip.OutSendARP && o.Frame.IsAnnouncement() && o.Frame.SenderIP == a {
			out = append(out, o)
		}
	}
	return out
}

var (
	engineMAC = acd.MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	stormAddr = netip.MustParseAddr("169.254.33.33")
)

// conflicting returns a random ARP packet that conflicts with a bound
// address a: an announcement, a request or a reply whose sender IP is a,
// from a random unicast MAC, in a frame that is broadcast or unicast to us.
func conflicting(rng *rand.Rand, a netip.Addr, us acd.MAC) acd.Frame {
	var mac acd.MAC
	for !mac.IsUnicast() || mac == us {
		for i := range mac {
			mac[i] = byte(rng.Uint32())
		}
		mac[0] &^= 1
	}
	var p acd.Packet
	switch rng.IntN(3) {
	case 0:
		p = acd.Announcement(mac, a)
	case 1:
		p = acd.Packet{Op: acd.OpRequest, SenderHW: mac, SenderIP: a, TargetIP: randLL(rng)}
	default:
		p = acd.Packet{Op: acd.OpReply, SenderHW: mac, SenderIP: a, TargetHW: us, TargetIP: randLL(rng)}
	}
	dst := acd.BroadcastMAC
	if rng.IntN(2) == 0 {
		dst = us
	}
	return acd.Frame{Dst: dst, Src: mac, Packet: p}
}

// randLL returns a random usable link-local address.
func randLL(rng *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{169, 254, byte(1 + rng.IntN(254)), byte(rng.IntN(256))})
}

// TestR15_R16_R17_EngineConflictStorm: storms of conflicting ARP against a
// bound address, in virtual time, under each policy. However many packets
// arrive, defensive announcements are at least DEFEND_INTERVAL apart (R17);
// the default policy defends once and gives the address up at the second
// conflict within DEFEND_INTERVAL (R15), and keeps defending a slow drip of
// conflicts spaced wider than that; abandon gives it up at the first,
// without a defence (R16). (DefendForever is refused for link-local
// addresses, RFC 3927 §2.5; package acd tests its rate limiter.)
func TestR15_R16_R17_EngineConflictStorm(t *testing.T) {
	tm := acd.DefaultTiming()
	cases := []struct {
		name     string
		policy   acd.DefendPolicy
		frames   int
		spacing  time.Duration
		defences int // exactly
		lost     bool
	}{
		// 10,000 frames over 100 s.
		{"R15_once_storm", acd.DefendOnce, 10000, 10 * time.Millisecond, 1, true},
		{"R16_abandon_storm", acd.Abandon, 10000, 10 * time.Millisecond, 0, true},
		// One conflict every DEFEND_INTERVAL + 1 ms: each is defended.
		{"R15_once_drip", acd.DefendOnce, 12, tm.DefendInterval + time.Millisecond, 12, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(len(tc.name)), 99))
			r := newEngineRun(t, autoip.Config{HW: engineMAC, Initial: stormAddr, Defend: tc.policy})
			if a := r.waitBound(time.Minute); a != stormAddr {
				t.Fatalf("bound %v, want %v", a, stormAddr)
			}
			r.advanceTo(r.now.Add(time.Minute)) // announcements long done
			mark := len(r.outs)
			start := r.now
			for i := 0; i < tc.frames; i++ {
				if tc.spacing == 0 && i > 0 && i%1000 == 0 {
					r.advanceTo(r.now.Add(4 * time.Second))
				}
				r.frame(conflicting(rng, stormAddr, engineMAC))
				r.advanceTo(r.now.Add(tc.spacing))
			}
			r.advanceTo(r.now.Add(time.Minute)) // let a new address settle
			stormEnd := r.now

			defs := r.sentAnnouncements(mark, stormAddr)
			defEvents := r.events(mark, autoip.EventDefend)
			conflicts := r.events(mark, autoip.EventConflict)
			binds := r.events(mark, autoip.EventBind)
			t.Logf("%d frames over %v: %d defences, %d conflicts, %d binds, stats %+v",
				tc.frames, stormEnd.Sub(start), len(defs), len(conflicts), len(binds), r.e.Status().Stats)
			if len(defs) != tc.defences || len(defEvents) != tc.defences {
				t.Errorf("%d defensive announcements (%d DEFEND events), want %d", len(defs), len(defEvents), tc.defences)
			}
			for i := 1; i < len(defs); i++ {
				if gap := defs[i].at.Sub(defs[i-1].at); gap < tm.DefendInterval {
					t.Errorf("R17: defences %d and %d only %v apart", i-1, i, gap)
				}
			}
			if tc.lost {
				if len(conflicts) != 1 || conflicts[0].Event.Phase != acd.PhaseBound || conflicts[0].Event.Addr != stormAddr {
					t.Fatalf("conflict events %v, want exactly one for bound %v", conflicts, stormAddr)
				}
				if len(binds) != 1 || binds[0].Event.Addr == stormAddr {
					t.Errorf("binds after the loss %v, want exactly one, of another address", binds)
				}
				if tc.policy == acd.Abandon && !conflicts[0].at.Equal(start) {
					t.Errorf("R16: abandoned at %v, want at the first conflict (%v)", conflicts[0].at.Sub(vt0), start.Sub(vt0))
				}
				if tc.policy == acd.DefendOnce && len(defs) == 1 && conflicts[0].at.Sub(defs[0].at) >= tm.DefendInterval {
					t.Errorf("R15: gave up %v after the defence, want within DEFEND_INTERVAL", conflicts[0].at.Sub(defs[0].at))
				}
			} else {
				if len(conflicts) != 0 || len(binds) != 0 || r.e.Status().Addr != stormAddr || !r.e.State().IsBound() {
					t.Errorf("address not kept: %d conflicts, %d binds, status %+v", len(conflicts), len(binds), r.e.Status())
				}
			}
			if st := r.e.Status().Stats; st.Defences != uint64(tc.defences) {
				t.Errorf("stats count %d defences, %d sent", st.Defences, tc.defences)
			}
		})
	}
}

// TestR11_EngineSavesAttemptBeforeFirstProbe: the state that records an
// attempt (LastAttempt, which RATE_LIMIT_INTERVAL is measured from after a
// restart) is handed out for saving before the attempt's first probe is
// handed out for sending. The client performs outputs in order, so with the
// opposite order a crash (kill -9, power loss) between the two leaves a
// probe on the wire that the state file does not know about: once
// MAX_CONFLICTS is reached, the restarted daemon measures the rate limit
// from the attempt before and probes up to RATE_LIMIT_INTERVAL too early.
// (Saving when the attempt is scheduled, with LastAttempt = the planned
// time of its first probe, passes too, and gives a rate-limited attempt a
// whole RATE_LIMIT_INTERVAL for the write to reach the disk.)
func TestR11_EngineSavesAttemptBeforeFirstProbe(t *testing.T) {
	saved := autoip.SavedState{Conflicts: 10, LastAttempt: vt0.Add(-2 * time.Minute)}
	r := newEngineRun(t, autoip.Config{HW: engineMAC, Saved: saved})
	for attempt := 0; attempt < 3; attempt++ {
		mark := len(r.outs)
		for {
			dl, ok := r.e.Deadline()
			if !ok {
				t.Fatal("engine idle")
			}
			r.advanceTo(dl)
			if len(r.events(mark, autoip.EventProbe)) > 0 {
				break
			}
		}
		probe := -1
		for i, o := range r.outs[mark:] {
			if o.Kind == autoip.OutSendARP && o.Frame.IsProbe() {
				probe = i
				break
			}
		}
		if probe < 0 {
			t.Fatalf("attempt %d: PROBE event without a probe", attempt)
		}
		at := r.outs[mark+probe].at
		ok := false
		var kinds []string
		for i, o := range r.outs[mark:] {
			kinds = append(kinds, o.Kind.String())
			if i < probe && o.Kind == autoip.OutSaveState && !o.Saved.LastAttempt.Before(at) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("R11: attempt %d: no state with LastAttempt >= the first probe's time (%v) is saved before the probe is sent; outputs: %s",
				attempt, at.Sub(vt0), strings.Join(kinds, ", "))
		}
		// Lose this candidate, so that another attempt follows.
		a := r.e.Status().Addr
		r.frame(acd.BroadcastFrame(acd.Packet{Op: acd.OpReply, SenderHW: acd.MAC{0x02, 9, 9, 9, 9, 9}, SenderIP: a, TargetHW: engineMAC}))
	}
}
