package stack_test

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/stack"
)

// TestR28_DirectSendKeepsOrder: packets from our link-local address that
// the route table sends through a gateway go straight to their destination
// (R28), and they leave in the order the stack wrote them, on the real
// clock too. Each used to be resolved and written from clock callbacks of
// its own, which the real clock runs on goroutines of their own: an
// embedder's bulk TCP transfer from the link-local address to an off-link
// host saw a third of its segments reordered and retransmitted.
func TestR28_DirectSendKeepsOrder(t *testing.T) {
	const n = 1000 // within the per-destination queue
	mac := tcpip.LinkAddress("\x02\x00\x00\x00\xd1\x01")
	dstMAC := tcpip.LinkAddress("\x02\x00\x00\x00\xd1\x02")
	gwMAC := tcpip.LinkAddress("\x02\x00\x00\x00\xd1\x03")
	ch := channel.New(n+256, 1514, mac)
	s, err := stack.New(stack.Options{Link: ch, NoTCP: true, AutoIP: &stack.ClientConfig{
		Engine: autoip.Config{Timing: autoip.Timing(quickTiming())}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The wire: every frame the stack sends, in order.
	frames := make(chan []byte, n+256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			pkt := ch.ReadContext(ctx)
			if pkt == nil {
				close(frames)
				return
			}
			v := pkt.ToView()
			frames <- append([]byte(nil), v.AsSlice()...)
			v.Release()
			pkt.DecRef()
		}
	}()

	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	x, err := s.Client().WaitBound(wctx)
	if err != nil {
		t.Fatal(err)
	}
	gv := s.GVisor()
	gw, dst := tcpip.AddrFrom4([4]byte{169, 254, 250, 1}), tcpip.AddrFrom4([4]byte{192, 0, 2, 7})
	// Both neighbours known, so every resolution completes at once: the
	// order on the wire is the order of the sends.
	for a, m := range map[tcpip.Address]tcpip.LinkAddress{gw: gwMAC, dst: dstMAC} {
		if terr := gv.AddStaticNeighbor(s.NIC(), ipv4.ProtocolNumber, a, m); terr != nil {
			t.Fatal(terr)
		}
	}
	gv.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: gw, NIC: s.NIC()})

	tx, terr := gv.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &waiter.Queue{})
	if terr != nil {
		t.Fatal(terr)
	}
	defer tx.Close()
	if terr := tx.Bind(tcpip.FullAddress{Addr: tcpip.AddrFrom4(x.As4())}); terr != nil {
		t.Fatal(terr)
	}
	for i := range n {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		r := payloadReader(b[:])
		if _, terr := tx.Write(&r, tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: dst, Port: 9}}); terr != nil {
			t.Fatalf("write %d: %v", i, terr)
		}
	}

	var got []uint32
	toGW := 0
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case f := <-frames:
			eth := header.Ethernet(f)
			if len(f) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.UDPMinimumSize+4 || eth.Type() != header.IPv4ProtocolNumber {
				continue
			}
			ip := header.IPv4(f[header.EthernetMinimumSize:])
			if netip.AddrFrom4(ip.SourceAddress().As4()) != x || ip.TransportProtocol() != header.UDPProtocolNumber {
				continue
			}
			switch eth.DestinationAddress() {
			case gwMAC:
				toGW++
			case dstMAC:
				got = append(got, binary.BigEndian.Uint32(ip.Payload()[header.UDPMinimumSize:]))
			}
		case <-deadline:
			t.Fatalf("%d of %d datagrams reached the destination's MAC (%d the gateway's); status %+v", len(got), n, toGW, s.Client().Status())
		}
	}
	if toGW != 0 {
		t.Errorf("%d link-local-sourced datagrams went to the gateway's MAC", toGW)
	}
	reordered := 0
	for i, seq := range got {
		if seq != uint32(i) {
			reordered++
		}
	}
	if reordered != 0 {
		t.Errorf("%d of %d datagrams left out of order (first 20: %v)", reordered, n, got[:20])
	}
	if st := s.Client().Status(); st.DirectDropped != 0 {
		t.Errorf("DirectDropped %d", st.DirectDropped)
	}
}

// payloadReader is a tcpip.Payloader over a byte slice.
type payloadReader []byte

func (p *payloadReader) Read(b []byte) (int, error) {
	n := copy(b, *p)
	*p = (*p)[n:]
	if n == 0 {
		return 0, context.Canceled
	}
	return n, nil
}

func (p *payloadReader) Len() int { return len(*p) }
