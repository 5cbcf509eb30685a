package stack

import (
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
)

// benchUnrelatedARP feeds a bound host (or, with noClient, a stack with a
// Shim and no client: the baseline) an ARP request for an address that is
// not ours, through the channel endpoint: Ethernet layer, Shim, client,
// engine, then netstack's own ARP input.
func benchUnrelatedARP(b *testing.B, noClient bool) {
	clk := NewDetClock(t0)
	mac := hostMAC(0)
	ep := channel.New(64, 1514, tcpip.LinkAddress(mac[:]))
	opts := Options{Link: ep, Clock: clk, NoTCP: true}
	if !noClient {
		opts.AutoIP = &ClientConfig{}
	}
	s, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	clk.RunUntil(t0.Add(time.Minute))
	for ep.Drain() > 0 {
	}
	if noClient {
		// The same addresses as a bound client, so that netstack's own
		// ARP input does the same work.
		if err := s.AddAddress(netip.MustParsePrefix("169.254.155.44/16")); err != nil {
			b.Fatal(err)
		}
	} else if !s.Client().Status().Configured.IsValid() {
		b.Fatal("not bound")
	}
	frame := peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: ip("169.254.7.7"), TargetIP: ip("169.254.8.8")})
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
		ep.InjectInbound(header.ARPProtocolNumber, pkt)
		pkt.DecRef()
	}
}

// BenchmarkShimClientUnrelatedARP: the frame path of a bound client.
func BenchmarkShimClientUnrelatedARP(b *testing.B) { benchUnrelatedARP(b, false) }

// BenchmarkShimOnlyUnrelatedARP: the same stack and address without a
// client, the baseline for the client's cost per frame.
func BenchmarkShimOnlyUnrelatedARP(b *testing.B) { benchUnrelatedARP(b, true) }
