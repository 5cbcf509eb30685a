package autoip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// fuzzTiming is small so that a fuzz input of a few hundred bytes covers
// probing, binding, defending and rate limiting.
func fuzzTiming(probes, announces int) acd.Timing {
	return acd.Timing{
		ProbeWait:         10 * time.Millisecond,
		ProbeNum:          probes,
		ProbeMin:          10 * time.Millisecond,
		ProbeMax:          20 * time.Millisecond,
		AnnounceWait:      20 * time.Millisecond,
		AnnounceNum:       announces,
		AnnounceInterval:  20 * time.Millisecond,
		MaxConflicts:      3,
		RateLimitInterval: 200 * time.Millisecond,
		DefendInterval:    50 * time.Millisecond,
	}
}

// fuzzReader hands out the fuzz input a byte at a time, zeros once it is
// exhausted.
type fuzzReader struct {
	b []byte
	i int
}

func (r *fuzzReader) more() bool { return r.i < len(r.b) }

func (r *fuzzReader) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// checker is an independent model of what the engine may do; it sees every
// output of every step and fails the test on the first violation.
type checker struct {
	t  testing.TB
	tm acd.Timing

	bound     netip.Addr // configured (added, not yet removed)
	bindAt    time.Time
	lastDef   time.Time // last defence of the current binding
	cur       attempt   // the attempt in progress
	conflicts int       // conflicts counted for rate limiting
	lastFirst time.Time // last attempt's first probe

	log  [48]logEntry // recent steps, for failure messages (a ring)
	logN int
}

type logEntry struct {
	now  time.Time
	info stepInfo
	outs []Output
}

type attempt struct {
	addr      netip.Addr
	probes    int
	lastProbe time.Time
	valid     bool
}

// stepInfo says what the step that produced outputs was. It is formatted
// only when a check fails, to keep fuzzing fast.
type stepInfo struct {
	what       string
	frame      *acd.Frame // a delivered frame
	raw        []byte     // delivered raw bytes
	arg        bool       // SetLink, SetRoutable
	ownFrame   bool       // a frame with our sender MAC was delivered
	reannounce bool       // Reannounce was called
	timer      bool       // HandleTimer was called
}

func (c *checker) fail(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	for i := max(0, c.logN-len(c.log)); i < c.logN; i++ {
		l := &c.log[i%len(c.log)]
		fmt.Fprintf(&b, "\t%v %s", l.now.Sub(t0), l.info.what)
		switch {
		case l.info.frame != nil:
			fmt.Fprintf(&b, " %s", fmtFrame(*l.info.frame))
		case l.info.raw != nil:
			fmt.Fprintf(&b, " % x", l.info.raw)
		case l.info.what == "link" || l.info.what == "routable":
			fmt.Fprintf(&b, " %v", l.info.arg)
		}
		b.WriteString("\n")
		for _, o := range l.outs {
			fmt.Fprintf(&b, "\t\t%s\n", fmtOutput(o))
		}
	}
	c.t.Fatalf("%s\nrecent steps:\n%s", fmt.Sprintf(format, args...), b.String())
}

// check runs the invariants over one step's outputs, then over the
// engine's state.
func (c *checker) check(e *Engine, now time.Time, info stepInfo, outs []Output) {
	c.t.Helper()
	l := &c.log[c.logN%len(c.log)]
	l.now, l.info, l.outs = now, info, append(l.outs[:0], outs...)
	c.logN++
	prev := func(i int) (Output, bool) {
		if i == 0 {
			return Output{}, false
		}
		return outs[i-1], true
	}
	for i, o := range outs {
		switch o.Kind {
		case OutSendARP:
			f := o.Frame
			if f.SenderHW != ourMAC || f.Src != ourMAC || f.Dst != acd.BroadcastMAC || f.Op != acd.OpRequest || f.TargetHW != (acd.MAC{}) {
				c.fail("bad frame sent: %s", fmtFrame(f))
			}
			if !InRange(f.TargetIP) {
				c.fail("frame for %v, outside the range", f.TargetIP)
			}
			switch {
			case f.IsProbe():
				if c.bound.IsValid() {
					c.fail("probe for %v while %v is configured", f.TargetIP, c.bound)
				}
				if c.cur.valid && f.TargetIP == c.cur.addr {
					c.cur.probes++
					c.cur.lastProbe = now
				} else if i+1 >= len(outs) || outs[i+1].Kind != OutEvent || outs[i+1].Event.Kind != EventProbe || outs[i+1].Event.Addr != f.TargetIP {
					c.fail("probe for %v outside an attempt", f.TargetIP)
				}
			case f.IsAnnouncement():
				a := f.SenderIP
				if a != c.bound {
					// Only the first announcement of a new address, and
					// the bind follows it at once.
					if i+1 >= len(outs) || outs[i+1].Kind != OutAddAddress || outs[i+1].Prefix.Addr() != a {
						c.fail("announcement of %v, which is not configured (bound %v)", a, c.bound)
					}
				}
			default:
				c.fail("neither probe nor announcement: %s", fmtFrame(f))
			}
		case OutAddAddress:
			a := o.Prefix.Addr()
			if !InRange(a) || o.Prefix.Bits() != 16 {
				c.fail("configured %v", o.Prefix)
			}
			if c.bound.IsValid() {
				if !info.reannounce || a != c.bound {
					c.fail("add %v while %v is configured", a, c.bound)
				}
				continue
			}
			if info.reannounce {
				c.fail("Reannounce added %v while nothing was bound", a)
			}
			cur := c.cur
			if !cur.valid || cur.addr != a {
				c.fail("add %v outside its attempt (%+v)", a, cur)
			}
			if cur.probes < c.tm.ProbeNum {
				c.fail("add %v after %d probes, want %d", a, cur.probes, c.tm.ProbeNum)
			}
			if now.Sub(cur.lastProbe) < c.tm.AnnounceWait {
				c.fail("add %v %v after the last probe, want >= %v", a, now.Sub(cur.lastProbe), c.tm.AnnounceWait)
			}
			if p, ok := prev(i); !ok || p.Kind != OutSendARP || !p.Frame.IsAnnouncement() || p.Frame.SenderIP != a {
				c.fail("add %v not right after its first announcement", a)
			}
			c.bound, c.bindAt, c.lastDef = a, now, time.Time{}
			c.cur.valid = false
		case OutRemoveAddress:
			a := o.Prefix.Addr()
			if !c.bound.IsValid() || a != c.bound {
				c.fail("remove %v, configured is %v", a, c.bound)
			}
			if now.Sub(c.bindAt) >= c.tm.RateLimitInterval {
				c.conflicts = 0
			}
			c.bound = netip.Addr{}
		case OutSaveState:
			if err := o.Saved.Check(); err != nil {
				c.fail("saved a bad state: %v", err)
			}
		case OutEvent:
			ev := o.Event
			switch ev.Kind {
			case EventProbe:
				p, ok := prev(i)
				if !ok || p.Kind != OutSendARP || !p.Frame.IsProbe() || p.Frame.TargetIP != ev.Addr {
					c.fail("EventProbe %v not right after its first probe", ev.Addr)
				}
				if c.conflicts >= c.tm.MaxConflicts && !c.lastFirst.IsZero() && now.Sub(c.lastFirst) < c.tm.RateLimitInterval {
					c.fail("attempt on %v %v after the previous with %d conflicts, want >= %v", ev.Addr, now.Sub(c.lastFirst), c.conflicts, c.tm.RateLimitInterval)
				}
				c.lastFirst = now
				c.cur = attempt{addr: ev.Addr, probes: 1, lastProbe: now, valid: true}
			case EventBind:
				p, ok := prev(i)
				if !ok || p.Kind != OutAddAddress || p.Prefix.Addr() != ev.Addr {
					c.fail("EventBind %v not right after its add", ev.Addr)
				}
			case EventConflict:
				if info.ownFrame {
					c.fail("our own frame caused a conflict on %v", ev.Addr)
				}
				// R29: an impossible sender MAC conflicts only by claiming the address.
				if ev.From == ourMAC || (!ev.From.IsUnicast() && ev.Frame.SenderIP != ev.Addr) {
					c.fail("conflict from %v (sender IP %v) on %v", ev.From, ev.Frame.SenderIP, ev.Addr)
				}
				if !InRange(ev.Addr) {
					c.fail("conflict on %v", ev.Addr)
				}
				if ev.Phase == acd.PhaseBound {
					if p, ok := prev(i); !ok || p.Kind != OutRemoveAddress || p.Prefix.Addr() != ev.Addr {
						c.fail("bound conflict on %v not right after its removal", ev.Addr)
					}
				} else if c.bound.IsValid() {
					c.fail("probing conflict while %v is configured", c.bound)
				}
				if c.cur.addr == ev.Addr {
					c.cur.valid = false
				}
				c.conflicts++
			case EventDefend:
				if info.ownFrame {
					c.fail("our own frame caused a defence of %v", ev.Addr)
				}
				if ev.Addr != c.bound {
					c.fail("defended %v, configured is %v", ev.Addr, c.bound)
				}
				if p, ok := prev(i); !ok || p.Kind != OutSendARP || !p.Frame.IsAnnouncement() || p.Frame.SenderIP != ev.Addr {
					c.fail("defence of %v without an announcement", ev.Addr)
				}
				if !c.lastDef.IsZero() && now.Sub(c.lastDef) < c.tm.DefendInterval {
					c.fail("defences of %v %v apart, want >= %v", ev.Addr, now.Sub(c.lastDef), c.tm.DefendInterval)
				}
				c.lastDef = now
			case EventUnbind, EventStop:
				if ev.Addr.IsValid() {
					if p, ok := prev(i); !ok || p.Kind != OutRemoveAddress || p.Prefix.Addr() != ev.Addr {
						c.fail("%v of %v not right after its removal", ev.Kind, ev.Addr)
					}
				}
			}
		}
	}
	// The engine's own view agrees with the model.
	st := e.Status()
	if st.State.IsBound() != c.bound.IsValid() || (c.bound.IsValid() && st.Addr != c.bound) {
		c.fail("status %v %v, model bound %v", st.State, st.Addr, c.bound)
	}
	switch st.State {
	case StateStopped, StateLinkDown, StateSuspended:
		c.cur.valid = false // the detector is stopped; a bind needs a new attempt
		if _, ok := e.Deadline(); ok {
			c.fail("deadline in state %v", st.State)
		}
	case StateWaiting, StateProbing, StateAnnouncing:
		if _, ok := e.Deadline(); !ok {
			c.fail("no deadline in state %v: stalled", st.State)
		}
	}
	if d, ok := e.Deadline(); ok && (d.Before(now) || (info.timer && !d.After(now))) {
		c.fail("deadline %v not after now %v", d.Sub(t0), now.Sub(t0))
	}
	if st.Addr.IsValid() && !InRange(st.Addr) {
		c.fail("status address %v", st.Addr)
	}
}

// runFuzz decodes data into a configuration and a sequence of steps and
// checks every step.
func runFuzz(t testing.TB, data []byte) {
	// Longer inputs add little and make the fuzzer's minimisation slow.
	const maxInput = 512
	if len(data) > maxInput {
		data = data[:maxInput]
	}
	r := &fuzzReader{b: data}
	flags, knobs, seedByte := r.byte(), r.byte(), r.byte()
	cfg := Config{
		HW:              ourMAC,
		Seed:            uint64(seedByte) + 1,
		Timing:          fuzzTiming(1+int(knobs%4), 1+int(knobs/4%3)),
		Defend:          acd.DefendPolicy(flags % 2), // once or abandon: RFC 3927 §2.5
		YieldToRoutable: flags&0x40 != 0,
	}
	initial := mustAddr("169.254.10.10")
	if flags&0x04 != 0 {
		cfg.Initial = initial
	}
	if flags&0x08 != 0 {
		cfg.Saved = SavedState{
			Addr:        Candidate(cfg.Seed, 1),
			Initial:     initial,
			Conflicts:   int(flags>>4&3) * 2,
			LastAttempt: t0.Add(-time.Duration(knobs) * time.Millisecond),
		}
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	c := &checker{t: t, tm: e.Timing()}
	if cfg.Saved.Addr.IsValid() {
		c.conflicts, c.lastFirst = cfg.Saved.Conflicts, cfg.Saved.LastAttempt
	}
	now := t0
	var buf []Output
	stepDo := func(info stepInfo, f func()) {
		f()
		buf = e.AppendOutputs(buf[:0])
		c.check(e, now, info, buf)
	}
	advanceTo := func(end time.Time) {
		for {
			d, ok := e.Deadline()
			if !ok || d.After(end) {
				break
			}
			now = d
			stepDo(stepInfo{what: "timer", timer: true}, func() { e.HandleTimer(now) })
		}
		now = end
	}
	macs := []acd.MAC{ourMAC, rogueMAC, peerMAC, {}, {0x01, 0x00, 0x5e, 0, 0, 1}, rogueMAC}
	addrs := func(i byte) netip.Addr {
		switch i % 8 {
		case 0:
			return zeroIP
		case 1:
			if a := e.Status().Addr; a.IsValid() {
				return a
			}
			return Candidate(cfg.Seed, 0)
		case 2:
			if c.bound.IsValid() {
				return c.bound
			}
			return e.Saved().Addr
		case 3:
			return Candidate(cfg.Seed, 0)
		case 4:
			return Candidate(cfg.Seed, 1)
		case 5:
			return initial
		case 6:
			return mustAddr("169.254.0.1")
		}
		return mustAddr("10.0.0.1")
	}

	stepDo(stepInfo{what: "start"}, func() { e.Start(now) })
	for r.more() {
		op := r.byte()
		switch op % 10 {
		case 0, 1, 2, 3: // an ARP frame
			mb, ob, sb, tb := r.byte(), r.byte(), r.byte(), r.byte()
			mac := macs[int(mb)%len(macs)]
			p := acd.Packet{Op: acd.OpRequest, SenderHW: mac, SenderIP: addrs(sb), TargetIP: addrs(tb)}
			if ob&1 != 0 {
				p.Op = acd.OpReply
				p.TargetHW = macs[int(ob>>1)%len(macs)]
			}
			f := acd.BroadcastFrame(p)
			if ob&2 != 0 {
				f.Src = peer2MAC // a bridge rewrote the source
			}
			info := stepInfo{what: "frame", frame: &f, ownFrame: mac == ourMAC}
			var v acd.Verdict
			if ob&4 != 0 {
				b := rawFrame(f)
				stepDo(info, func() { v = e.HandleFrame(now, b) })
			} else {
				stepDo(info, func() { v = e.HandleARP(now, f) })
			}
			switch {
			case mac == ourMAC && v != acd.VerdictOwn:
				t.Fatalf("own frame: verdict %v", v)
			case !mac.IsUnicast() && v != acd.VerdictBadSender && v != acd.VerdictConflict:
				t.Fatalf("bad sender %v: verdict %v", mac, v)
			}
		case 4: // raw bytes
			n := int(r.byte() % 64)
			b := make([]byte, 0, n)
			for range n {
				b = append(b, r.byte())
			}
			stepDo(stepInfo{what: "raw", raw: b}, func() { e.HandleFrame(now, b) })
		case 5, 6: // clock advance
			advanceTo(now.Add(time.Duration(r.byte()) * time.Millisecond))
		case 7: // next deadline
			if d, ok := e.Deadline(); ok {
				now = d
				stepDo(stepInfo{what: "timer", timer: true}, func() { e.HandleTimer(now) })
			}
		case 8: // control
			switch r.byte() % 6 {
			case 0:
				up := e.Status().State == StateLinkDown
				stepDo(stepInfo{what: "link", arg: up}, func() { e.SetLink(now, up) })
			case 1:
				stepDo(stepInfo{what: "reannounce", reannounce: true}, func() { _ = e.Reannounce(now) })
			case 2:
				stepDo(stepInfo{what: "stop"}, func() { e.Stop(now) })
			case 3:
				stepDo(stepInfo{what: "start"}, func() { e.Start(now) })
			case 4:
				on := !e.routable
				stepDo(stepInfo{what: "routable", arg: on}, func() { e.SetRoutable(now, on) })
			case 5:
				advanceTo(now.Add(time.Second))
			}
		case 9: // a mangled ARP frame
			f := announceFrom(rogueMAC, addrs(r.byte()))
			b := rawFrame(f)
			pos, val := r.byte(), r.byte()
			b[int(pos)%len(b)] = val
			if pos&0x80 != 0 {
				b = b[:int(pos&0x3f)%len(b)]
			}
			stepDo(stepInfo{what: "mangled", raw: b}, func() { e.HandleFrame(now, b) })
		}
	}
	// Let it settle: it must never stall or break an invariant.
	advanceTo(now.Add(10 * time.Second))
}

// FuzzEngine checks the engine's invariants after every step of random
// sequences of frames, clock advances and link changes.
func FuzzEngine(f *testing.F) {
	// flags, knobs, seed, then ops.
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0, 5, 1, 5, 255, 5, 255, 7, 7, 7})
	// Conflicting announcements while bound, every policy.
	for pol := byte(0); pol < 3; pol++ {
		f.Add([]byte{pol, 5, 9, 5, 200, 0, 1, 0, 1, 1, 5, 20, 0, 1, 0, 1, 1, 5, 60, 0, 1, 0, 1, 1})
	}
	// A rogue claiming each candidate: conflicts into rate limiting.
	f.Add([]byte{0, 1, 3, 7, 0, 1, 1, 1, 1, 7, 0, 1, 1, 1, 1, 7, 0, 1, 1, 1, 1, 7, 0, 1, 1, 1, 1, 7, 0, 1, 1, 1, 1, 5, 255, 7, 0, 1, 1, 1, 1, 5, 255})
	// Own frames at every stage.
	f.Add([]byte{1, 5, 2, 0, 0, 0, 1, 1, 7, 0, 0, 0, 0, 1, 7, 0, 0, 0, 1, 1, 5, 100, 0, 0, 0, 1, 1})
	// Link toggles, reannounce, stop/start, routable.
	f.Add([]byte{0x4c, 6, 4, 5, 200, 8, 1, 8, 0, 5, 10, 8, 0, 5, 200, 8, 4, 5, 50, 8, 4, 5, 200, 8, 2, 8, 3, 5, 200})
	// Garbage.
	f.Add([]byte{2, 0, 0, 4, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 9, 1, 20, 8, 9, 1, 0x85, 3, 4, 60, 0, 0, 0, 0})
	// Saved state with conflicts over the limit.
	f.Add([]byte{0x38, 100, 7, 0, 1, 1, 1, 1, 7, 0, 1, 1, 1, 1, 5, 255, 7, 0, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		runFuzz(t, data)
	})
}

// TestFuzzEngineLong runs the fuzz body over long pseudo-random inputs, so
// that plain `go test` exercises deep sequences too.
func TestFuzzEngineLong(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 30
	}
	x := uint64(0x9E3779B97F4A7C15)
	for i := 0; i < n; i++ {
		data := make([]byte, 64+i)
		for j := range data {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			data[j] = byte(x)
		}
		// Bias towards frames that concern our addresses and short
		// advances, so that binds and conflicts happen often.
		for j := 3; j+4 < len(data); j += 5 {
			if data[j]%3 == 0 {
				data[j+2] = 1 + data[j+2]%2 // sender: candidate or bound
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { runFuzz(t, data) })
	}
}
