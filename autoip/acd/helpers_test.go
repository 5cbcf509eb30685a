package acd_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// Fixtures shared by the tests of this package.
var (
	selfMAC   = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01} // our interface
	otherMAC  = acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x02} // another host
	bridgeMAC = acd.MAC{0x02, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb} // a MAC-rewriting bridge
	mcastMAC  = acd.MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01} // IPv4 multicast group

	candIP  = netip.MustParseAddr("169.254.10.20")        // our candidate / bound address
	otherIP = netip.MustParseAddr("169.254.33.44")        // another host's address
	thirdIP = netip.MustParseAddr("169.254.99.1")         // a third, unrelated address
	zeroIP  = netip.MustParseAddr("0.0.0.0")              // sender IP of a probe
	epoch   = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // fixed clock origin
)

// pkt builds an ARP packet from its five fields.
func pkt(op acd.Op, sha acd.MAC, spa netip.Addr, tha acd.MAC, tpa netip.Addr) acd.Packet {
	return acd.Packet{Op: op, SenderHW: sha, SenderIP: spa, TargetHW: tha, TargetIP: tpa}
}

// bcast wraps p in a broadcast frame whose Ethernet source is src.
func bcast(src acd.MAC, p acd.Packet) acd.Frame {
	return acd.Frame{Dst: acd.BroadcastMAC, Src: src, Packet: p}
}

// wire marshals f and fails the test if that fails.
func wire(t testing.TB, f acd.Frame) []byte {
	t.Helper()
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary(%+v): %v", f, err)
	}
	return b
}

// edit returns a copy of b with fn applied to it.
func edit(b []byte, fn func(b []byte)) []byte {
	c := append([]byte(nil), b...)
	fn(c)
	return c
}

// newDetector returns a detector with the given timing and policy and a
// PCG seeded with seed, failing the test on error.
func newDetector(t testing.TB, tm acd.Timing, pol acd.DefendPolicy, seed uint64) *acd.Detector {
	t.Helper()
	d, err := acd.NewDetector(acd.DetectorConfig{
		HW:     selfMAC,
		Timing: tm,
		Defend: pol,
		Rand:   rand.New(rand.NewPCG(seed, 0x7465737473)),
	})
	if err != nil {
		t.Fatalf("NewDetector: %v", err)
	}
	return d
}

// event is an output together with the time it was produced.
type event struct {
	at time.Time
	acd.Output
}

func (e event) String() string {
	s := fmt.Sprintf("%v %v %v", e.at.Sub(epoch), e.Kind, e.Addr)
	switch e.Kind {
	case acd.OutSend:
		p := e.Frame.Packet
		s += fmt.Sprintf(" %v dst=%v src=%v sha=%v spa=%v tha=%v tpa=%v", p.Kind(), e.Frame.Dst, e.Frame.Src, p.SenderHW, p.SenderIP, p.TargetHW, p.TargetIP)
	case acd.OutConflict:
		s += fmt.Sprintf(" phase=%v verdict=%v from=%v", e.Phase, e.Verdict, e.Frame.SenderHW)
	case acd.OutDefend, acd.OutDefendSuppressed:
		s += fmt.Sprintf(" verdict=%v from=%v", e.Verdict, e.Frame.SenderHW)
	}
	return s
}

// sim drives a Detector with an explicit clock and records its outputs.
// Its timer is perfect: it calls HandleTimer exactly at each deadline.
type sim struct {
	t   testing.TB
	d   *acd.Detector
	now time.Time
	log []event
	buf []acd.Output
}

func newSim(t testing.TB, d *acd.Detector) *sim {
	return &sim{t: t, d: d, now: epoch}
}

// drain moves the detector's pending outputs to the log and returns them.
func (s *sim) drain() []event {
	s.buf = s.d.AppendOutputs(s.buf[:0])
	n := len(s.log)
	for _, o := range s.buf {
		s.log = append(s.log, event{at: s.now, Output: o})
	}
	return s.log[n:]
}

func (s *sim) start(delay time.Duration) {
	s.t.Helper()
	if err := s.d.Start(s.now, candIP, delay); err != nil {
		s.t.Fatalf("Start: %v", err)
	}
	s.drain()
}

// fireNext advances the clock to the next deadline and fires it. It
// reports false if there is none.
func (s *sim) fireNext() ([]event, bool) {
	s.t.Helper()
	dl, ok := s.d.Deadline()
	if !ok {
		return nil, false
	}
	if dl.Before(s.now) {
		s.t.Fatalf("deadline %v is before now %v", dl.Sub(epoch), s.now.Sub(epoch))
	}
	s.now = dl
	s.d.HandleTimer(s.now)
	if next, ok := s.d.Deadline(); ok && !next.After(s.now) {
		s.t.Fatalf("HandleTimer(%v) left the deadline at %v: the detector would stall", s.now.Sub(epoch), next.Sub(epoch))
	}
	return s.drain(), true
}

// advance fires every deadline up to and including to, then sets the clock
// to it.
func (s *sim) advance(to time.Time) []event {
	n := len(s.log)
	for {
		dl, ok := s.d.Deadline()
		if !ok || dl.After(to) {
			break
		}
		if _, ok := s.fireNext(); !ok {
			break
		}
	}
	s.now = to
	return s.log[n:]
}

// runUntil fires deadlines until the detector reaches state st or has no
// deadline left; it fails the test if st is never reached.
func (s *sim) runUntil(st acd.State) {
	s.t.Helper()
	for i := 0; s.d.State() != st; i++ {
		if _, ok := s.fireNext(); !ok || i > 1000 {
			s.t.Fatalf("never reached state %v; in %v\n%s", st, s.d.State(), s.dump())
		}
	}
}

// frame feeds f to the detector at the current time.
func (s *sim) frame(f acd.Frame) (acd.Verdict, []event) {
	v := s.d.HandleFrame(s.now, f)
	return v, s.drain()
}

func (s *sim) dump() string {
	var b strings.Builder
	for _, e := range s.log {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// kinds lists the kinds of evs, for compact comparisons.
func kinds(evs []event) []acd.OutputKind {
	var k []acd.OutputKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func sameKinds(got []event, want ...acd.OutputKind) bool {
	k := kinds(got)
	if len(k) != len(want) {
		return false
	}
	for i := range k {
		if k[i] != want[i] {
			return false
		}
	}
	return true
}

// sends returns the OutSend events of evs.
func sends(evs []event) []event {
	var r []event
	for _, e := range evs {
		if e.Kind == acd.OutSend {
			r = append(r, e)
		}
	}
	return r
}
