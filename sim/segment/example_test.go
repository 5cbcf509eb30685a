package segment_test

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/stack"
)

// userStack is how an embedder might build a stack of their own: their
// protocols (TCP included), their NIC, AutoIP attached to it. Only the
// clock and the link come from the segment.
func userStack(seg *segment.Segment, clk *stack.DetClock, name string, mac tcpip.LinkAddress, initial netip.Addr) (*gvstack.Stack, *stack.Client) {
	port, err := seg.Attach(channel.New(64, 1514, mac), segment.PortConfig{})
	if err != nil {
		panic(err)
	}
	s := gvstack.New(gvstack.Options{
		NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gvstack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              clk,
		RandSource:         rand.NewSource(int64(mac[5])),
		SecureRNG:          rand.New(rand.NewSource(int64(mac[5]) + 100)),
	})
	shim, err := stack.NewShim(port.Link()) // the port's link state reaches the client
	if err != nil {
		panic(err)
	}
	if err := s.CreateNIC(1, shim); err != nil {
		panic(err)
	}
	c, err := stack.Attach(s, 1, shim, stack.ClientConfig{
		Engine: autoip.Config{Initial: initial},
		OnEvent: func(ev autoip.Event) {
			fmt.Printf("%s %v %v\n", name, ev.Kind, ev.Addr)
		},
	})
	if err != nil {
		panic(err)
	}
	return s, c
}

// Two stacks built by their user, both told to claim 169.254.10.10 first:
// A claims it, B arrives half a minute later, sees A defend it and claims
// another; then B connects to A over TCP, all in virtual time. gVisor's
// TCP works on goroutines of its own, so Settle lets the segment wait for
// what they write before it moves the clock.
func Example() {
	clk := stack.NewDetClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	seg, err := segment.New(clk, segment.Config{Seed: 1, Settle: 20 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	defer seg.Close()
	same := netip.MustParseAddr("169.254.10.10")

	a, ca := userStack(seg, clk, "A", "\x02\x00\x00\x00\x00\x0a", same)
	seg.RunFor(30 * time.Second)
	b, cb := userStack(seg, clk, "B", "\x02\x00\x00\x00\x00\x0b", same)
	seg.RunFor(30 * time.Second)
	addrA, addrB := ca.Status().Configured, cb.Status().Configured

	// TCP from B's address to A's.
	ln, err := gonet.ListenTCP(a, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrA.As4()), Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		panic(err)
	}
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		from := conn.RemoteAddr().(*net.TCPAddr).IP
		b, _ := io.ReadAll(conn)
		conn.Close()
		got <- fmt.Sprintf("A got %q from %v", b, from)
	}()
	go func() {
		conn, err := gonet.DialTCPWithBind(context.Background(), b,
			tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrB.As4())},
			tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addrA.As4()), Port: 80}, ipv4.ProtocolNumber)
		if err != nil {
			got <- err.Error()
			return
		}
		conn.Write([]byte("hello from B"))
		conn.Close()
	}()
	for msg := ""; msg == ""; {
		select {
		case msg = <-got:
			fmt.Println(msg)
		default:
			seg.RunFor(time.Second)
		}
	}
	ln.Close()
	ca.Close()
	cb.Close()
	a.Destroy()
	b.Destroy()
	// Output:
	// A PROBE 169.254.10.10
	// A BIND 169.254.10.10
	// B PROBE 169.254.10.10
	// B CONFLICT 169.254.10.10
	// B PROBE 169.254.15.32
	// B BIND 169.254.15.32
	// A got "hello from B" from 169.254.15.32
	// A STOP 169.254.10.10
	// B STOP 169.254.15.32
}
