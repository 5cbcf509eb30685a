package sim

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestRealTimeBridge: three hosts forced onto one address share a segment,
// through a frame device, with a "real" host that already holds it and
// defends it (it answers every probe for it). They all end up bound, on
// other addresses, in real time; AllBound says when.
func TestRealTimeBridge(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no SOCK_SEQPACKET socket pair: %v", err)
	}
	ours, wire := os.NewFile(uintptr(fds[0]), "sim-end"), os.NewFile(uintptr(fds[1]), "wire-end")
	defer ours.Close()
	defer wire.Close()
	held := netip.MustParseAddr("169.254.50.50")
	realMAC := acd.MAC{0x02, 0x77, 0, 0, 0, 1}
	go func() { // the real host
		buf := make([]byte, 2048)
		for {
			n, err := wire.Read(buf)
			if err != nil {
				return
			}
			f, err := acd.DecodeFrame(buf[:n])
			if err != nil || !f.IsProbe() || f.TargetIP != held {
				continue
			}
			reply := acd.Frame{Dst: acd.BroadcastMAC, Src: realMAC, Packet: acd.Packet{Op: acd.OpReply, SenderHW: realMAC, SenderIP: held, TargetHW: f.SenderHW}}
			wire.Write(reply.AppendBinary(nil))
		}
	}()
	s, err := New(Config{Seed: 3, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fast := acd.Timing{ProbeWait: 20 * time.Millisecond, ProbeMin: 20 * time.Millisecond, ProbeMax: 40 * time.Millisecond,
		AnnounceWait: 100 * time.Millisecond, AnnounceInterval: 100 * time.Millisecond}
	for range 3 {
		if _, err := s.AddHost(HostConfig{Initial: held, Timing: fast}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Bridge(ours); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(); err == nil {
		t.Fatal("Run on a bridged simulation did not fail")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.RunRealTime(ctx, s.AllBound); err != nil {
		t.Fatal(err)
	}
	if !s.AllBound() {
		t.Fatal("RunRealTime returned before every host was bound")
	}
	seen := map[netip.Addr]bool{}
	for i := range 3 {
		hs, _ := s.Host(i)
		if hs.Addr == held || seen[hs.Addr] {
			t.Errorf("host %d holds %v (the real host holds %v; others %v)", i, hs.Addr, held, seen)
		}
		seen[hs.Addr] = true
	}
	if tot := s.Totals(); tot.Segment.FromOutside == 0 || tot.Conflicts == 0 {
		t.Errorf("totals %+v: the real host's replies did not count", tot)
	}
}
