package segment_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// wirePair returns the two ends of a SOCK_SEQPACKET socket pair: one
// Ethernet frame per Read and Write, like a TAP.
func wirePair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no SOCK_SEQPACKET socket pair: %v", err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "segment-end"), os.NewFile(uintptr(fds[1]), "wire-end")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// fast is a quick protocol timing for real-time tests.
var fast = acd.Timing{ProbeWait: 20 * time.Millisecond, ProbeMin: 20 * time.Millisecond, ProbeMax: 40 * time.Millisecond,
	AnnounceWait: 100 * time.Millisecond, AnnounceInterval: 100 * time.Millisecond}

// TestBridgeRealTime: a stack on a bridged segment, run in real time,
// meets a "real" host on the other side of the device: the real host
// announces the address the stack wanted first, the stack moves off it,
// and its probes and announcements come out on the device.
func TestBridgeRealTime(t *testing.T) {
	segEnd, wire := wirePair(t)
	want := netip.MustParseAddr("169.254.40.40")
	w := newWorld(t, segment.Config{})
	bridge, err := w.seg.Bridge(segEnd)
	if err != nil {
		t.Fatal(err)
	}
	if !bridge.IsFunc() {
		t.Error("the bridge's port is not a function port")
	}
	if _, err := w.seg.RunFor(time.Second); !errors.Is(err, segment.ErrBridged) {
		t.Errorf("RunFor on a bridged segment: %v, want ErrBridged", err)
	}
	// The real host holds the address and announces it now.
	real := acd.MAC{0x02, 0x77, 0, 0, 0, 1}
	if _, err := wire.Write(acd.BroadcastFrame(acd.Announcement(real, want)).AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []acd.Frame
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := wire.Read(buf)
			if err != nil {
				return
			}
			if f, err := acd.DecodeFrame(buf[:n]); err == nil {
				mu.Lock()
				seen = append(seen, f)
				mu.Unlock()
			}
		}
	}()
	h := w.add(segment.PortConfig{}, autoip.Config{Initial: want, Timing: fast})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = w.seg.RunRealTime(ctx, func() bool { return h.bound().IsValid() })
	if err != nil {
		t.Fatalf("RunRealTime: %v", err)
	}
	got := h.bound()
	if got == want {
		t.Fatalf("the stack took %v, which the real host announced", want)
	}
	if st := w.seg.Stats(); st.FromOutside != 1 {
		t.Errorf("FromOutside = %d, want 1", st.FromOutside)
	}
	// Its own announcement reaches the device.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, f := range seen {
			if f.IsAnnouncement() && f.SenderIP == got && f.SenderHW == mac(0) {
				n++
			}
		}
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no announcement of %v came out on the device; saw %d frames", got, len(seen))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRealTimeStopsOnContext: RunRealTime returns the context's error when
// it is cancelled, with nothing else to do.
func TestRealTimeStopsOnContext(t *testing.T) {
	w := newWorld(t, segment.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	w.seg.At(0, func() error { cancel(); return nil })
	if err := w.seg.RunRealTime(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("RunRealTime: %v, want context.Canceled", err)
	}
}

// TestSettleWaitsForOtherGoroutines: a frame another goroutine writes a
// little later in real time goes on the segment before virtual time moves
// to the next timer, when Settle allows for it.
func TestSettleWaitsForOtherGoroutines(t *testing.T) {
	w := newWorld(t, segment.Config{Settle: 500 * time.Millisecond})
	ep := newChannel(0)
	port, err := w.seg.Attach(ep, segment.PortConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.clk.AfterFunc(time.Minute, func() {}) // the next timer
	frame := acd.BroadcastFrame(acd.Probe(mac(0), netip.MustParseAddr("169.254.1.1"))).AppendBinary(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(5 * time.Millisecond)
		writeFrame(port, frame)
	}()
	w.run(2 * time.Minute)
	<-done
	ep.Drain()
	if len(w.tx) != 1 || w.tx[0].At != 0 {
		t.Errorf("frames %+v, want one at virtual time 0", w.tx)
	}
}

// refusing is a frame device whose writes fail, like a TAP that is down;
// it never brings a frame in.
type refusing struct{ closed chan struct{} }

func (r refusing) Read([]byte) (int, error) { <-r.closed; return 0, os.ErrClosed }

func (refusing) Write([]byte) (int, error) { return 0, errors.New("input/output error") }

// TestBridgeDropsRefusedFrames: frames the device refuses are lost and
// counted; the run goes on.
func TestBridgeDropsRefusedFrames(t *testing.T) {
	dev := refusing{closed: make(chan struct{})}
	defer close(dev.closed)
	w := newWorld(t, segment.Config{})
	if _, err := w.seg.Bridge(dev); err != nil {
		t.Fatal(err)
	}
	h := w.add(segment.PortConfig{}, autoip.Config{Timing: fast})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.seg.RunRealTime(ctx, func() bool { return h.bound().IsValid() }); err != nil {
		t.Fatal(err)
	}
	if st := w.seg.Stats(); st.BridgeDropped == 0 || st.BridgeDropped != st.Frames {
		t.Errorf("stats %+v: want every frame dropped by the device", st)
	}
}
