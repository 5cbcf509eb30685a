package stack

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// userStack builds a gVisor stack the way an embedding application would,
// destroyed at the end of the test.
func userStack(t *testing.T, withARP bool) *gvstack.Stack {
	t.Helper()
	nps := []gvstack.NetworkProtocolFactory{ipv4.NewProtocol}
	if withARP {
		nps = append(nps, arp.NewProtocol)
	}
	gv := gvstack.New(gvstack.Options{NetworkProtocols: nps, Clock: NewDetClock(t0)})
	t.Cleanup(gv.Destroy)
	return gv
}

// ethShim makes an Ethernet NIC link: Shim -> ethernet -> channel.
func ethShim(mac acd.MAC) *Shim {
	s, err := NewShim(channel.New(16, 1514, tcpip.LinkAddress(mac[:])))
	if err != nil {
		panic(err)
	}
	return s
}

func mustCreateNIC(t *testing.T, gv *gvstack.Stack, id tcpip.NICID, ep gvstack.LinkEndpoint) {
	t.Helper()
	if err := gv.CreateNIC(id, ep); err != nil {
		t.Fatalf("CreateNIC(%d): %v", id, err)
	}
}

func TestAttachRefuses(t *testing.T) {
	t.Run("L3 link under a shim", func(t *testing.T) {
		if _, err := NewShim(channel.New(16, 1500, "")); err == nil || !strings.Contains(err.Error(), "MAC") {
			t.Errorf("NewShim of a link without a MAC: %v", err)
		}
	})
	t.Run("link already under an ethernet layer", func(t *testing.T) {
		if _, err := NewShim(ethernet.New(channel.New(16, 1514, "\x02\x00\x00\x00\x00\x01"))); err == nil || !strings.Contains(err.Error(), "ethernet") {
			t.Errorf("NewShim of an ethernet.Endpoint: %v", err)
		}
		if _, err := NewShim(nil); err == nil {
			t.Error("NewShim(nil) succeeded")
		}
	})
	t.Run("L3 tunnel NIC without a shim", func(t *testing.T) {
		gv := userStack(t, true)
		mustCreateNIC(t, gv, 1, channel.New(16, 1420, ""))
		shim := ethShim(hostMAC(0))
		mustCreateNIC(t, gv, 2, shim)
		_, err := Attach(gv, 1, shim, ClientConfig{})
		wantErrIs(t, err, ErrNotEthernet)
	})
	t.Run("no ARP", func(t *testing.T) {
		gv := userStack(t, false)
		shim := ethShim(hostMAC(0))
		mustCreateNIC(t, gv, 1, shim)
		_, err := Attach(gv, 1, shim, ClientConfig{})
		wantErrIs(t, err, ErrNoARP)
	})
	t.Run("no such NIC", func(t *testing.T) {
		gv := userStack(t, true)
		shim := ethShim(hostMAC(0))
		mustCreateNIC(t, gv, 1, shim)
		_, err := Attach(gv, 7, shim, ClientConfig{})
		wantErrIs(t, err, ErrNoNIC)
	})
	t.Run("shim of another NIC", func(t *testing.T) {
		gv := userStack(t, true)
		s1, s2 := ethShim(hostMAC(0)), ethShim(hostMAC(1))
		mustCreateNIC(t, gv, 1, s1)
		mustCreateNIC(t, gv, 2, s2)
		if _, err := Attach(gv, 1, s2, ClientConfig{}); err == nil {
			t.Fatal("Attach accepted NIC 1 with NIC 2's shim")
		}
		if _, err := Attach(gv, 2, s2, ClientConfig{}); err != nil {
			t.Fatalf("Attach of the right pair: %v", err)
		}
	})
	t.Run("nil arguments", func(t *testing.T) {
		gv := userStack(t, true)
		shim := ethShim(hostMAC(0))
		mustCreateNIC(t, gv, 1, shim)
		if _, err := Attach(nil, 1, shim, ClientConfig{}); err == nil {
			t.Error("Attach(nil stack) succeeded")
		}
		if _, err := Attach(gv, 1, nil, ClientConfig{}); err == nil {
			t.Error("Attach(nil shim) succeeded")
		}
	})
	t.Run("invalid engine config", func(t *testing.T) {
		gv := userStack(t, true)
		shim := ethShim(hostMAC(0))
		mustCreateNIC(t, gv, 1, shim)
		_, err := Attach(gv, 1, shim, ClientConfig{Engine: autoip.Config{Initial: ip("169.254.0.1")}})
		wantErrIs(t, err, autoip.ErrInvalidConfig)
	})
	t.Run("New without a MAC", func(t *testing.T) {
		if _, err := New(Options{Link: channel.New(16, 1500, ""), AutoIP: &ClientConfig{}}); err == nil {
			t.Error("New accepted a link without a MAC")
		}
		if _, err := New(Options{}); err == nil {
			t.Error("New accepted a nil link")
		}
	})
}

// TestAttachUsesNICMAC: a zero Engine.HW means the NIC's MAC, so the seed
// (and the first candidate) follow the NIC (R02).
func TestAttachUsesNICMAC(t *testing.T) {
	gv := userStack(t, true)
	mac := acd.MAC{0x02, 0x12, 0x34, 0x56, 0x78, 0x9a}
	shim := ethShim(mac)
	mustCreateNIC(t, gv, 3, shim)
	c, err := Attach(gv, 3, shim, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.eng.Seed(), autoip.SeedFromMAC(mac); got != want {
		t.Errorf("seed %#x, want SeedFromMAC(%v) = %#x", got, mac, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Reannounce(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reannounce after Close: %v, want ErrClosed", err)
	}
}

func TestWaitBound(t *testing.T) {
	t.Run("returns the address once bound", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{})
		type result struct {
			a   netip.Addr
			err error
		}
		res := make(chan result, 1)
		go func() {
			got, err := a.client().WaitBound(context.Background())
			res <- result{got, err}
		}()
		h.runUntilBound(time.Minute)
		r := <-res
		if r.err != nil || r.a != a.bound() || !r.a.IsValid() {
			t.Fatalf("WaitBound = %v, %v; want %v", r.a, r.err, a.bound())
		}
		// Bound already: returns at once.
		if got, err := a.client().WaitBound(context.Background()); err != nil || got != r.a {
			t.Errorf("second WaitBound = %v, %v", got, err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := a.client().WaitBound(ctx)
			errc <- err
		}()
		h.runFor(time.Second) // probing: not bound yet
		cancel()
		wantErrIs(t, <-errc, context.Canceled)
		past, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel2()
		_, err := a.client().WaitBound(past)
		wantErrIs(t, err, context.DeadlineExceeded)
	})
	t.Run("close", func(t *testing.T) {
		h := newHub(t)
		a := h.addHost(hostCfg{})
		errc := make(chan error, 1)
		go func() {
			_, err := a.client().WaitBound(context.Background())
			errc <- err
		}()
		h.runFor(time.Second)
		if err := a.client().Close(); err != nil {
			t.Fatal(err)
		}
		wantErrIs(t, <-errc, ErrClosed)
		_, err := a.client().WaitBound(context.Background())
		wantErrIs(t, err, ErrClosed)
		if err := a.client().Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := a.client().Reannounce(); err == nil {
			t.Error("Reannounce after Close succeeded")
		}
	})
}

// TestR19_LinkDownAndUp: link down withdraws the address at once and keeps
// the host silent; link up claims the same address again.
func TestR19_LinkDownAndUp(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{})
	h.runUntilBound(time.Minute)
	x := a.bound()
	a.client().SetLink(false)
	if rs := a.llRoutes(); a.has(x) || len(rs) != 1 || rs[0].SourceHint != (tcpip.Address{}) {
		t.Fatalf("after link down: NIC %v, 169.254/16 routes %v (want ours, without %v as source)", a.addrs(), rs, x)
	}
	ub := a.eventsOf(autoip.EventUnbind)
	if len(ub) != 1 || ub[0].Addr != x || ub[0].Reason != "link down" {
		t.Errorf("UNBIND events %+v, want one for %v, reason link down", ub, x)
	}
	if st := a.status(); st.State != autoip.StateLinkDown || st.Configured.IsValid() {
		t.Errorf("state %v, configured %v", st.State, st.Configured)
	}
	mark := len(h.trace)
	h.runFor(10 * time.Minute)
	if out := h.framesFrom(mark, a.idx); len(out) != 0 {
		t.Errorf("frames while the link is down:\n%s", h.dump(mark))
	}
	a.client().SetLink(true)
	h.runUntilBound(time.Minute)
	if a.bound() != x || !a.has(x) {
		t.Errorf("after link up bound %v (NIC %v), want %v again", a.bound(), a.addrs(), x)
	}
	if probes := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return f.IsProbe() }); len(probes) != 3 || probes[0].TargetIP != x {
		t.Errorf("probes after link up %v, want 3 for %v", probes, x)
	}
}

// TestR10_RefusedProbesDoNotCount: probes the link refuses are counted in
// Status().NotSent, not in Stats.Sent, and sent again: nothing is claimed
// until PROBE_NUM probes really went out.
func TestR10_RefusedProbesDoNotCount(t *testing.T) {
	h := newHub(t)
	var link *refusingLink
	a := h.addHost(hostCfg{wrap: func(l gvstack.LinkEndpoint) gvstack.LinkEndpoint {
		link = newRefusingLink(l)
		link.refuse.Store(true)
		return link
	}})
	h.runFor(10 * time.Minute)
	st := a.status()
	if st.Configured.IsValid() || st.Stats.Binds != 0 || len(a.eventsOf(autoip.EventBind)) != 0 {
		t.Fatalf("claimed %v with every probe refused; status %+v", st.Configured, st)
	}
	if st.NotSent == 0 || st.Stats.Sent != 0 || st.NotSent != link.refused.Load() {
		t.Errorf("NotSent %d, Sent %d, link refused %d", st.NotSent, st.Stats.Sent, link.refused.Load())
	}
	if n := len(h.framesFrom(0, a.idx)); n != 0 {
		t.Errorf("%d frames got out of a refusing link", n)
	}
	// The link accepts again: three probes go out, then the claim.
	link.refuse.Store(false)
	mark := len(h.trace)
	h.runUntilBound(time.Minute)
	x := a.bound()
	if probes := h.arpFrom(mark, a.idx, func(f acd.Frame) bool { return f.IsProbe() && f.TargetIP == x }); len(probes) != 3 {
		t.Errorf("%d probes on the wire before the claim of %v, want 3:\n%s", len(probes), x, h.dump(mark))
	}
	if got := a.status().NotSent; got != st.NotSent {
		t.Errorf("NotSent %d after the link came back, want %d", got, st.NotSent)
	}
}

// memStore is a persist.Store in memory.
type memStore struct {
	mu    sync.Mutex
	state autoip.SavedState
	err   error
	saves int
}

func (m *memStore) Load() (autoip.SavedState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, m.err
}

func (m *memStore) Save(s autoip.SavedState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state, m.saves = s, m.saves+1
	return nil
}

// TestR04_StoreThroughClient: the client loads the stored state at Attach
// (the last address is tried first) and saves what the engine asks; a
// broken store is ignored.
func TestR04_StoreThroughClient(t *testing.T) {
	last := ip("169.254.44.44")
	t.Run("last address first", func(t *testing.T) {
		st := &memStore{state: autoip.SavedState{Addr: last}}
		h := newHub(t)
		a := h.addHost(hostCfg{cfg: ClientConfig{Store: st}})
		h.runUntilBound(time.Minute)
		if a.bound() != last {
			t.Errorf("bound %v, want the stored %v", a.bound(), last)
		}
		a.close()
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.saves == 0 || st.state.Addr != last {
			t.Errorf("%d saves, stored %+v", st.saves, st.state)
		}
	})
	t.Run("broken store", func(t *testing.T) {
		st := &memStore{state: autoip.SavedState{Addr: last}, err: errors.New("corrupt")}
		h := newHub(t)
		a := h.addHost(hostCfg{cfg: ClientConfig{Store: st}})
		h.runUntilBound(time.Minute)
		if first := autoip.Candidate(autoip.SeedFromMAC(a.mac), 0); a.bound() != first {
			t.Errorf("bound %v, want the first candidate %v (the store failed)", a.bound(), first)
		}
	})
}

// fakeLinkState is a LinkStateWatcher the test drives.
type fakeLinkState struct {
	mu sync.Mutex
	up bool
	f  func(bool)
}

func (l *fakeLinkState) WatchLinkState(f func(bool)) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f = f
	f(l.up)
	return func() { l.mu.Lock(); l.f = nil; l.mu.Unlock() }
}

func (l *fakeLinkState) set(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up = up
	if l.f != nil {
		l.f(up)
	}
}

// TestR19_LinkDownAtAttach: a link that reports itself down when the client
// attaches (a TAP that is down or not there yet) keeps the client silent
// until the link comes up; nothing is claimed without probes on the wire.
// Close stops the watching.
func TestR19_LinkDownAtAttach(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{noAutoIP: true})
	link := &fakeLinkState{}
	c, err := Attach(a.s.GVisor(), a.s.NIC(), a.s.Shim(), ClientConfig{LinkState: link})
	if err != nil {
		t.Fatal(err)
	}
	a.s.client = c
	h.runFor(10 * time.Minute)
	if out := h.framesFrom(0, a.idx); len(out) != 0 {
		t.Fatalf("frames sent while the link is down:\n%s", h.dump(0))
	}
	if st := c.Status(); st.State != autoip.StateLinkDown || st.Configured.IsValid() {
		t.Errorf("state %v configured %v, want link-down and nothing", st.State, st.Configured)
	}
	link.set(true)
	h.runUntilBound(time.Minute)
	if probes := h.arpFrom(0, a.idx, func(f acd.Frame) bool { return f.IsProbe() }); len(probes) != 3 {
		t.Errorf("%d probes before the claim, want 3", len(probes))
	}
	c.Close()
	link.mu.Lock()
	watching := link.f != nil
	link.mu.Unlock()
	if watching {
		t.Error("Close left the link watcher installed")
	}
}

func TestStackAddressErrors(t *testing.T) {
	h := newHub(t)
	a := h.addHost(hostCfg{noAutoIP: true})
	if err := a.s.AddAddress(netip.MustParsePrefix("fe80::1/64")); err == nil {
		t.Error("AddAddress accepted an IPv6 prefix")
	}
	if err := a.s.AddAddress(routable); err != nil {
		t.Fatal(err)
	}
	var se *Error
	if err := a.s.AddAddress(routable); !errors.As(err, &se) || se.Err == nil || se.Error() == "" {
		t.Errorf("adding %v twice: %v, want a *stack.Error", routable, err)
	}
	if err := a.s.RemoveAddress(netip.MustParsePrefix("10.9.9.9/24")); !errors.As(err, &se) {
		t.Errorf("removing an absent address: %v, want a *stack.Error", err)
	}
	if a.s.Client() != nil {
		t.Error("a stack without AutoIP has a client")
	}
}

// TestHostPrefixOnly: a subnet's network and broadcast addresses are not a
// host's, with a client (probed, then configured and defended, as an
// embedder saw) or without; /31 and /32 have neither and are accepted.
func TestHostPrefixOnly(t *testing.T) {
	h := newHub(t)
	plain := h.addHost(hostCfg{noAutoIP: true})
	auto := h.addHost(hostCfg{})
	for _, tc := range []struct {
		p    string
		want string // "" accepted
	}{
		{"10.0.0.0/24", "network address of 10.0.0.0/24"},
		{"10.0.0.255/24", "broadcast address of 10.0.0.0/24"},
		{"10.0.0.4/30", "network address of 10.0.0.4/30"},
		{"10.0.0.7/30", "broadcast address of 10.0.0.4/30"},
		{"10.1.0.0/16", "network address of 10.1.0.0/16"},
		{"10.0.0.6/30", ""},
		{"10.0.1.0/31", ""},
		{"10.0.1.1/31", ""},
		{"10.0.2.255/32", ""},
		{"10.0.3.0/23", ""}, // .0 of the upper /24, a host in the /23 (the /23's own .0 is 10.0.2.0)
	} {
		p := netip.MustParsePrefix(tc.p)
		for name, add := range map[string]func(netip.Prefix) error{
			"Stack.AddAddress without a client": plain.s.AddAddress,
			"Client.AddAddress":                 func(p netip.Prefix) error { return auto.client().AddAddress(p, SourceAlias) },
		} {
			err := add(p)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s(%v): %v, want it accepted", name, p, err)
			case tc.want != "" && (!errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s(%v): %v, want ErrBadAddress saying %q", name, p, err, tc.want)
			}
		}
	}
	if err := CheckHostPrefix(netip.MustParsePrefix("10.0.0.0/24")); !errors.Is(err, ErrBadAddress) {
		t.Errorf("CheckHostPrefix(10.0.0.0/24) = %v", err)
	}
}
