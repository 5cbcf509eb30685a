package integration

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
)

// TestR19_LinkDownUpAndTAPDeleteRecreate: down/up and delete/re-create of
// the TAP withdraw the address and re-claim the same one, last address
// first (R19). The TAP is a persistent one the test made and the client
// attached to.
func TestR19_LinkDownUpAndTAPDeleteRecreate(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "aipit")
	ns.DisableIPv6(t)
	name := tapName("aipt")
	ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(t, "link", "set", name, "up")
	h := newHost(t, ns, name, hostOpts{})
	h.kernelSide(kernLL.String() + "/16")
	addr := h.waitBound(10 * time.Second)

	cycle := func(what string, down, up func()) {
		t.Helper()
		mark := h.eventCount()
		down()
		ev, _ := h.waitEvent(autoip.EventUnbind, mark, 5*time.Second)
		if ev.Addr != addr {
			t.Fatalf("%s: unbind %v, want %v", what, ev.Addr, addr)
		}
		if h.onNIC(addr) {
			t.Fatalf("%s: %v still on the NIC while the link is down", what, addr)
		}
		up()
		ev, _ = h.waitEvent(autoip.EventBind, mark, 10*time.Second)
		if ev.Addr != addr {
			t.Fatalf("%s: re-bound %v, want the last address %v", what, ev.Addr, addr)
		}
		// The first probe after coming back was for the last address.
		pr, _ := h.waitEvent(autoip.EventProbe, mark, time.Second)
		if pr.Addr != addr {
			t.Fatalf("%s: first probe after link-up for %v, want %v", what, pr.Addr, addr)
		}
	}
	cycle("admin down/up",
		func() { ns.IP(t, "link", "set", name, "down") },
		func() { ns.IP(t, "link", "set", name, "up") })
	cycle("delete/re-create",
		func() { ns.IP(t, "link", "del", name) },
		func() {
			ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap")
			ns.IP(t, "link", "set", name, "up")
			ns.IP(t, "addr", "add", kernLL.String()+"/16", "dev", name)
		})
	if st := h.link.Stats(); st.Reopens == 0 {
		t.Fatalf("link never re-opened the TAP: %+v", st)
	}
	out := h.ns.Run(t, "ping", "-c", "1", "-W", "2", "-I", name, addr.String())
	if !strings.Contains(out, "1 received") {
		t.Fatalf("ping after re-create: %s", out)
	}
}

// TestR13_R20_R21_R22_RoutableAddressOnTAP: a routable address on the same
// NIC keeps working next to ours (R13, R20); "old" withdraws the link-local
// address while a routable one is present, "old,force" keeps it (R21);
// "route" sends 169.254/16 traffic through the NIC with the routable address
// as source (R22).
func TestR13_R20_R21_R22_RoutableAddressOnTAP(t *testing.T) {
	routable := netip.MustParsePrefix("198.18.77.1/24")
	kernRoutable := "198.18.77.2"
	ping := func(h *host, a netip.Addr) bool {
		out, err := h.ns.Exec("ping", "-c", "1", "-W", "1", "-I", h.name, a.String())
		return err == nil && strings.Contains(out, "1 received")
	}

	t.Run("R13_R20_coexist", func(t *testing.T) {
		h := newHost(t, nil, "", hostOpts{create: true, static: &routable})
		h.kernelSide(kernLL.String()+"/16", kernRoutable+"/24")
		ll := h.waitBound(10 * time.Second)
		if !h.onNIC(routable.Addr()) || !h.onNIC(ll) {
			t.Fatal("both addresses must be on the NIC")
		}
		if !ping(h, routable.Addr()) || !ping(h, ll) {
			t.Fatal("both addresses must answer ping")
		}
		// Removing ours removes only ours.
		h.client().Close()
		if h.onNIC(ll) || !h.onNIC(routable.Addr()) || !ping(h, routable.Addr()) {
			t.Fatal("closing the client must remove only the link-local address")
		}
	})

	t.Run("R21_old_and_old_force", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			yield bool
		}{{"old", true}, {"old,force", false}} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHost(t, nil, "", hostOpts{create: true, cfg: stack.ClientConfig{Engine: autoip.Config{YieldToRoutable: tc.yield}}})
				h.kernelSide(kernLL.String()+"/16", kernRoutable+"/24")
				ll := h.waitBound(10 * time.Second)
				mark := h.eventCount()
				if err := h.st.AddAddress(routable); err != nil {
					t.Fatal(err)
				}
				h.client().Resync() // the harness attached its own client
				if tc.yield {
					h.waitEvent(autoip.EventUnbind, mark, 5*time.Second)
					if h.onNIC(ll) || ping(h, ll) {
						t.Fatal("old: link-local address must go when a routable one appears")
					}
					if err := h.st.RemoveAddress(routable); err != nil {
						t.Fatal(err)
					}
					h.client().Resync()
					ev, _ := h.waitEvent(autoip.EventBind, mark, 10*time.Second)
					if ev.Addr != ll {
						t.Fatalf("old: re-claimed %v, want %v", ev.Addr, ll)
					}
				} else {
					time.Sleep(300 * time.Millisecond)
					if !h.onNIC(ll) || !ping(h, ll) || !ping(h, routable.Addr()) {
						t.Fatal("old,force: both addresses must stay")
					}
				}
			})
		}
	})

	t.Run("R22_route", func(t *testing.T) {
		h := newHost(t, nil, "", hostOpts{create: true, static: &routable,
			cfg: stack.ClientConfig{Route: true, Engine: autoip.Config{YieldToRoutable: true}}})
		h.kernelSide(kernLL.String()+"/16", kernRoutable+"/24")
		// With old semantics and a routable address, no link-local address
		// is claimed, yet 169.254/16 is reachable through the NIC, sourced
		// from the routable address.
		time.Sleep(300 * time.Millisecond)
		if st := h.client().Status(); st.Configured.IsValid() {
			t.Fatalf("claimed %v despite old and a routable address", st.Configured)
		}
		r, err := h.st.GVisor().FindRoute(h.st.NIC(), tcpip.Address{}, tcpip.AddrFrom4(kernLL.As4()), ipv4.ProtocolNumber, false)
		if err != nil {
			t.Fatalf("no route to %v: %v", kernLL, err)
		}
		src := r.LocalAddress()
		r.Release()
		if src != tcpip.AddrFrom4(routable.Addr().As4()) {
			t.Fatalf("source towards %v is %v, want %v", kernLL, src, routable.Addr())
		}
		// And real traffic flows: an ICMP-free check with TCP to the kernel.
		var got string
		accepted := make(chan string, 1)
		if err := h.ns.Do(func() error {
			ln, err := listenTCP(kernLL, 7779)
			if err != nil {
				return err
			}
			go func() {
				defer ln.Close()
				c, err := ln.Accept()
				if err != nil {
					accepted <- err.Error()
					return
				}
				accepted <- c.RemoteAddr().String()
				c.Close()
			}()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		c, derr := gonet.DialTCP(h.st.GVisor(), tcpip.FullAddress{NIC: h.st.NIC(), Addr: tcpip.AddrFrom4(kernLL.As4()), Port: 7779}, ipv4.ProtocolNumber)
		if derr != nil {
			t.Fatalf("dial %v through the routable address: %v", kernLL, derr)
		}
		c.Close()
		got = <-accepted
		if !strings.HasPrefix(got, routable.Addr().String()+":") {
			t.Fatalf("kernel saw %q, want a connection from %v", got, routable.Addr())
		}
	})
}
