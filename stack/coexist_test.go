package stack

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

var (
	routable = netip.MustParsePrefix("10.0.0.1/24")
	gateway  = ip("10.0.0.254")
)

// addDefaultRoute adds 0.0.0.0/0 via gateway on the host's NIC, with no
// source hint, as an application would.
func addDefaultRoute(s *Stack) {
	s.GVisor().AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpipAddr(gateway), NIC: s.NIC()})
}

// TestR20_CoexistWithRoutableAddress: by default the routable address and
// the link-local one share the NIC and each is the source for its own kind
// of destination, also through a default route towards 172.16.0.0/12,
// which shares five leading bits with 169.254 (the SourceHint fix).
func TestR20_CoexistWithRoutableAddress(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{beforeStart: func(s *Stack) {
		if err := s.AddAddress(routable); err != nil {
			t.Fatal(err)
		}
		addDefaultRoute(s)
	}})
	// Control: with only the routable address, it is the source anyway.
	if got := a.mustSource(t, ip("172.16.0.1")); got != routable.Addr() {
		t.Fatalf("before the claim the source towards 172.16.0.1 is %v", got)
	}
	h.runUntilBound(time.Minute)
	ll := a.bound()
	if got, want := a.addrs(), []netip.Prefix{routable, netip.PrefixFrom(ll, 16)}; !slices.Equal(got, want) {
		t.Fatalf("NIC addresses %v, want %v", got, want)
	}
	for _, tc := range []struct {
		dst, want netip.Addr
	}{
		{ip("169.254.9.9"), ll},
		{ip("10.0.0.9"), routable.Addr()},
		{ip("172.16.0.1"), routable.Addr()},
		{ip("172.31.255.1"), routable.Addr()},
		{ip("8.8.8.8"), routable.Addr()},
	} {
		if got := a.mustSource(t, tc.dst); got != tc.want {
			t.Errorf("source towards %v is %v, want %v", tc.dst, got, tc.want)
		}
	}
	// Traffic to 169.254/16 is on-link (R23): no gateway on its route.
	r, err := a.s.GVisor().FindRoute(a.s.NIC(), tcpip.Address{}, tcpipAddr(ip("169.254.9.9")), header.IPv4ProtocolNumber, false)
	if err != nil {
		t.Fatal(err)
	}
	if gw := r.NextHop(); gw != (tcpip.Address{}) {
		t.Errorf("169.254.9.9 routed via %v, want on-link", gw)
	}
	r.Release()
	if len(a.llRoutes()) != 1 {
		t.Errorf("169.254/16 routes %v, want one", a.llRoutes())
	}
	if st := a.status(); st.State != autoip.StateBound || len(a.eventsOf(autoip.EventUnbind)) != 0 {
		t.Errorf("state %v events %v; the routable address must not disturb the default mode", st.State, a.eventStrings())
	}
}

// TestR20_ApplicationHintIsKept: a route whose SourceHint the application
// chose keeps it.
func TestR20_ApplicationHintIsKept(t *testing.T) {
	h := newHub(t)
	other := netip.MustParsePrefix("10.0.0.2/24")
	a := h.addHost(hostCfg{beforeStart: func(s *Stack) {
		for _, p := range []netip.Prefix{routable, other} {
			if err := s.AddAddress(p); err != nil {
				t.Fatal(err)
			}
		}
		s.GVisor().AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpipAddr(gateway), NIC: s.NIC(), SourceHint: tcpipAddr(other.Addr())})
	}})
	h.runUntilBound(time.Minute)
	if got := a.mustSource(t, ip("172.16.0.1")); got != other.Addr() {
		t.Errorf("source towards 172.16.0.1 is %v, want the application's hint %v", got, other.Addr())
	}
	a.client().SetLink(false) // the client clears only hints it set
	if got := defaultRouteHint(t, a); got != tcpipAddr(other.Addr()) {
		t.Errorf("application's hint became %v after the link-local address went", got)
	}
}

// TestR21_YieldToRoutable: "old" (autoipd without -f) gives the
// link-local address up while a routable one is on the NIC and claims it
// back, same address first, when the routable one goes; "old,force" (-f)
// keeps it.
func TestR21_YieldToRoutable(t *testing.T) {
	for _, yield := range []bool{true, false} {
		name := map[bool]string{true: "old", false: "old,force"}[yield]
		t.Run(name, func(t *testing.T) {
			h := newHub(t)
			a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{YieldToRoutable: yield}}})
			h.runUntilBound(time.Minute)
			ll := a.bound()
			if err := a.s.AddAddress(routable); err != nil {
				t.Fatal(err)
			}
			if !yield {
				h.runFor(time.Minute)
				if got, want := a.addrs(), []netip.Prefix{routable, netip.PrefixFrom(ll, 16)}; !slices.Equal(got, want) {
					t.Errorf("NIC %v, want %v", got, want)
				}
				if st := a.status(); st.State != autoip.StateBound {
					t.Errorf("state %v, want bound", st.State)
				}
				return
			}
			// Gone at once (the routable address is still being probed:
			// it counts already), with an UNBIND event.
			if a.has(ll) {
				t.Fatalf("link-local %v still on the NIC next to %v", ll, routable)
			}
			if !h.runUntil(h.clk.Now().Add(time.Minute), func() bool { return a.has(routable.Addr()) }) {
				t.Fatalf("%v never configured: %+v", routable, a.client().Addresses())
			}
			h.runFor(10 * time.Second) // its announcements done
			if got := a.addrs(); !slices.Equal(got, []netip.Prefix{routable}) {
				t.Errorf("NIC %v, want just %v", got, routable)
			}
			ub := a.eventsOf(autoip.EventUnbind)
			if len(ub) != 1 || ub[0].Addr != ll || ub[0].Reason != "routable address" {
				t.Errorf("UNBIND events %+v, want one for %v, reason routable address", ub, ll)
			}
			// R27: 169.254/16 stays on-link, now from the routable address.
			if rs := a.llRoutes(); len(rs) != 1 || rs[0].SourceHint != tcpipAddr(routable.Addr()) {
				t.Errorf("169.254/16 routes %v, want ours with source %v", rs, routable.Addr())
			}
			mark := len(h.trace)
			h.runFor(5 * time.Minute)
			if out := h.framesFrom(mark, a.idx); len(out) != 0 {
				t.Errorf("suspended host sent frames:\n%s", h.dump(mark))
			}
			if st := a.status(); st.State != autoip.StateSuspended {
				t.Errorf("state %v, want suspended", st.State)
			}
			// The routable address goes: the same address is claimed again.
			if err := a.s.RemoveAddress(routable); err != nil {
				t.Fatal(err)
			}
			h.runUntilBound(time.Minute)
			if a.bound() != ll {
				t.Errorf("re-claimed %v, want the last address %v first", a.bound(), ll)
			}
			if got := a.addrs(); !slices.Equal(got, []netip.Prefix{netip.PrefixFrom(ll, 16)}) {
				t.Errorf("NIC %v", got)
			}
			probes := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return f.IsProbe() })
			if len(probes) != 3 || probes[0].TargetIP != ll {
				t.Errorf("probes after the routable address went: %v", probes)
			}
		})
	}
}

// TestR21_NoProbeWhileRoutablePresent: starting with a routable address
// already on the NIC and YieldToRoutable, not a single probe goes out
// until the routable address goes.
func TestR21_NoProbeWhileRoutablePresent(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{
		cfg: ClientConfig{Engine: autoip.Config{YieldToRoutable: true}},
		beforeStart: func(s *Stack) {
			if err := s.AddAddress(routable); err != nil {
				t.Fatal(err)
			}
		},
	})
	h.runFor(10 * time.Minute)
	if out := h.framesFrom(0, a.idx); len(out) != 0 {
		t.Fatalf("frames sent while a routable address is present:\n%s", h.dump(0))
	}
	if st := a.status(); st.State != autoip.StateSuspended || st.Stats.Attempts != 0 {
		t.Errorf("state %v, attempts %d; want suspended, 0", st.State, st.Stats.Attempts)
	}
	if len(a.eventsCopy()) != 0 {
		t.Errorf("events %v, want none", a.eventStrings())
	}
	if err := a.s.RemoveAddress(routable); err != nil {
		t.Fatal(err)
	}
	h.runUntilBound(time.Minute)
	if got := a.addrs(); len(got) != 1 || !autoip.InRange(got[0].Addr()) {
		t.Errorf("NIC %v, want just a link-local address", got)
	}
}

// TestR22_RouteThroughRoutableNIC: with Config.Route, while a routable
// address is on the NIC, 169.254.0.0/16 is routed through it with the
// routable address as source, whether or not a link-local address is
// bound, and even while "old" mode has withdrawn it.
func TestR22_RouteThroughRoutableNIC(t *testing.T) {
	wantRoute := func(t *testing.T, a *host, hint netip.Addr) {
		t.Helper()
		rs := a.llRoutes()
		if len(rs) != 1 || rs[0].NIC != a.s.NIC() || rs[0].SourceHint != tcpipAddr(hint) || rs[0].Gateway != (tcpip.Address{}) {
			t.Fatalf("169.254/16 routes %v, want one on-link on NIC %d with hint %v", rs, a.s.NIC(), hint)
		}
		if got := a.mustSource(t, ip("169.254.9.9")); got != hint {
			t.Errorf("source towards 169.254.9.9 is %v, want %v", got, hint)
		}
	}
	t.Run("coexist", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{cfg: ClientConfig{Route: true}, beforeStart: func(s *Stack) {
			if err := s.AddAddress(routable); err != nil {
				t.Fatal(err)
			}
		}})
		wantRoute(t, a, routable.Addr()) // before any claim
		h.runUntilBound(time.Minute)
		wantRoute(t, a, routable.Addr())
		if !a.has(a.bound()) {
			t.Errorf("link-local %v not on the NIC", a.bound())
		}
	})
	t.Run("old", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{cfg: ClientConfig{Route: true, Engine: autoip.Config{YieldToRoutable: true}}})
		h.runUntilBound(time.Minute)
		ll := a.bound()
		wantRoute(t, a, ll) // no routable address: the link-local route
		if err := a.s.AddAddress(routable); err != nil {
			t.Fatal(err)
		}
		if a.has(ll) {
			t.Fatalf("link-local address kept in old mode")
		}
		h.runUntil(h.clk.Now().Add(time.Minute), func() bool { return a.has(routable.Addr()) })
		wantRoute(t, a, routable.Addr())
		h.runFor(time.Minute)
		wantRoute(t, a, routable.Addr())
		if err := a.s.RemoveAddress(routable); err != nil {
			t.Fatal(err)
		}
		// Nothing bound and no routable address: our on-link route stays
		// (R27), with no source to suggest.
		if rs := a.llRoutes(); len(rs) != 1 || rs[0].SourceHint != (tcpip.Address{}) {
			t.Errorf("routes %v while nothing is bound and no routable address is left", rs)
		}
		h.runUntilBound(time.Minute)
		wantRoute(t, a, ll)
	})
	// R27: without Route, and with no link-local address (yielding to the
	// routable one), 169.254/16 peers are still reached directly on the
	// link, from the routable address.
	t.Run("R27 without Route", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{YieldToRoutable: true}}, beforeStart: func(s *Stack) {
			if err := s.AddAddress(routable); err != nil {
				t.Fatal(err)
			}
			addDefaultRoute(s)
		}})
		h.runFor(time.Minute)
		wantRoute(t, a, routable.Addr())
		r, err := a.s.GVisor().FindRoute(a.s.NIC(), tcpip.Address{}, tcpipAddr(ip("169.254.9.9")), header.IPv4ProtocolNumber, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if gw := r.NextHop(); gw != (tcpip.Address{}) {
			t.Errorf("169.254.9.9 routed via %v despite the default route, want on-link", gw)
		}
	})
}

// defaultRouteHint returns the SourceHint of the host's default route.
func defaultRouteHint(t *testing.T, a *host) tcpip.Address {
	t.Helper()
	for _, r := range a.s.GVisor().GetRouteTable() {
		if r.Destination == header.IPv4EmptySubnet && r.NIC == a.s.NIC() {
			return r.SourceHint
		}
	}
	t.Fatal("no default route")
	return tcpip.Address{}
}

// TestR20_HintFollowsRoutableAddress: the source hint the client fills in
// follows the routable address when it changes, and goes back to empty
// when the two kinds of address stop sharing the NIC.
func TestR20_HintFollowsRoutableAddress(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{beforeStart: func(s *Stack) {
		if err := s.AddAddress(routable); err != nil {
			t.Fatal(err)
		}
		addDefaultRoute(s)
	}})
	if got := defaultRouteHint(t, a); got != (tcpip.Address{}) {
		t.Fatalf("hint %v before the claim, want none", got)
	}
	h.runUntilBound(time.Minute)
	if got := defaultRouteHint(t, a); got != tcpipAddr(routable.Addr()) {
		t.Fatalf("hint %v while both addresses are on the NIC, want %v", got, routable.Addr())
	}
	// The routable address changes.
	if err := a.s.RemoveAddress(routable); err != nil {
		t.Fatal(err)
	}
	if got := defaultRouteHint(t, a); got != (tcpip.Address{}) {
		t.Errorf("hint %v with no routable address left, want none", got)
	}
	other := netip.MustParsePrefix("10.0.0.5/24")
	a.addStatic(other)
	if got := a.mustSource(t, ip("172.16.0.1")); got != other.Addr() {
		t.Errorf("source towards 172.16.0.1 is %v after the routable address changed, want %v", got, other.Addr())
	}
	// The link-local address goes: the route is as the application left it.
	a.client().SetLink(false)
	if got := defaultRouteHint(t, a); got != (tcpip.Address{}) {
		t.Errorf("hint %v after the link-local address went, want none", got)
	}
	a.client().SetLink(true)
	h.runUntilBound(time.Minute)
	if got := a.mustSource(t, ip("172.16.0.1")); got != other.Addr() {
		t.Errorf("source towards 172.16.0.1 is %v after re-claiming, want %v", got, other.Addr())
	}
}

// TestR21_StaticWaitingForLinkYields: a static address given at attach
// (ClientConfig.Static, autoipd's -addr) while the link is down is on its
// way to the NIC like one being probed: with YieldToRoutable, when the link
// comes up only the static address is probed, link-local not at all (seen
// first in autoipd, which attaches before it opens the TAP). The same after
// a link flap with the static address configured.
func TestR21_StaticWaitingForLinkYields(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{noAutoIP: true})
	link := &fakeLinkState{}
	c, err := Attach(a.s.GVisor(), a.s.NIC(), a.s.Shim(), ClientConfig{
		LinkState: link, Static: []netip.Prefix{routable},
		Engine: autoip.Config{YieldToRoutable: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.s.client = c
	h.runFor(time.Minute)
	llProbes := func() int {
		return len(h.arpFrom(0, a.idx, func(f acd.Frame) bool { return f.IsProbe() && f.TargetIP != routable.Addr() }))
	}
	for round := range 2 {
		link.set(true)
		h.runFor(time.Minute)
		if !a.has(routable.Addr()) {
			t.Fatalf("round %d: static %v not configured", round, routable)
		}
		if n := llProbes(); n != 0 {
			t.Fatalf("round %d: %d link-local probes while a static address was on its way:\n%s", round, n, h.dump(0))
		}
		if st := c.Status(); st.State != autoip.StateSuspended {
			t.Errorf("round %d: state %v, want suspended", round, st.State)
		}
		link.set(false)
		h.runFor(time.Second)
	}
}
