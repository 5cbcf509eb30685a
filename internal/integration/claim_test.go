package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/stack"
)

// TestR23_ClaimOnTAP_PingAndTCP: the claimed address answers ping and
// accepts TCP from the kernel host on the link, and the netstack reaches the
// kernel host's 169.254 address on-link, even with a default route through a
// gateway that does not exist (R23).
func TestR23_ClaimOnTAP_PingAndTCP(t *testing.T) {
	h := newHost(t, nil, "", hostOpts{create: true})
	h.kernelSide(kernLL.String() + "/16")
	addr := h.waitBound(10 * time.Second)
	if !autoip.InRange(addr) || !h.onNIC(addr) {
		t.Fatalf("bound %v, on NIC %v", addr, h.onNIC(addr))
	}

	// Kernel -> netstack: ICMP echo.
	out := h.ns.Run(t, "ping", "-c", "2", "-W", "2", "-I", h.name, addr.String())
	if !strings.Contains(out, "2 received") {
		t.Fatalf("ping %v: %s", addr, out)
	}

	// Kernel -> netstack: TCP.
	ln, err := gonet.ListenTCP(h.st.GVisor(), tcpip.FullAddress{NIC: h.st.NIC(), Addr: tcpip.AddrFrom4(addr.As4()), Port: 7777}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "hello from %v\n", addr)
		c.Close()
	}()
	var banner string
	err = h.ns.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, 7777).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		banner, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil || !strings.Contains(banner, addr.String()) {
		t.Fatalf("TCP from the kernel side to %v: banner %q, err %v", addr, banner, err)
	}

	// Netstack -> kernel: TCP to 169.254.77.2 goes on-link (ARP), not to
	// the default gateway, which does not exist.
	h.st.GVisor().AddRoute(tcpip.Route{Destination: header0(), Gateway: tcpip.AddrFrom4([4]byte{198, 18, 77, 254}), NIC: h.st.NIC()})
	var kl net.Listener
	if err := h.ns.Do(func() (err error) { kl, err = net.Listen("tcp", netip.AddrPortFrom(kernLL, 7778).String()); return }); err != nil {
		t.Fatal(err)
	}
	defer kl.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := kl.Accept()
		if err != nil {
			accepted <- "accept: " + err.Error()
			return
		}
		accepted <- c.RemoteAddr().String()
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, h.st.GVisor(), tcpip.FullAddress{NIC: h.st.NIC(), Addr: tcpip.AddrFrom4(kernLL.As4()), Port: 7778}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("netstack dial %v: %v", kernLL, err)
	}
	c.Close()
	if got := <-accepted; !strings.HasPrefix(got, addr.String()+":") {
		t.Fatalf("kernel saw connection from %q, want source %v", got, addr)
	}
}

// header0 is the default route's destination, 0.0.0.0/0.
func header0() tcpip.Subnet {
	s, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes([]byte{0, 0, 0, 0}))
	return s
}

// TestR14_ArpingDetectsOurAddressAndReplyIsBroadcast: `arping -D` from the
// kernel side reports our address in use, and netstack's reply went out as
// link-layer broadcast (R14).
func TestR14_ArpingDetectsOurAddressAndReplyIsBroadcast(t *testing.T) {
	h := newHost(t, nil, "", hostOpts{create: true})
	w := h.kernelSide()
	addr := h.waitBound(10 * time.Second)
	out, err := h.ns.Exec("arping", "-D", "-c", "2", "-w", "3", "-I", h.name, addr.String())
	if err == nil {
		t.Fatalf("arping -D %v found no duplicate (exit 0):\n%s", addr, out)
	}
	if !strings.Contains(out, "Received 1") && !strings.Contains(out, "Received 2") {
		t.Fatalf("arping -D %v: want a reply:\n%s", addr, out)
	}
	reply := w.waitARP(t, "reply from our address", 3*time.Second, func(f acd.Frame) bool {
		return f.Op == acd.OpReply && f.SenderIP == addr
	})
	if reply.Dst != acd.BroadcastMAC {
		t.Fatalf("netstack's ARP reply for %v went to %v, want broadcast", addr, reply.Dst)
	}
	if st := h.client().Status(); st.Shim.Rewritten == 0 {
		t.Fatalf("shim rewrote nothing: %+v", st.Shim)
	}
	// Every ARP we ever sent with a link-local sender IP was broadcast.
	for _, f := range w.arpFrames() {
		if autoip.LinkLocalPrefix.Contains(f.SenderIP) && f.Dst != acd.BroadcastMAC {
			t.Errorf("ARP %v from %v sent to %v, not broadcast", f.Packet.Kind(), f.SenderIP, f.Dst)
		}
	}
}

// TestR07_KernelHoldsOurInitialAddress: the kernel side statically holds the
// address we are told to try first; its answer to our probe is a conflict and
// we move to another address (R07, R03).
func TestR07_KernelHoldsOurInitialAddress(t *testing.T) {
	want := netip.MustParseAddr("169.254.20.20")
	h := newHost(t, nil, "", hostOpts{create: true, noStart: true,
		cfg: stack.ClientConfig{Engine: autoip.Config{Initial: want}}})
	w := h.kernelSide(want.String() + "/16")
	h.start()
	ev, _ := h.waitEvent(autoip.EventConflict, 0, 10*time.Second)
	if ev.Addr != want || ev.Phase != acd.PhaseProbing || ev.From != w.mac {
		t.Fatalf("conflict event %+v; want %v in probing from kernel MAC %v", ev, want, w.mac)
	}
	addr := h.waitBound(10 * time.Second)
	if addr == want {
		t.Fatalf("bound %v although the kernel holds it", addr)
	}
	if h.onNIC(want) {
		t.Fatalf("%v was configured on the netstack NIC", want)
	}
}

// TestR15_R16_KernelSideAnnouncesOurAddress: the default policy defends once
// and yields to a second conflict within DEFEND_INTERVAL (R15); abandon
// yields at once (R16). The address is off the NIC at once (R18).
func TestR15_R16_KernelSideAnnouncesOurAddress(t *testing.T) {
	first := netip.MustParseAddr("169.254.33.33")
	for _, tc := range []struct {
		name    string
		defend  acd.DefendPolicy
		defends int
	}{
		{"R15_default_defends_once", acd.DefendOnce, 1},
		{"R16_abandon", acd.Abandon, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, nil, "", hostOpts{create: true, cfg: stack.ClientConfig{Engine: autoip.Config{Initial: first, Defend: tc.defend}}})
			w := h.kernelSide()
			if a := h.waitBound(10 * time.Second); a != first {
				t.Fatalf("bound %v, want %v", a, first)
			}
			mark := h.eventCount()
			w.sendARP(t, acd.BroadcastMAC, peerMAC, acd.Announcement(peerMAC, first))
			if tc.defends == 1 {
				ev, _ := h.waitEvent(autoip.EventDefend, mark, 5*time.Second)
				if ev.From != peerMAC {
					t.Fatalf("defend event from %v, want %v", ev.From, peerMAC)
				}
				w.waitARP(t, "defensive announcement", 3*time.Second, func(f acd.Frame) bool { return f.IsAnnouncement() && f.SenderIP == first && f.SenderHW == ourMAC })
				if !h.onNIC(first) {
					t.Fatal("address left the NIC after one conflict under the default policy")
				}
				w.sendARP(t, acd.BroadcastMAC, peerMAC, acd.Announcement(peerMAC, first))
			}
			ev, _ := h.waitEvent(autoip.EventConflict, mark, 5*time.Second)
			if ev.Phase != acd.PhaseBound || ev.Addr != first || ev.From != peerMAC {
				t.Fatalf("conflict event %+v", ev)
			}
			if h.onNIC(first) {
				t.Fatalf("%v still on the NIC after the conflict event", first)
			}
			next := h.waitBound(10 * time.Second)
			if next == first {
				t.Fatalf("re-bound %v", first)
			}
		})
	}
}
