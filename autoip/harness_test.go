package autoip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// The harness drives an Engine in virtual time: it starts at t0, jumps from
// deadline to deadline, and records every output with the time and the step
// (one engine call) that produced it. Nothing here sleeps or reads a clock.

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Hardware addresses used throughout the tests.
var (
	ourMAC   = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	rogueMAC = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0xbb}
	peerMAC  = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0xcc}
	peer2MAC = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0xdd}
)

var zeroIP = netip.AddrFrom4([4]byte{})

// step is one recorded engine output.
type step struct {
	At   time.Time
	Step int // index of the engine call that produced it
	Output
}

func (s step) String() string {
	return fmt.Sprintf("%v #%d %s", s.At.Sub(t0), s.Step, fmtOutput(s.Output))
}

// fmtOutput formats an output with every field that matters, for
// comparisons and failure messages.
func fmtOutput(o Output) string {
	switch o.Kind {
	case OutSendARP:
		return fmt.Sprintf("send-arp %s", fmtFrame(o.Frame))
	case OutAddAddress, OutRemoveAddress:
		return fmt.Sprintf("%v %v", o.Kind, o.Prefix)
	case OutEvent:
		ev := o.Event
		s := fmt.Sprintf("event %v addr=%v t=%v", ev.Kind, ev.Addr, ev.Time.Sub(t0))
		switch ev.Kind {
		case EventConflict, EventDefend:
			s += fmt.Sprintf(" phase=%v from=%v frame={%s}", ev.Phase, ev.From, fmtFrame(ev.Frame))
		case EventRateLimit:
			s += fmt.Sprintf(" until=%v", ev.Until.Sub(t0))
		case EventUnbind:
			s += " reason=" + ev.Reason
		}
		return s
	case OutSaveState:
		sv := o.Saved
		la := "never"
		if !sv.LastAttempt.IsZero() {
			la = sv.LastAttempt.Sub(t0).String()
		}
		return fmt.Sprintf("save-state addr=%v initial=%v conflicts=%d last=%s", sv.Addr, sv.Initial, sv.Conflicts, la)
	}
	return fmt.Sprintf("%+v", o)
}

func fmtFrame(f acd.Frame) string {
	return fmt.Sprintf("%v>%v %v %v/%v -> %v/%v", f.Src, f.Dst, f.Op, f.SenderHW, f.SenderIP, f.TargetHW, f.TargetIP)
}

// responder plays another host: it sees every output the engine produced
// (in order) and returns frames to deliver to the engine at the same time.
type responder func(h *harness, s step) []acd.Frame

type harness struct {
	t     testing.TB
	e     *Engine
	now   time.Time
	steps int
	outs  []step

	responders []responder
	pending    []acd.Frame
}

// testConfig returns a configuration with RFC timing, our MAC and a fixed
// seed derived from it.
func testConfig() Config {
	return Config{HW: ourMAC}
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("NewEngine(%+v): %v", cfg, err)
	}
	return &harness{t: t, e: e, now: t0}
}

// startedHarness returns a harness whose engine was started at t0.
func startedHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	h.do(func(now time.Time) { h.e.Start(now) })
	return h
}

// do runs one engine call at h.now, records its outputs and lets the
// responders react (their frames are delivered at once, as further steps).
// It returns the outputs of the call itself.
func (h *harness) do(f func(now time.Time)) []step {
	h.t.Helper()
	f(h.now)
	got := h.collect()
	h.respond(got)
	return got
}

func (h *harness) collect() []step {
	h.steps++
	var got []step
	for _, o := range h.e.AppendOutputs(nil) {
		got = append(got, step{At: h.now, Step: h.steps, Output: o})
	}
	h.outs = append(h.outs, got...)
	return got
}

func (h *harness) respond(got []step) {
	h.t.Helper()
	if len(h.responders) == 0 {
		return
	}
	for _, s := range got {
		for _, r := range h.responders {
			h.pending = append(h.pending, r(h, s)...)
		}
	}
	for len(h.pending) > 0 {
		f := h.pending[0]
		h.pending = h.pending[1:]
		h.e.HandleARP(h.now, f)
		more := h.collect()
		for _, s := range more {
			for _, r := range h.responders {
				h.pending = append(h.pending, r(h, s)...)
			}
		}
	}
}

// next jumps to the engine's deadline and handles the timer. It reports
// false if nothing is due, ever.
func (h *harness) next() bool {
	h.t.Helper()
	d, ok := h.e.Deadline()
	if !ok {
		return false
	}
	if d.Before(h.now) {
		h.t.Fatalf("deadline %v is before now %v", d.Sub(t0), h.now.Sub(t0))
	}
	h.now = d
	h.do(h.e.HandleTimer)
	return true
}

// advanceTo handles every deadline up to and including t, then sets the
// clock to t.
func (h *harness) advanceTo(t time.Time) {
	h.t.Helper()
	for {
		d, ok := h.e.Deadline()
		if !ok || d.After(t) {
			break
		}
		h.next()
	}
	if t.After(h.now) {
		h.now = t
	}
}

func (h *harness) advance(d time.Duration) { h.t.Helper(); h.advanceTo(h.now.Add(d)) }

// runUntil steps timers until an output satisfies cond, and returns it. It
// fails the test if the engine goes idle or limit virtual time passes.
func (h *harness) runUntil(limit time.Duration, what string, cond func(step) bool) step {
	h.t.Helper()
	end := h.now.Add(limit)
	seen := len(h.outs)
	for {
		for ; seen < len(h.outs); seen++ {
			if cond(h.outs[seen]) {
				return h.outs[seen]
			}
		}
		d, ok := h.e.Deadline()
		if !ok || d.After(end) {
			h.t.Fatalf("%s: did not happen within %v (idle=%v); outputs:\n%s", what, limit, !ok, h.dump())
		}
		h.next()
	}
}

// runUntilBound runs until the engine reports EventBind and returns the
// address.
func (h *harness) runUntilBound() netip.Addr {
	h.t.Helper()
	return h.runUntil(time.Hour, "bind", isEvent(EventBind)).Event.Addr
}

// runUntilIdle steps timers until nothing is due (bound, announcements
// done) or limit passes.
func (h *harness) runUntilIdle(limit time.Duration) {
	h.t.Helper()
	end := h.now.Add(limit)
	for {
		d, ok := h.e.Deadline()
		if !ok {
			return
		}
		if d.After(end) {
			h.t.Fatalf("engine still busy after %v; outputs:\n%s", limit, h.dump())
		}
		h.next()
	}
}

// inject delivers f from the link at h.now and returns the verdict and the
// outputs of that call.
func (h *harness) inject(f acd.Frame) (acd.Verdict, []step) {
	h.t.Helper()
	var v acd.Verdict
	got := h.do(func(now time.Time) { v = h.e.HandleARP(now, f) })
	return v, got
}

// injectRaw delivers raw Ethernet bytes through HandleFrame.
func (h *harness) injectRaw(b []byte) (acd.Verdict, []step) {
	h.t.Helper()
	var v acd.Verdict
	got := h.do(func(now time.Time) { v = h.e.HandleFrame(now, b) })
	return v, got
}

func (h *harness) dump() string { return dumpSteps(h.outs) }

func dumpSteps(ss []step) string {
	var b strings.Builder
	for _, s := range ss {
		b.WriteString("\t")
		b.WriteString(s.String())
		b.WriteString("\n")
	}
	return b.String()
}

// ---- frames from other hosts ----

func probeFrom(mac acd.MAC, target netip.Addr) acd.Frame {
	return acd.BroadcastFrame(acd.Probe(mac, target))
}

func announceFrom(mac acd.MAC, addr netip.Addr) acd.Frame {
	return acd.BroadcastFrame(acd.Announcement(mac, addr))
}

func requestFrom(mac acd.MAC, sender, target netip.Addr) acd.Frame {
	return acd.BroadcastFrame(acd.Packet{Op: acd.OpRequest, SenderHW: mac, SenderIP: sender, TargetIP: target})
}

func replyFrom(mac acd.MAC, sender netip.Addr, toHW acd.MAC, to netip.Addr) acd.Frame {
	return acd.Frame{Dst: toHW, Src: mac, Packet: acd.Packet{Op: acd.OpReply, SenderHW: mac, SenderIP: sender, TargetHW: toHW, TargetIP: to}}
}

func rawFrame(f acd.Frame) []byte {
	b, err := f.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// rogueReplier answers every probe the engine sends, for any address, with
// an ARP reply claiming the probed address: a host that owns everything.
func rogueReplier(mac acd.MAC) responder {
	return func(h *harness, s step) []acd.Frame {
		if s.Kind == OutSendARP && s.Frame.IsProbe() && s.Frame.SenderHW == h.e.cfg.HW {
			return []acd.Frame{replyFrom(mac, s.Frame.TargetIP, s.Frame.SenderHW, zeroIP)}
		}
		return nil
	}
}

// rogueFor answers probes only for the listed addresses.
func rogueFor(mac acd.MAC, addrs ...netip.Addr) responder {
	r := rogueReplier(mac)
	return func(h *harness, s step) []acd.Frame {
		if s.Kind == OutSendARP && s.Frame.IsProbe() {
			for _, a := range addrs {
				if s.Frame.TargetIP == a {
					return r(h, s)
				}
			}
		}
		return nil
	}
}

// loopback reflects every frame the engine sends back to it, as a bridge
// or hub would.
func loopback(h *harness, s step) []acd.Frame {
	if s.Kind == OutSendARP {
		return []acd.Frame{s.Frame}
	}
	return nil
}

// ---- output filters ----

func isEvent(k EventKind) func(step) bool {
	return func(s step) bool { return s.Kind == OutEvent && s.Event.Kind == k }
}

func isKind(k OutputKind) func(step) bool { return func(s step) bool { return s.Kind == k } }

func isProbeOf(a netip.Addr) func(step) bool {
	return func(s step) bool { return s.Kind == OutSendARP && s.Frame.IsProbe() && s.Frame.TargetIP == a }
}

func isOurProbe(s step) bool { return s.Kind == OutSendARP && s.Frame.IsProbe() }

func isOurAnnouncement(s step) bool { return s.Kind == OutSendARP && s.Frame.IsAnnouncement() }

func filter(ss []step, keep func(step) bool) []step {
	var r []step
	for _, s := range ss {
		if keep(s) {
			r = append(r, s)
		}
	}
	return r
}

func events(ss []step, k EventKind) []step { return filter(ss, isEvent(k)) }

// probedAddrs lists the address of every attempt (EventProbe), in order.
func probedAddrs(ss []step) []netip.Addr {
	var r []netip.Addr
	for _, s := range events(ss, EventProbe) {
		r = append(r, s.Event.Addr)
	}
	return r
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// candidates returns Candidate(seed, 0..n-1), skipping the given addresses,
// as the engine's selection order does.
func candidates(seed uint64, n int, skip ...netip.Addr) []netip.Addr {
	var r []netip.Addr
	for i := uint64(0); len(r) < n; i++ {
		a := Candidate(seed, i)
		dup := false
		for _, s := range skip {
			dup = dup || s == a
		}
		if !dup {
			r = append(r, a)
		}
	}
	return r
}

// qnxTiming maps QNX options, failing the test on error.
func qnxTiming(t testing.TB, o QNXOptions) (acd.Timing, time.Duration) {
	t.Helper()
	tm, d, err := o.Timing()
	if err != nil {
		t.Fatalf("%+v.Timing(): %v", o, err)
	}
	return tm, d
}
