package stack

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// These tests wire the client the ways an embedder does that the daemon
// never does.

// TestSameSeedDifferentMACsConverge: two hosts given the same Config.Seed
// (a forced collision) on one deterministic clock both bind within the
// time two attempts take; before the delay RNG was keyed by the MAC they
// probed the same candidate at the same instant for ever.
func TestSameSeedDifferentMACsConverge(t *testing.T) {
	h := newHub(t)
	cfg := ClientConfig{Engine: autoip.Config{Seed: 7}}
	a, b := h.addHost(hostCfg{cfg: cfg}), h.addHost(hostCfg{cfg: cfg})
	// One attempt: PROBE_WAIT + 2 x PROBE_MAX + ANNOUNCE_WAIT = 7 s at most;
	// the loser needs a second.
	h.runUntilBound(20*time.Second, a, b)
	if a.bound() == b.bound() {
		t.Fatalf("both hold %v", a.bound())
	}
	if a.status().Stats.ProbeConflicts+b.status().Stats.ProbeConflicts == 0 {
		t.Error("no collision happened: the test does not test the forced collision")
	}
}

// TestSecondAttachRefused: one client per NIC. A second Attach on the same
// Shim fails with ErrAttached and leaves the first client working; after
// Close a new client may attach.
func TestSecondAttachRefused(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	x := a.bound()
	_, err := Attach(a.s.GVisor(), a.s.NIC(), a.s.Shim(), ClientConfig{Engine: autoip.Config{Seed: 99}})
	wantErrIs(t, err, ErrAttached)
	h.runFor(time.Minute)
	if got := a.addrs(); len(got) != 1 || got[0].Addr() != x {
		t.Fatalf("NIC %v after the refused Attach, want just %v", got, x)
	}
	// The first client still sees frames: it defends its address.
	h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Announcement(peerMAC, x)))
	if d := a.status().Stats.Defences; d != 1 {
		t.Fatalf("first client defended %d times, want 1: it no longer sees frames", d)
	}
	a.client().Close()
	c, err := Attach(a.s.GVisor(), a.s.NIC(), a.s.Shim(), ClientConfig{})
	if err != nil {
		t.Fatalf("Attach after Close: %v", err)
	}
	a.s.client = c
	h.runUntilBound(time.Minute, a)
}

// TestResyncAfterRouteTableReplaced: an application that replaces the
// route table (SetRouteTable) removes the client's routes; Resync puts them
// back, and the application's own routes are kept.
func TestResyncAfterRouteTableReplaced(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	x := a.bound()
	gv := a.s.GVisor()
	app := tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpipAddr(ip("169.254.250.1")), NIC: a.s.NIC()}
	gv.SetRouteTable([]tcpip.Route{app})
	if len(a.llRoutes()) != 0 {
		t.Fatal("SetRouteTable kept our route; the test does not test Resync")
	}
	a.client().Resync()
	rs := a.llRoutes()
	if len(rs) != 1 || rs[0].SourceHint != tcpipAddr(x) || rs[0].NIC != a.s.NIC() {
		t.Fatalf("169.254/16 routes after Resync %v, want one with source %v", rs, x)
	}
	found := false
	for _, r := range gv.GetRouteTable() {
		found = found || sameRoute(r, app)
	}
	if !found {
		t.Errorf("Resync lost the application's route: %v", gv.GetRouteTable())
	}
	// Link-local destinations do not follow the default route.
	if r, err := gv.FindRoute(a.s.NIC(), tcpip.Address{}, tcpipAddr(ip("169.254.9.9")), ipv4.ProtocolNumber, false); err != nil || r.NextHop() != (tcpip.Address{}) {
		t.Fatalf("route to 169.254.9.9: %v, %v; want on-link", r, err)
	} else {
		r.Release()
	}
}

// TestRoutesAddedMeanwhileAreKept: the client changes routes one at a time;
// a route the application adds between our changes survives them, and an
// application's own 169.254/16 route is never removed by the client.
func TestRoutesAddedMeanwhileAreKept(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	gv := a.s.GVisor()
	appLL := tcpip.Route{Destination: llSubnet, NIC: a.s.NIC(), MTU: 1400} // the application's own, told apart by its MTU
	gv.AddRoute(appLL)
	h.runUntilBound(time.Minute)
	app := tcpip.Route{Destination: mustSubnet(t, "10.1.0.0/16"), NIC: a.s.NIC()}
	gv.AddRoute(app)
	if err := a.s.AddAddress(routable); err != nil { // our routes and hints change
		t.Fatal(err)
	}
	a.client().Close()
	have := gv.GetRouteTable()
	for _, want := range []tcpip.Route{appLL, app} {
		found := false
		for _, r := range have {
			found = found || sameRoute(r, want)
		}
		if !found {
			t.Errorf("application route %v (MTU %d) lost; table %v", want, want.MTU, have)
		}
	}
	if rs := a.llRoutes(); len(rs) != 1 {
		t.Errorf("169.254/16 routes after Close %v, want just the application's", rs)
	}
}

func mustSubnet(t *testing.T, s string) tcpip.Subnet {
	t.Helper()
	p := netip.MustParsePrefix(s)
	sub, err := tcpip.NewSubnet(tcpip.AddrFrom4(p.Addr().As4()), tcpip.MaskFromBytes(net4Mask(p.Bits())))
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func net4Mask(bits int) []byte {
	m := make([]byte, 4)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// TestTwoAutoIPNICsOnOneStack: two Ethernet NICs of one stack, each with its
// own client, each claim an address and each get their own 169.254/16
// route. A socket bound to one NIC's address leaves through that NIC (an
// unbound one takes the first route whose NIC has an address: the package
// doc says so).
func TestTwoAutoIPNICsOnOneStack(t *testing.T) {
	clk := NewDetClock(t0)
	s, err := New(Options{Link: channel.New(64, 1514, tcpip.LinkAddress(macBytes(hostMAC(0)))), Clock: clk, NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gv := s.GVisor()
	ep2 := channel.New(64, 1514, tcpip.LinkAddress(macBytes(hostMAC(1))))
	shim2, err := NewShim(ep2)
	if err != nil {
		t.Fatal(err)
	}
	const nic2 tcpip.NICID = 2
	if err := gv.CreateNIC(nic2, shim2); err != nil {
		t.Fatal(err)
	}
	c1, err := Attach(gv, s.NIC(), s.Shim(), ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Attach(gv, nic2, shim2, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	defer c2.Close()
	clk.RunUntil(t0.Add(time.Minute))
	a1, a2 := c1.Status().Configured, c2.Status().Configured
	if !a1.IsValid() || !a2.IsValid() || a1 == a2 {
		t.Fatalf("addresses %v and %v", a1, a2)
	}
	byNIC := map[tcpip.NICID]tcpip.Address{}
	for _, r := range gv.GetRouteTable() {
		if r.Destination == llSubnet {
			byNIC[r.NIC] = r.SourceHint
		}
	}
	if byNIC[s.NIC()] != tcpipAddr(a1) || byNIC[nic2] != tcpipAddr(a2) || len(byNIC) != 2 {
		t.Fatalf("169.254/16 routes by NIC %v, want %v on %d and %v on %d", byNIC, a1, s.NIC(), a2, nic2)
	}
	for nic, a := range map[tcpip.NICID]netip.Addr{s.NIC(): a1, nic2: a2} {
		r, err := gv.FindRoute(0, tcpipAddr(a), tcpipAddr(ip("169.254.9.9")), ipv4.ProtocolNumber, false)
		if err != nil {
			t.Fatalf("route from %v: %v", a, err)
		}
		if r.NICID() != nic {
			t.Errorf("from %v the route leaves through NIC %d, want %d", a, r.NICID(), nic)
		}
		r.Release()
	}
	ep2.Close()
}

// TestR28_LinkLocalSourceNeverToARouter: a packet from our link-local
// address to a destination outside 169.254/16 that the route table sends
// through a gateway goes straight to the destination's MAC after ARP, never
// to the gateway (RFC 3927 §2.6.2: "MUST ARP for the destination address
// and then send its datagram ... directly to its destination on the same
// physical link. The host MUST NOT send the packet to any router").
func TestR28_LinkLocalSourceNeverToARouter(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	dst := h.addHost(hostCfg{noAutoIP: true})
	gw := h.addHost(hostCfg{noAutoIP: true})
	if err := dst.s.AddAddress(netip.MustParsePrefix("192.0.2.7/24")); err != nil {
		t.Fatal(err)
	}
	dst.s.GVisor().AddRoute(tcpip.Route{Destination: llSubnet, NIC: dst.s.NIC()}) // it can answer a link-local host
	gwAddr := netip.MustParsePrefix("169.254.250.1/16")
	if err := gw.s.AddAddress(gwAddr); err != nil {
		t.Fatal(err)
	}
	h.runUntilBound(time.Minute, a)
	x := a.bound()
	a.s.GVisor().AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpipAddr(gwAddr.Addr()), NIC: a.s.NIC()})

	// The destination listens on UDP 9.
	var wq waiter.Queue
	rx, terr := dst.s.GVisor().NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	defer rx.Close()
	if terr := rx.Bind(tcpip.FullAddress{Port: 9}); terr != nil {
		t.Fatal(terr)
	}
	tx, terr := a.s.GVisor().NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &waiter.Queue{})
	if terr != nil {
		t.Fatal(terr)
	}
	defer tx.Close()
	if terr := tx.Bind(tcpip.FullAddress{Addr: tcpipAddr(x)}); terr != nil {
		t.Fatal(terr)
	}
	mark := len(h.trace)
	for i := range 3 {
		var r payload = []byte{byte(i), 'h', 'i'}
		if _, terr := tx.Write(&r, tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: tcpipAddr(ip("192.0.2.7")), Port: 9}}); terr != nil {
			t.Fatalf("write %d: %v", i, terr)
		}
		h.runFor(time.Second)
	}
	var toGW, toDst int
	for _, f := range h.trace[mark:] {
		if f.From != a.idx || len(f.B) < header.EthernetMinimumSize+header.IPv4MinimumSize ||
			header.Ethernet(f.B).Type() != header.IPv4ProtocolNumber {
			continue
		}
		ipv4h := header.IPv4(f.B[header.EthernetMinimumSize:])
		if !autoip.LinkLocalPrefix.Contains(netip.AddrFrom4(ipv4h.SourceAddress().As4())) {
			continue
		}
		switch header.Ethernet(f.B).DestinationAddress() {
		case tcpip.LinkAddress(gw.mac[:]):
			toGW++
		case tcpip.LinkAddress(dst.mac[:]):
			toDst++
		}
	}
	if toGW != 0 || toDst != 3 {
		t.Fatalf("link-local-sourced packets: %d to the gateway's MAC, %d to the destination's; want 0 and 3\n%s", toGW, toDst, h.dump(mark))
	}
	if got := rx.Stats().(*tcpip.TransportEndpointStats).PacketsReceived.Value(); got != 3 {
		t.Errorf("destination received %d datagrams, want 3", got)
	}
	if st := a.status(); st.Shim.Redirected != 3 || st.DirectDropped != 0 {
		t.Errorf("redirected %d, dropped %d", st.Shim.Redirected, st.DirectDropped)
	}
}

// payload is a tcpip.Payloader over a byte slice.
type payload []byte

func (p *payload) Read(b []byte) (int, error) {
	n := copy(b, *p)
	*p = (*p)[n:]
	if n == 0 {
		return 0, errEOF
	}
	return n, nil
}

func (p *payload) Len() int { return len(*p) }

var errEOF = errors.New("EOF")

var _ = gvstack.NICInfo{}

func macBytes(m acd.MAC) []byte { return m[:] }

// TestApplicationLinkLocalRouteSurvives: an on-link 169.254/16 route the
// application added before Attach is its own: hint changes and Close leave
// it, and the NIC never lacks a 169.254/16 route while the client runs.
func TestApplicationLinkLocalRouteSurvives(t *testing.T) {
	h := newHub(t)
	app := tcpip.Route{Destination: llSubnet, NIC: 1}
	a := h.addHost(hostCfg{beforeStart: func(s *Stack) { s.GVisor().AddRoute(app) }})
	gaps := 0
	h.check = func() {
		if len(a.llRoutes()) == 0 {
			gaps++
		}
	}
	h.runUntilBound(time.Minute)
	a.client().SetLink(false)
	a.client().SetLink(true)
	h.runUntilBound(time.Minute)
	h.check = nil
	if gaps != 0 {
		t.Errorf("%d steps without a 169.254/16 route", gaps)
	}
	a.client().Close()
	if rs := a.llRoutes(); len(rs) != 1 || !sameRoute(rs[0], app) {
		t.Fatalf("after Close: %v, want the application's %v", rs, app)
	}
}
