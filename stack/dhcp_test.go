package stack

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"slices"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/dhcp"
	"github.com/autoip-project/autoip/dhcp/dhcptest"
	"github.com/autoip-project/autoip/sim/segment"
)

// dhcpServerMAC is the test DHCP server's MAC on the hub.
var dhcpServerMAC = [6]byte{0x02, 0x53, 0, 0, 0, 0x01}

var dhcpServerIP = netip.MustParseAddr("10.0.0.53")

// serveDHCP puts srv on the hub as a port of its own: it answers the DHCP
// messages the hosts send, with broadcast replies from its own MAC.
func serveDHCP(h *hub, srv *dhcptest.Server) {
	var port *segment.Port
	recv := func(b []byte) {
		payload, ok := dhcpRequest(b)
		if !ok {
			return
		}
		m, err := dhcp.Decode(payload)
		if err != nil {
			h.t.Errorf("undecodable DHCP message: %v", err)
			return
		}
		r, ok := srv.Handle(m)
		if !ok {
			return
		}
		frame := udpFrame(nil, dhcpServerMAC, [6]byte(acd.BroadcastMAC), dhcpServerIP, netip.MustParseAddr("255.255.255.255"), dhcpServerPort, dhcpClientPort, r.Append(nil))
		if err := h.seg.Send(port, frame); err != nil {
			h.t.Errorf("DHCP server send: %v", err)
		}
	}
	var err error
	if port, err = h.seg.AttachFunc(tcpip.LinkAddress(dhcpServerMAC[:]), recv); err != nil {
		h.t.Fatal(err)
	}
}

// dhcpRequest returns the payload of a datagram to port 67.
func dhcpRequest(b []byte) ([]byte, bool) {
	if len(b) < 42 || b[12] != 0x08 || b[13] != 0 || b[23] != 17 || b[36] != 0 || b[37] != dhcpServerPort {
		return nil, false
	}
	return b[42:], true
}

func newDHCPServer(pool ...string) *dhcptest.Server {
	s := &dhcptest.Server{Addr: dhcpServerIP, Router: netip.MustParseAddr("10.0.0.1"), Lease: time.Hour,
		DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}}
	for _, a := range pool {
		s.Pool = append(s.Pool, netip.MustParseAddr(a))
	}
	return s
}

// dhcpCfg is a client configuration with DHCP and quick retransmissions.
func dhcpCfg(mod func(*DHCPConfig)) ClientConfig {
	d := &DHCPConfig{Retransmit: time.Second}
	if mod != nil {
		mod(d)
	}
	return ClientConfig{DHCP: d}
}

// leaseOf returns the host's configured DHCP address, if any.
func leaseOf(ho *host) netip.Prefix {
	for _, a := range ho.client().Addresses() {
		if a.Source == SourceDHCP && a.State == AddrConfigured {
			return a.Prefix
		}
	}
	return netip.Prefix{}
}

// TestR32_LeaseOnlyAfterACD: the leased address reaches the NIC, with its
// subnet route and the router as default gateway, only after three probes
// for it went out; link-local never starts while the lease came in time.
func TestR32_LeaseOnlyAfterACD(t *testing.T) {
	h := newHub(t)
	serveDHCP(h, newDHCPServer("10.0.0.10"))
	a := h.addHost(hostCfg{cfg: dhcpCfg(nil)})
	want := netip.MustParsePrefix("10.0.0.10/24")
	probes := 0
	h.check = func() {
		if !a.has(want.Addr()) {
			probes = len(h.arpFrom(0, a.idx, func(f acd.Frame) bool { return f.IsProbe() && f.TargetIP == want.Addr() }))
		}
	}
	if !h.runUntil(h.clk.Now().Add(time.Minute), func() bool { return a.has(want.Addr()) }) {
		t.Fatalf("no lease configured: %+v\n%s", a.client().Addresses(), h.dump(0))
	}
	h.check = nil
	if probes != 3 {
		t.Errorf("%d probes for %v before it was configured, want 3", probes, want.Addr())
	}
	if got := a.mustSource(t, ip("8.8.8.8")); got != want.Addr() {
		t.Errorf("source towards 8.8.8.8 %v, want the lease", got)
	}
	h.runFor(time.Minute)
	if st := a.status(); st.Stats.Attempts != 0 || st.State != autoip.StateSuspended {
		t.Errorf("link-local %v with %d attempts while a lease came in time", st.State, st.Stats.Attempts)
	}
	if got := leaseOf(a); got != want {
		t.Errorf("Addresses() lease %v", got)
	}
}

// TestR32_DeclineOfferInUse: the server offers an address a static host
// already holds; the probe finds it, the client declines it (DHCPDECLINE on
// the wire), never configures it, and takes the next one.
func TestR32_DeclineOfferInUse(t *testing.T) {
	h := newHub(t)
	srv := newDHCPServer("10.0.0.10", "10.0.0.11")
	serveDHCP(h, srv)
	holder := h.addHost(hostCfg{noAutoIP: true})
	if err := holder.s.AddAddress(netip.MustParsePrefix("10.0.0.10/24")); err != nil {
		t.Fatal(err)
	}
	var evs []AddressEvent
	cfg := dhcpCfg(nil)
	cfg.OnAddressEvent = func(ev AddressEvent) { evs = append(evs, ev) }
	a := h.addHost(hostCfg{cfg: cfg})
	ever := false
	h.check = func() { ever = ever || a.has(netip.MustParseAddr("10.0.0.10")) }
	if !h.runUntil(h.clk.Now().Add(2*time.Minute), func() bool { return a.has(netip.MustParseAddr("10.0.0.11")) }) {
		t.Fatalf("no second lease: %+v\n%s", a.client().Addresses(), h.dump(0))
	}
	if ever {
		t.Fatal("the address in use was configured")
	}
	if !srv.Declined(netip.MustParseAddr("10.0.0.10")) || srv.Seen[dhcp.Decline] != 1 {
		t.Errorf("server saw %d declines", srv.Seen[dhcp.Decline])
	}
	kinds := []AddressEventKind{}
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Contains(kinds, LeaseDeclined) || !slices.Contains(kinds, AddressConflict) || !slices.Contains(kinds, LeaseBound) {
		t.Errorf("events %v", kinds)
	}
}

// TestR31_StaticAddressProbedAndDefended: an address added at run time is
// probed before it is configured; one another host holds is never
// configured and is reported; a configured one is defended, not given up.
func TestR31_StaticAddressProbedAndDefended(t *testing.T) {
	h := newHub(t)
	holder := h.addHost(hostCfg{noAutoIP: true})
	if err := holder.s.AddAddress(netip.MustParsePrefix("10.0.0.7/24")); err != nil {
		t.Fatal(err)
	}
	var evs []AddressEvent
	a := h.addHost(hostCfg{cfg: ClientConfig{OnAddressEvent: func(ev AddressEvent) { evs = append(evs, ev) }}})
	h.runUntilBound(time.Minute, a)

	// Taken: probed, conflict, not configured.
	taken := netip.MustParsePrefix("10.0.0.7/24")
	if err := a.client().AddAddress(taken, SourceAlias); err != nil {
		t.Fatal(err)
	}
	h.runFor(time.Minute)
	if a.has(taken.Addr()) {
		t.Fatal("configured an address another host holds")
	}
	st := a.client().Addresses()
	if len(st) != 1 || st[0].State != AddrConflict || st[0].LastConflict == nil || st[0].LastConflict.From != holder.mac {
		t.Fatalf("status %+v", st)
	}

	// Free: probed, then configured and defended.
	free := netip.MustParsePrefix("10.0.0.8/24")
	mark := len(h.trace)
	a.addStatic(free)
	if n := len(h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return f.IsProbe() && f.TargetIP == free.Addr() })); n != 3 {
		t.Errorf("%d probes for %v before it was configured", n, free.Addr())
	}
	h.runFor(10 * time.Second)
	for range 3 {
		h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, free.Addr())))
		h.runFor(time.Second)
	}
	if !a.has(free.Addr()) {
		t.Fatal("static address given up on conflict")
	}
	defended := 0
	for _, ev := range evs {
		if ev.Kind == AddressDefended && ev.Prefix == free {
			defended++
		}
	}
	if defended != 1 {
		t.Errorf("%d defences of %v within DEFEND_INTERVAL, want 1", defended, free)
	}
	if err := a.client().AddAddress(free, SourceAlias); err == nil {
		t.Error("adding a managed address twice succeeded")
	}
	if err := a.client().RemoveAddress(free.Addr()); err != nil || a.has(free.Addr()) {
		t.Errorf("RemoveAddress: %v, still on NIC %v", err, a.has(free.Addr()))
	}
}

// TestDHCPLinkLocalFallback: with no server, link-local starts after
// LinkLocalAfter; a server that appears later leases an address beside it
// (default: both stay; under YieldToRoutable link-local gives way); when
// the lease is lost, link-local comes back, last address first.
func TestDHCPLinkLocalFallback(t *testing.T) {
	for _, yield := range []bool{false, true} {
		t.Run(map[bool]string{false: "alias", true: "old"}[yield], func(t *testing.T) {
			h := newHub(t)
			srv := newDHCPServer("10.0.0.10")
			srv.Silent = true
			srv.Lease = 10 * time.Minute
			serveDHCP(h, srv)
			cfg := dhcpCfg(func(d *DHCPConfig) { d.LinkLocalAfter = 20 * time.Second })
			cfg.Engine.YieldToRoutable = yield
			a := h.addHost(hostCfg{cfg: cfg})
			h.runFor(19 * time.Second)
			if st := a.status(); st.Stats.Attempts != 0 {
				t.Fatalf("link-local started before LinkLocalAfter: %v", st.State)
			}
			h.runUntilBound(time.Minute, a)
			ll := a.bound()
			srv.Silent = false
			if !h.runUntil(h.clk.Now().Add(2*time.Minute), func() bool { return leaseOf(a).IsValid() }) {
				t.Fatal("no lease once the server answers")
			}
			h.runFor(time.Second)
			if a.has(ll) == yield {
				t.Errorf("link-local kept = %v with YieldToRoutable %v", a.has(ll), yield)
			}
			srv.Silent = true // renewals fail: the lease runs out
			if !h.runUntil(h.clk.Now().Add(20*time.Minute), func() bool { return !leaseOf(a).IsValid() && a.has(ll) }) {
				t.Fatalf("after the lease ran out: lease %v, link-local %v (NIC %v)", leaseOf(a), ll, a.addrs())
			}
		})
	}
}

// TestR33_ServerSaysDoNotAutoConfigure: an offer with option 116 = 0 keeps
// link-local off while the server is heard, even past LinkLocalAfter.
func TestR33_ServerSaysDoNotAutoConfigure(t *testing.T) {
	h := newHub(t)
	srv := newDHCPServer() // empty pool: offers nothing... so use one that offers
	srv.Pool = []netip.Addr{netip.MustParseAddr("10.0.0.10")}
	srv.NoAutoConfigure = true
	srv.Nak = true // it never grants a lease either
	serveDHCP(h, srv)
	a := h.addHost(hostCfg{cfg: dhcpCfg(func(d *DHCPConfig) { d.LinkLocalAfter = 5 * time.Second })})
	h.runFor(5 * time.Minute)
	if st := a.status(); st.Stats.Attempts != 0 || st.State != autoip.StateSuspended {
		t.Fatalf("link-local %v, %d attempts, although the server said do not auto-configure", st.State, st.Stats.Attempts)
	}
	// The server goes away: after a whole silent discovery cycle
	// link-local may run.
	srv.Silent = true
	h.runUntilBound(10*time.Minute, a)
}

// TestR21_YieldEndsWhenTheStaticAddressLosesItsProbe: in the flag form
// (YieldToRoutable) link-local waits while a static address is probed, and
// claims once that address lost its probe to another host: nothing
// routable will be configured, so there is nothing to yield to. An
// operator saw autoipd -addr on a taken address stay suspended for ever,
// with no address at all.
func TestR21_YieldEndsWhenTheStaticAddressLosesItsProbe(t *testing.T) {
	h := newHub(t)
	holder := h.addHost(hostCfg{noAutoIP: true})
	taken := netip.MustParsePrefix("10.0.0.7/24")
	if err := holder.s.AddAddress(taken); err != nil {
		t.Fatal(err)
	}
	a := h.addHost(hostCfg{cfg: ClientConfig{Engine: autoip.Config{YieldToRoutable: true}, Static: []netip.Prefix{taken}}})
	h.runFor(time.Minute)
	if a.has(taken.Addr()) {
		t.Fatal("configured an address another host holds")
	}
	if st := a.client().Addresses(); len(st) != 1 || st[0].State != AddrConflict {
		t.Fatalf("static address %+v, want it in conflict", st)
	}
	if st := a.status(); st.State != autoip.StateBound || !st.Configured.IsValid() {
		t.Fatalf("link-local after the static address lost its probe: %v %v, want bound", st.State, st.Configured)
	}
}

// TestR32_LeaseShorterThanItsCheckNeverConfigured: a server granting 2-second leases, less
// than the RFC 5227 check takes: the lease is never configured, no check is
// left behind for it (one DHCP address entry at most, never a stale one),
// and link-local takes over.
func TestR32_LeaseShorterThanItsCheckNeverConfigured(t *testing.T) {
	h := newHub(t)
	srv := newDHCPServer("10.0.0.10")
	srv.Lease = 2 * time.Second
	serveDHCP(h, srv)
	var lost []string
	cfg := dhcpCfg(nil)
	cfg.OnAddressEvent = func(ev AddressEvent) {
		if ev.Kind == LeaseLost {
			lost = append(lost, ev.Reason)
		}
	}
	a := h.addHost(hostCfg{cfg: cfg})
	leased := netip.MustParseAddr("10.0.0.10")
	ever, most := false, 0
	h.check = func() {
		ever = ever || a.has(leased)
		n := 0
		for _, ad := range a.client().Addresses() {
			if ad.Source == SourceDHCP {
				n++
			}
		}
		most = max(most, n)
	}
	h.runUntilBound(time.Minute, a)
	h.runFor(30 * time.Second)
	h.check = nil
	if ever {
		t.Errorf("%v configured although its lease ended before its check", leased)
	}
	if most > 1 {
		t.Errorf("%d DHCP address entries at once: a finished check was left behind", most)
	}
	if !slices.Contains(lost, "expired before its check ended") {
		t.Errorf("lease-lost reasons %q", lost)
	}
	if srv.Seen[dhcp.Request] < 2 {
		t.Errorf("%d requests: the client did not start over", srv.Seen[dhcp.Request])
	}
}
