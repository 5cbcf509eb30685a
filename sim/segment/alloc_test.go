package segment

import (
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/stack"
)

// TestSwitchDoesNotAllocate: once warm, putting a frame on the segment and
// working out which filtered ports it concerns allocates nothing (what a
// netstack allocates when it receives a frame is gVisor's business).
func TestSwitchDoesNotAllocate(t *testing.T) {
	clk := stack.NewDetClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	seg, err := New(clk, Config{OnTransmit: func(Frame) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	for i := range 50 {
		mac := tcpip.LinkAddress([]byte{2, 0, 0, 0, 0, byte(i + 1)})
		p, err := seg.Attach(channel.New(16, 1514, mac), PortConfig{Filtered: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := stack.New(stack.Options{Link: p.Link(), Clock: clk, NoTCP: true, AutoIP: &stack.ClientConfig{
			OnEvent: func(ev autoip.Event) { p.SetConcern(ev.Addr) },
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	dev, _ := seg.AttachFunc("\x06\x00\x00\x00\x00\x00", func([]byte) {})
	if _, err := seg.RunFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	// An announcement for an address nobody holds, and a probe for one.
	from := acd.MAC{6, 0, 0, 0, 0, 0}
	frames := [][]byte{
		acd.BroadcastFrame(acd.Announcement(from, netip.MustParseAddr("169.254.200.200"))).AppendBinary(nil),
		acd.BroadcastFrame(acd.Probe(from, netip.MustParseAddr("169.254.201.201"))).AppendBinary(nil),
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			seg.Send(dev, f)
		}
		seg.pump()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
	if seg.Stats().Deliveries != 0 {
		t.Errorf("%d deliveries: the frames concern no port", seg.Stats().Deliveries)
	}
}
