package acd_test

import (
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

var (
	sinkFrame   acd.Frame
	sinkVerdict acd.Verdict
)

func BenchmarkDecodeFrame(b *testing.B) {
	raw := wire(b, bcast(otherMAC, pkt(acd.OpReply, otherMAC, otherIP, selfMAC, thirdIP)))
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		f, err := acd.DecodeFrame(raw)
		if err != nil {
			b.Fatal(err)
		}
		sinkFrame = f
	}
}

func BenchmarkClassifyUnrelated(b *testing.B) {
	f := bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, thirdIP))
	b.ReportAllocs()
	for b.Loop() {
		sinkVerdict = acd.Classify(acd.PhaseBound, f, selfMAC, candIP)
	}
	if sinkVerdict != acd.VerdictUnrelated {
		b.Fatalf("verdict %v", sinkVerdict)
	}
}

// BenchmarkDetectorHandleFrameUnrelated is the hot path of a busy link: a
// bound detector seeing ARP about other hosts.
func BenchmarkDetectorHandleFrameUnrelated(b *testing.B) {
	s := claim(b, newDetector(b, acd.Timing{}, acd.DefendOnce, 1))
	f := bcast(otherMAC, pkt(acd.OpRequest, otherMAC, otherIP, acd.MAC{}, thirdIP))
	now := s.now
	b.ReportAllocs()
	for b.Loop() {
		sinkVerdict = s.d.HandleFrame(now, f)
	}
	if sinkVerdict != acd.VerdictUnrelated || s.d.HasOutputs() {
		b.Fatalf("verdict %v", sinkVerdict)
	}
}

// BenchmarkDetectorHandleFrameConflict measures conflicts under
// DefendForever, which keeps the address: "suppressed" is a flood inside
// one DEFEND_INTERVAL, "defend" a conflict every DEFEND_INTERVAL (one
// announcement each). Outputs are drained every iteration.
func BenchmarkDetectorHandleFrameConflict(b *testing.B) {
	for _, tc := range []struct {
		name string
		step time.Duration
		want acd.OutputKind
	}{
		{"suppressed", 0, acd.OutDefendSuppressed},
		{"defend", 10 * time.Second, acd.OutDefend},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := claim(b, newDetector(b, acd.Timing{}, acd.DefendForever, 1))
			f := bcast(otherMAC, acd.Announcement(otherMAC, candIP))
			now := s.now
			s.d.HandleFrame(now, f) // the first conflict defends
			buf := s.d.AppendOutputs(nil)
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(tc.step)
				sinkVerdict = s.d.HandleFrame(now, f)
				buf = s.d.AppendOutputs(buf[:0])
			}
			if last := buf[len(buf)-1]; last.Kind != tc.want || s.d.State() != acd.StateBound {
				b.Fatalf("last output %v, state %v", last.Kind, s.d.State())
			}
		})
	}
}
