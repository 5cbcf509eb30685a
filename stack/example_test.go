package stack_test

import (
	"errors"
	"fmt"
	"math/rand"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/stack"
)

// A stack of its own on a channel endpoint, in virtual time: the
// deterministic clock runs the probes and announcements without a single
// real second passing. Nobody else is on this link, so the first candidate
// (derived from the MAC) is claimed.
func ExampleNew() {
	clk := stack.NewDetClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	start := clk.Now()
	link := channel.New(256, 1514, tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01"))
	s, err := stack.New(stack.Options{
		Link:       link,
		Clock:      clk,
		NoTCP:      true,
		RandSource: rand.NewSource(1),
		SecureRNG:  rand.New(rand.NewSource(2)),
		AutoIP: &stack.ClientConfig{OnEvent: func(ev autoip.Event) {
			fmt.Printf("t=%v %v %v\n", ev.Time.Sub(start).Round(time.Millisecond), ev.Kind, ev.Addr)
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	clk.RunUntil(start.Add(time.Minute))
	fmt.Println("bound:", s.Client().Status().Configured)
	fmt.Println("frames sent:", link.Drain())
	s.Close()
	// Output:
	// t=544ms PROBE 169.254.155.44
	// t=5.684s BIND 169.254.155.44
	// bound: 169.254.155.44
	// frames sent: 5
	// t=1m0s STOP 169.254.155.44
}

// Attach runs AutoIP on an application's own gVisor stack (a wireguard-go
// or tailscale netstack, say) with an extra Ethernet NIC. The tunnel NIC is
// an L3 link without ARP: Attach refuses it.
func ExampleAttach() {
	clk := stack.NewDetClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	gv := gvstack.New(gvstack.Options{
		NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gvstack.TransportProtocolFactory{udp.NewProtocol},
		Clock:              clk,
	})
	defer gv.Destroy()

	// NIC 1: the tunnel, raw IP packets.
	const tunNIC, ethNIC tcpip.NICID = 1, 2
	if err := gv.CreateNIC(tunNIC, channel.New(16, 1420, "")); err != nil {
		fmt.Println(err)
		return
	}
	// NIC 2: Ethernet, wrapped as NIC -> Shim -> ethernet -> link.
	link := channel.New(256, 1514, tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02"))
	shim, err := stack.NewShim(link)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := gv.CreateNIC(ethNIC, shim); err != nil {
		fmt.Println(err)
		return
	}

	_, err = stack.Attach(gv, tunNIC, shim, stack.ClientConfig{})
	fmt.Println("tunnel NIC refused:", errors.Is(err, stack.ErrNotEthernet))

	c, err := stack.Attach(gv, ethNIC, shim, stack.ClientConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	clk.RunUntil(clk.Now().Add(time.Minute))
	st := c.Status()
	fmt.Println("state:", st.State, st.Configured)
	for nic, addrs := range gv.AllAddresses() {
		for _, pa := range addrs {
			if pa.AddressWithPrefix.Address == tcpip.AddrFrom4(st.Configured.As4()) {
				fmt.Printf("on NIC %d: %v\n", nic, pa.AddressWithPrefix)
			}
		}
	}
	c.Close()
	// Output:
	// tunnel NIC refused: true
	// state: bound 169.254.232.46
	// on NIC 2: 169.254.232.46/16
}

// The RFC timers and the defence policy are set with packages stack and
// autoip alone.
func ExampleClientConfig() {
	cfg := stack.ClientConfig{Engine: autoip.Config{
		Timing: autoip.Timing{ProbeNum: 4, ProbeMin: 500 * time.Millisecond, ProbeMax: time.Second},
		Defend: autoip.Abandon,
	}}
	fmt.Println(cfg.Engine.Timing.WithDefaults().ProbeNum, cfg.Engine.Timing.WithDefaults().AnnounceNum, cfg.Engine.Defend)
	// Output: 4 2 abandon
}
