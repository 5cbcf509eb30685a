//go:build linux

package tap

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestWritePacketsAllocatesNothing: writing a frame the way netstack hands
// one over (headers prepended, payload in views) costs no allocation: a
// bulk TCP sender writes a few hundred thousand frames a second through
// here.
func TestWritePacketsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipwa0", "mode", "tap")
	setupKernelSide(t, ns, "aipwa0")
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipwa0"}, MAC: "\x02\x00\x00\x00\xaa\x01"})
	waitFor(t, 5*time.Second, "the Link to come up", l.Up)
	frame := markedFrame("\x02\x00\x00\x00\xbb\x02", "\x02\x00\x00\x00\xaa\x01", 1)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.EthernetMinimumSize,
		Payload:            buffer.MakeWithData(make([]byte, 1400)),
	})
	defer pkt.DecRef()
	copy(pkt.LinkHeader().Push(header.EthernetMinimumSize), frame[:header.EthernetMinimumSize])
	var list stack.PacketBufferList
	list.PushBack(pkt)
	if n, err := l.Endpoint().WritePackets(list); err != nil || n != 1 {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if n, err := l.Endpoint().WritePackets(list); err != nil || n != 1 {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per frame written, want 0", allocs)
	}
	if got := l.Stats().TxFrames; got < 2001 {
		t.Errorf("TxFrames %d, want at least 2001", got)
	}
}

// TestWritePacketManyViews: a packet in more pieces than one writev takes
// is written whole (gathered into one buffer), and one in a few pieces as
// they are.
func TestWritePacketManyViews(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipwv0", "mode", "tap")
	setupKernelSide(t, ns, "aipwv0")
	d := openInNS(t, ns, Config{Name: "aipwv0"})
	for _, pieces := range []int{1, maxIovecs - 1, maxIovecs + 4} {
		var payload buffer.Buffer
		for i := 0; i < pieces; i++ {
			payload.Append(buffer.NewViewWithData(make([]byte, 100)))
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: header.EthernetMinimumSize, Payload: payload})
		frame := markedFrame("\x02\x00\x00\x00\xbb\x02", "\x02\x00\x00\x00\xaa\x01", 1)
		copy(pkt.LinkHeader().Push(header.EthernetMinimumSize), frame[:header.EthernetMinimumSize])
		if views, _ := pkt.AsViewList(); views.Len() < pieces {
			t.Fatalf("the packet has %d views, want at least %d", views.Len(), pieces)
		}
		n, err := d.writePacket(pkt)
		if err != nil || n != pkt.Size() {
			t.Errorf("%d payload pieces: wrote %d bytes, %v; want %d", pieces, n, err, pkt.Size())
		}
		pkt.DecRef()
	}
}
