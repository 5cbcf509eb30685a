package autoip

import (
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// boundEngine returns an engine bound to its first candidate, with the
// announcements done, and the time.
func boundEngine(tb testing.TB, pol acd.DefendPolicy) (*Engine, time.Time) {
	tb.Helper()
	cfg := testConfig()
	cfg.Defend = pol
	h := startedHarness(tb, cfg)
	h.runUntilBound()
	h.runUntilIdle(time.Minute)
	if h.e.Status().State != StateBound {
		tb.Fatalf("state %v", h.e.Status().State)
	}
	return h.e, h.now
}

// unrelatedFrame is an ARP request between two other hosts.
func unrelatedFrame() []byte {
	return rawFrame(requestFrom(peerMAC, mustAddr("169.254.5.5"), mustAddr("169.254.6.6")))
}

// BenchmarkEngineFrameUnrelated: the hot path of every ARP frame on the
// link that does not concern us. Target: <= 100 ns, 0 allocs.
func BenchmarkEngineFrameUnrelated(b *testing.B) {
	e, now := boundEngine(b, acd.DefendOnce)
	frame := unrelatedFrame()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if v := e.HandleFrame(now, frame); v != acd.VerdictUnrelated {
			b.Fatalf("verdict %v", v)
		}
	}
}

// BenchmarkEngineFrameConflict: a bound engine flooded with conflicting
// announcements, each one DEFEND_INTERVAL after the last, so that every one
// is defended and the address kept (DefendOnce). Outputs are drained every
// iteration.
func BenchmarkEngineFrameConflict(b *testing.B) {
	e, now := boundEngine(b, acd.DefendOnce)
	frame := rawFrame(announceFrom(rogueMAC, e.Status().Addr))
	di := e.Timing().DefendInterval
	var outs []Output
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		now = now.Add(di)
		if v := e.HandleFrame(now, frame); v != acd.VerdictConflict {
			b.Fatalf("verdict %v", v)
		}
		outs = e.AppendOutputs(outs[:0])
	}
	b.StopTimer()
	if st := e.Status(); st.State != StateBound || st.Stats.Defences == 0 {
		b.Fatalf("status %+v", st)
	}
}

// TestUnrelatedFrameAllocs: handling a frame that does not concern us
// allocates nothing, bound or probing.
func TestUnrelatedFrameAllocs(t *testing.T) {
	e, now := boundEngine(t, acd.DefendOnce)
	frame := unrelatedFrame()
	if n := testing.AllocsPerRun(1000, func() { e.HandleFrame(now, frame) }); n != 0 {
		t.Errorf("bound: %v allocations per unrelated frame, want 0", n)
	}
	own := rawFrame(announceFrom(ourMAC, e.Status().Addr))
	garbage := []byte{1, 2, 3}
	if n := testing.AllocsPerRun(1000, func() { e.HandleFrame(now, own); e.HandleFrame(now, garbage) }); n != 0 {
		t.Errorf("own and malformed frames: %v allocations, want 0", n)
	}
	h := startedHarness(t, testConfig())
	if n := testing.AllocsPerRun(1000, func() { h.e.HandleFrame(h.now, frame) }); n != 0 {
		t.Errorf("waiting: %v allocations per unrelated frame, want 0", n)
	}
	// Defences allocate nothing either, once the output buffers have
	// grown.
	e2, now2 := boundEngine(t, acd.DefendOnce)
	conflict := rawFrame(announceFrom(rogueMAC, e2.Status().Addr))
	di := e2.Timing().DefendInterval
	e2.HandleFrame(now2, conflict)
	outs := e2.AppendOutputs(nil)
	if n := testing.AllocsPerRun(1000, func() {
		now2 = now2.Add(di)
		e2.HandleFrame(now2, conflict)
		outs = e2.AppendOutputs(outs[:0])
	}); n != 0 {
		t.Errorf("defended conflict: %v allocations, want 0", n)
	}
}
