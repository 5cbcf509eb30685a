package stack

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// The harness puts several complete netstack hosts (New on a channel
// endpoint) on one simulated Ethernet segment: the public one, package
// sim/segment, ideal unless a test asks for echoes. One goroutine, the
// test's, does everything: the segment takes every frame a host writes,
// records it and injects a copy into the other hosts; the shared DetClock
// runs timers on the same goroutine. Nothing sleeps and nothing reads the
// real clock, so a run is a pure function of its seeds.

// TestMain turns on gVisor's reference leak checker: every PacketBuffer and
// buffer chunk the tests (and the package) create must be released by the
// time the tests end, or the binary panics (issue requirement 8).
//
// Benchmarks run without it (-test.bench given, -test.run '^$'): the
// checker registers every object, about a sixth of a frame's cost.
func TestMain(m *testing.M) {
	flag.Parse()
	if benchOnly() {
		os.Exit(m.Run())
	}
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

// benchOnly reports whether the binary runs benchmarks and no tests.
func benchOnly() bool {
	b, r := flag.Lookup("test.bench"), flag.Lookup("test.run")
	return b != nil && b.Value.String() != "" && r != nil && r.Value.String() == "^$"
}

// t0 is where every DetClock in these tests starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// peerMAC is the raw peer: a host that is not a netstack, only frames the
// test writes by hand.
var peerMAC = acd.MAC{0x02, 0x99, 0x00, 0x00, 0x00, 0x01}

// hostMAC is the MAC of the i-th host of a hub.
func hostMAC(i int) acd.MAC { return acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, byte(i + 1)} }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcpipAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFrom4(a.As4()) }

// frameRec is one frame on the wire.
type frameRec struct {
	At   time.Duration // since t0
	From int           // host index, or -1 for the raw peer
	To   int           // for peer frames: the host it was injected into (-1: all)
	B    []byte
}

// arp decodes the frame as ARP; ok is false for anything else.
func (f frameRec) arp() (acd.Frame, bool) {
	af, err := acd.DecodeFrame(f.B)
	return af, err == nil
}

func (f frameRec) String() string {
	who := "peer"
	if f.From >= 0 {
		who = fmt.Sprintf("h%d", f.From)
	}
	if af, ok := f.arp(); ok {
		return fmt.Sprintf("%v %s %v>%v %v(%v) %v/%v -> %v/%v", f.At, who, af.Src, af.Dst, af.Kind(), af.Op,
			af.SenderHW, af.SenderIP, af.TargetHW, af.TargetIP)
	}
	return fmt.Sprintf("%v %s %d bytes ethertype %#04x", f.At, who, len(f.B), binary.BigEndian.Uint16(f.B[12:14]))
}

// hub is the test's view of the segment.
type hub struct {
	t     testing.TB
	clk   *DetClock
	seg   *segment.Segment
	peer  *segment.Port // the raw peer's port
	hosts []*host
	trace []frameRec
	// echo delivers every host's frames back to itself too (a looping
	// bridge or hairpin, R09); set it before running.
	echo    bool
	echoSet bool
	// check, if set, runs after every step: every frame put on the
	// segment and every timer run.
	check func()
	// timers counts the timers run, to stop a runaway instead of hanging.
	timers int
}

// maxTimers bounds the timers one hub may run.
const maxTimers = 200000

func newHub(t testing.TB) *hub {
	h := &hub{t: t, clk: NewDetClock(t0)}
	seg, err := segment.New(h.clk, segment.Config{OnTransmit: h.record})
	if err != nil {
		t.Fatal(err)
	}
	h.seg = seg
	if h.peer, err = seg.AttachFunc(tcpip.LinkAddress(peerMAC[:]), func([]byte) {}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return h
}

// record keeps every frame put on the segment (segment.Config.OnTransmit)
// and runs the check.
func (h *hub) record(f segment.Frame) {
	r := frameRec{At: f.At, From: -1, To: -1, B: slices.Clone(f.Bytes)}
	switch {
	case f.To != nil:
		r.To = f.To.Index()
	case !f.From.IsFunc():
		r.From = f.From.Index()
	}
	h.trace = append(h.trace, r)
	h.step()
}

// now returns the virtual time since t0.
func (h *hub) now() time.Duration { return h.clk.Now().Sub(t0) }

// hostCfg says how to build one host.
type hostCfg struct {
	// noAutoIP builds the host without a Client.
	noAutoIP bool
	// cfg is the client configuration (OnEvent is chained, not replaced).
	cfg ClientConfig
	// beforeStart, if set, runs on the stack before the client is attached
	// and started (for state that must exist before Start, such as a
	// routable address).
	beforeStart func(*Stack)
	// wrap, if set, wraps the channel endpoint (to make writes fail, say).
	wrap func(gvstack.LinkEndpoint) gvstack.LinkEndpoint
	// seed perturbs the netstack seeds.
	seed int64
	// fastARP turns the Shim's ARP fast path on (Options.ARPFastPath).
	fastARP bool
}

// host is one netstack on the hub.
type host struct {
	h      *hub
	idx    int
	mac    acd.MAC
	ep     *channel.Endpoint
	port   *segment.Port
	s      *Stack
	closed bool

	mu     sync.Mutex
	events []autoip.Event
}

// addHost builds host number len(h.hosts) and puts it on the segment.
func (h *hub) addHost(hc hostCfg) *host {
	h.t.Helper()
	i := len(h.hosts)
	mac := hostMAC(i)
	ho := &host{h: h, idx: i, mac: mac, ep: channel.New(256, 1514, tcpip.LinkAddress(mac[:]))}
	port, err := h.seg.Attach(ho.ep, segment.PortConfig{})
	if err != nil {
		h.t.Fatalf("host %d: attach: %v", i, err)
	}
	ho.port = port
	// The stack is built on the endpoint itself, not port.Link(): these
	// tests drive the client's link state by hand.
	var link gvstack.LinkEndpoint = ho.ep
	if hc.wrap != nil {
		link = hc.wrap(link)
	}
	cfg := hc.cfg
	user := cfg.OnEvent
	cfg.OnEvent = func(ev autoip.Event) {
		ho.mu.Lock()
		ho.events = append(ho.events, ev)
		ho.mu.Unlock()
		if user != nil {
			user(ev)
		}
	}
	opts := Options{
		Link:        link,
		NICName:     fmt.Sprintf("h%d", i),
		Clock:       h.clk,
		NoTCP:       true,
		RandSource:  rand.NewSource(1000*int64(i+1) + hc.seed),
		SecureRNG:   rand.New(rand.NewSource(2000*int64(i+1) + hc.seed)),
		ARPFastPath: hc.fastARP,
	}
	if !hc.noAutoIP && hc.beforeStart == nil {
		opts.AutoIP = &cfg
	}
	s, err := New(opts)
	if err != nil {
		h.t.Fatalf("host %d: New: %v", i, err)
	}
	ho.s = s
	h.hosts = append(h.hosts, ho)
	h.t.Cleanup(ho.close)
	if hc.beforeStart != nil {
		hc.beforeStart(s)
		if !hc.noAutoIP {
			c, err := Attach(s.GVisor(), s.NIC(), s.Shim(), cfg)
			if err != nil {
				h.t.Fatalf("host %d: Attach: %v", i, err)
			}
			s.client = c // what New does; AddAddress/RemoveAddress then tell the client
		}
	}
	return ho
}

// close closes the host's stack (idempotent) and drops what it queued.
func (ho *host) close() {
	if ho.closed {
		return
	}
	ho.closed = true
	if err := ho.s.Close(); err != nil {
		ho.h.t.Errorf("h%d: Close: %v", ho.idx, err)
	}
	ho.port.Unplug()
	ho.ep.Close() // Destroy closes it too; Close is idempotent and drains
}

// pump puts every frame the hosts wrote on the segment, and what that
// makes them write, without running timers. It reports whether it moved
// any.
func (h *hub) pump() bool {
	if h.echo && !h.echoSet {
		h.echoSet = true
		if err := h.seg.SetLinkModel(segment.LinkModel{Echo: 1, EchoDelay: time.Nanosecond}); err != nil {
			h.t.Fatal(err)
		}
	}
	return h.seg.Pump()
}

func (h *hub) step() {
	if h.check != nil {
		h.check()
	}
}

// peerSend has the raw peer put frame on the wire of host ho only (or,
// with ho nil, on the segment for every host) and records it.
func (h *hub) peerSend(ho *host, frame []byte) {
	if ho == nil {
		if err := h.seg.Send(h.peer, frame); err != nil {
			h.t.Fatal(err)
		}
		h.pump()
		return
	}
	h.seg.DeliverTo(ho.port, frame)
}

// peerARP builds an ARP frame from the peer.
func peerARP(dst acd.MAC, p acd.Packet) []byte {
	return acd.Frame{Dst: dst, Src: p.SenderHW, Packet: p}.AppendBinary(nil)
}

// runUntil runs the segment until virtual time limit, or until done (if not
// nil) returns true after a step; it returns whether done was reached.
func (h *hub) runUntil(limit time.Time, done func() bool) bool {
	h.t.Helper()
	for {
		if done != nil && done() {
			return true
		}
		progress := h.pump()
		for h.clk.RunOneDue() {
			progress = true
			h.step()
			if h.timers++; h.timers > maxTimers {
				h.t.Fatalf("more than %d timers ran: something re-arms a timer that does nothing (at %v)", maxTimers, h.now())
			}
		}
		if progress {
			continue
		}
		next, ok := h.seg.Next()
		if !ok || t0.Add(next).After(limit) {
			break
		}
		h.seg.AdvanceTo(next)
	}
	h.seg.AdvanceTo(limit.Sub(t0))
	return done != nil && done()
}

// runFor runs the segment for d of virtual time.
func (h *hub) runFor(d time.Duration) { h.runUntil(h.clk.Now().Add(d), nil) }

// runUntilBound runs until every given host (all with a client if none
// given) is bound and done announcing, failing the test after limit.
func (h *hub) runUntilBound(limit time.Duration, hosts ...*host) {
	h.t.Helper()
	if len(hosts) == 0 {
		for _, ho := range h.hosts {
			if ho.s.Client() != nil && !ho.closed {
				hosts = append(hosts, ho)
			}
		}
	}
	ok := h.runUntil(h.clk.Now().Add(limit), func() bool {
		for _, ho := range hosts {
			if ho.status().State != autoip.StateBound {
				return false
			}
		}
		return true
	})
	h.pump() // what the last step queued is on the wire before the caller goes on
	if !ok {
		for _, ho := range hosts {
			h.t.Logf("h%d: %+v events %v", ho.idx, ho.status().Status.State, ho.eventStrings())
		}
		h.t.Fatalf("hosts not bound after %v of virtual time\n%s", limit, h.dump(0))
	}
}

// dump formats the trace from index i, for failure messages.
func (h *hub) dump(i int) string {
	var b strings.Builder
	for _, f := range h.trace[i:] {
		fmt.Fprintf(&b, "  %v\n", f)
	}
	return b.String()
}

// hash is a digest of the whole trace: times, senders and bytes.
func (h *hub) hash() [32]byte {
	d := sha256.New()
	for _, f := range h.trace {
		_ = binary.Write(d, binary.BigEndian, [3]int64{int64(f.At), int64(f.From), int64(f.To)})
		_ = binary.Write(d, binary.BigEndian, uint32(len(f.B)))
		d.Write(f.B)
	}
	return [32]byte(d.Sum(nil))
}

// framesFrom returns the trace entries from index i on sent by host idx
// (-1: the peer).
func (h *hub) framesFrom(i, idx int) []frameRec {
	var out []frameRec
	for _, f := range h.trace[i:] {
		if f.From == idx {
			out = append(out, f)
		}
	}
	return out
}

// arpFrom returns the decoded ARP frames from index i on sent by host idx
// that satisfy keep (all if nil).
func (h *hub) arpFrom(i, idx int, keep func(acd.Frame) bool) []acd.Frame {
	var out []acd.Frame
	for _, f := range h.framesFrom(i, idx) {
		if af, ok := f.arp(); ok && (keep == nil || keep(af)) {
			out = append(out, af)
		}
	}
	return out
}

// client returns the host's client, failing if it has none.
func (ho *host) client() *Client {
	c := ho.s.Client()
	if c == nil {
		ho.h.t.Fatalf("h%d has no client", ho.idx)
	}
	return c
}

func (ho *host) status() Status { return ho.client().Status() }

// bound returns the address the client has configured, if any.
func (ho *host) bound() netip.Addr { return ho.status().Configured }

// addrs returns the NIC's IPv4 addresses (without the broadcast address
// netstack adds itself), sorted: AllAddresses is in map order.
func (ho *host) addrs() []netip.Prefix {
	var out []netip.Prefix
	for _, pa := range ho.s.GVisor().AllAddresses()[ho.s.NIC()] {
		if pa.Protocol != ipv4.ProtocolNumber || pa.AddressWithPrefix.Address == header.IPv4Broadcast {
			continue
		}
		a := netip.AddrFrom4(pa.AddressWithPrefix.Address.As4())
		out = append(out, netip.PrefixFrom(a, pa.AddressWithPrefix.PrefixLen))
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// has reports whether a is on the host's NIC.
func (ho *host) has(a netip.Addr) bool {
	for _, p := range ho.addrs() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// llRoutes returns the host's 169.254.0.0/16 routes.
func (ho *host) llRoutes() []tcpip.Route {
	var out []tcpip.Route
	for _, r := range ho.s.GVisor().GetRouteTable() {
		if r.Destination == llSubnet {
			out = append(out, r)
		}
	}
	return out
}

// source returns the source address netstack picks for dst, as a socket
// that is not bound would get it.
func (ho *host) source(dst netip.Addr) (netip.Addr, error) {
	r, err := ho.s.GVisor().FindRoute(ho.s.NIC(), tcpip.Address{}, tcpipAddr(dst), ipv4.ProtocolNumber, false)
	if err != nil {
		return netip.Addr{}, tcpipErr("find route", err)
	}
	defer r.Release()
	return netip.AddrFrom4(r.LocalAddress().As4()), nil
}

// mustSource is source that fails the test on error.
func (ho *host) mustSource(t testing.TB, dst netip.Addr) netip.Addr {
	t.Helper()
	a, err := ho.source(dst)
	if err != nil {
		t.Fatalf("h%d: route to %v: %v", ho.idx, dst, err)
	}
	return a
}

// eventsCopy returns the events so far.
func (ho *host) eventsCopy() []autoip.Event {
	ho.mu.Lock()
	defer ho.mu.Unlock()
	return slices.Clone(ho.events)
}

// eventStrings formats the events compactly: "PROBE 169.254.1.2", ...
func (ho *host) eventStrings() []string {
	var out []string
	for _, ev := range ho.eventsCopy() {
		s := ev.Kind.String()
		if ev.Addr.IsValid() {
			s += " " + ev.Addr.String()
		}
		out = append(out, s)
	}
	return out
}

// eventsOf returns the events of the given kind.
func (ho *host) eventsOf(k autoip.EventKind) []autoip.Event {
	var out []autoip.Event
	for _, ev := range ho.eventsCopy() {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// neighbor returns netstack's neighbour entry for a, if any.
func (ho *host) neighbor(a netip.Addr) (gvstack.NeighborEntry, bool) {
	ns, err := ho.s.GVisor().Neighbors(ho.s.NIC(), ipv4.ProtocolNumber)
	if err != nil {
		ho.h.t.Fatalf("h%d: Neighbors: %v", ho.idx, err)
	}
	for _, n := range ns {
		if n.Addr == tcpipAddr(a) {
			return n, true
		}
	}
	return gvstack.NeighborEntry{}, false
}

// refusingLink is a link endpoint whose writes fail with ErrClosedForSend
// while refuse is set, like a TAP whose carrier is down.
type refusingLink struct {
	nested.Endpoint
	refuse  atomic.Bool
	refused atomic.Uint64
}

func newRefusingLink(lower gvstack.LinkEndpoint) *refusingLink {
	l := &refusingLink{}
	l.Endpoint.Init(lower, l)
	return l
}

func (l *refusingLink) WritePackets(pkts gvstack.PacketBufferList) (int, tcpip.Error) {
	if l.refuse.Load() {
		l.refused.Add(uint64(pkts.Len()))
		return 0, &tcpip.ErrClosedForSend{}
	}
	return l.Endpoint.WritePackets(pkts)
}

// isAnnouncementOf reports whether f is an announcement of a by hw.
func isAnnouncementOf(f acd.Frame, hw acd.MAC, a netip.Addr) bool {
	return f.IsAnnouncement() && f.SenderIP == a && f.SenderHW == hw
}

// wantErrIs fails unless errors.Is(err, target).
func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one wrapping %v", err, target)
	}
}

// TestLeakCheckIsOn guards TestMain: the packet leak check must be armed.
func TestLeakCheckIsOn(t *testing.T) {
	if refs.GetLeakMode() != refs.LeaksPanic {
		t.Fatalf("leak mode %v, want %v", refs.GetLeakMode(), refs.LeaksPanic)
	}
}

// addStatic adds p through the host's client (RFC 5227 probing first) and
// runs the segment until it is configured.
func (ho *host) addStatic(p netip.Prefix) {
	ho.h.t.Helper()
	if err := ho.s.AddAddress(p); err != nil {
		ho.h.t.Fatal(err)
	}
	ok := ho.h.runUntil(ho.h.clk.Now().Add(time.Minute), func() bool { return ho.has(p.Addr()) })
	if !ok {
		ho.h.t.Fatalf("h%d: %v not configured within a minute: %+v", ho.idx, p, ho.client().Addresses())
	}
}
