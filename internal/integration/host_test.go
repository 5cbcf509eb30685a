package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// fastTiming keeps every claim under a second. DEFEND_INTERVAL stays long
// enough for "a second conflict within it" to be unambiguous.
func fastTiming() acd.Timing {
	return acd.Timing{
		ProbeWait: 20 * time.Millisecond, ProbeMin: 20 * time.Millisecond, ProbeMax: 40 * time.Millisecond,
		AnnounceWait: 100 * time.Millisecond, AnnounceInterval: 100 * time.Millisecond,
		DefendInterval: 5 * time.Second, RateLimitInterval: 2 * time.Second,
	}
}

var (
	ourMAC  = acd.MAC{0x02, 0x00, 0x5e, 0xa1, 0x00, 0x01}
	peerMAC = acd.MAC{0x02, 0x00, 0x5e, 0xbe, 0xef, 0x02}
	kernLL  = netip.MustParseAddr("169.254.77.2")
)

// host is a netstack running the AutoIP client on a TAP whose kernel side is
// in ns.
type host struct {
	t    testing.TB
	ns   *netns.NS
	name string
	link *tap.Link
	st   *stack.Stack
	wire *wire

	clientPtr *stack.Client
	cfg       stack.ClientConfig

	mu     sync.Mutex
	events []autoip.Event
	evc    chan struct{}
	// onEvent, if set, is called with each event after it is recorded, on
	// the goroutine that delivered it (the flood benchmark's gate).
	onEvent func(autoip.Event)
}

type hostOpts struct {
	create  bool               // create the TAP (else it must exist)
	cfg     stack.ClientConfig // Engine.Timing defaults to fastTiming
	static  *netip.Prefix      // routable address added before the client starts
	noStart bool
	fastARP bool // stack.Options.ARPFastPath
}

func tapName(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newHost builds the host in a fresh namespace (or ns, if given) and brings
// the kernel side of its TAP up.
func newHost(t testing.TB, ns *netns.NS, name string, o hostOpts) *host {
	t.Helper()
	netns.RequireRoot(t)
	if ns == nil {
		ns = netns.New(t, "aipit")
		ns.DisableIPv6(t)
	}
	if name == "" {
		name = tapName("aipt")
	}
	h := &host{t: t, ns: ns, name: name, evc: make(chan struct{}, 1)}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("tap", name)
	}
	err := ns.Do(func() (err error) {
		h.link, err = tap.NewLink(tap.LinkConfig{
			Device:        tap.Config{Name: name, Create: o.create},
			MAC:           tcpip.LinkAddress(ourMAC[:]),
			CheckInterval: 100 * time.Millisecond,
			Logger:        logger,
		})
		return err
	})
	if err != nil {
		t.Fatalf("tap link %s: %v", name, err)
	}
	t.Cleanup(func() { h.link.Close() })
	if o.create {
		ns.IP(t, "link", "set", name, "up")
	}
	cfg := o.cfg
	if cfg.Engine.Timing == (acd.Timing{}) {
		cfg.Engine.Timing = fastTiming()
	}
	cfg.Logger = logger
	cfg.OnEvent = h.record
	h.st, err = stack.New(stack.Options{Link: h.link.Endpoint(), NICName: name, ARPFastPath: o.fastARP})
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { h.st.Close() })
	if o.static != nil {
		if err := h.st.AddAddress(*o.static); err != nil {
			t.Fatal(err)
		}
	}
	h.cfg = cfg
	if !o.noStart {
		h.start()
	}
	return h
}

// start attaches the client, which starts it; the TAP's link state reaches
// it through the link endpoint.
func (h *host) start() {
	h.t.Helper()
	c, err := stack.Attach(h.st.GVisor(), h.st.NIC(), h.st.Shim(), h.cfg)
	if err != nil {
		h.t.Fatalf("attach: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	h.clientPtr = c
}

func (h *host) client() *stack.Client { return h.clientPtr }

func (h *host) record(ev autoip.Event) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	hook := h.onEvent
	h.mu.Unlock()
	select {
	case h.evc <- struct{}{}:
	default:
	}
	if hook != nil {
		hook(ev)
	}
}

// setOnEvent installs (nil: removes) the event hook.
func (h *host) setOnEvent(f func(autoip.Event)) {
	h.mu.Lock()
	h.onEvent = f
	h.mu.Unlock()
}

// eventsSince returns the events from index i on.
func (h *host) eventsSince(i int) []autoip.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i > len(h.events) {
		return nil
	}
	return append([]autoip.Event(nil), h.events[i:]...)
}

func (h *host) eventCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.events)
}

// waitEvent waits for an event of kind at index >= from and returns it and
// its index.
func (h *host) waitEvent(kind autoip.EventKind, from int, timeout time.Duration) (autoip.Event, int) {
	h.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for i, ev := range h.eventsSince(from) {
			if ev.Kind == kind {
				return ev, from + i
			}
		}
		select {
		case <-h.evc:
		case <-deadline.C:
			h.t.Fatalf("no %v event within %v; events: %v", kind, timeout, h.eventsSince(0))
		}
	}
}

// waitBound waits for the client to hold an address.
func (h *host) waitBound(timeout time.Duration) netip.Addr {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a, err := h.client().WaitBound(ctx)
	if err != nil {
		h.t.Fatalf("not bound: %v; status %+v; events %v", err, h.client().Status(), h.eventsSince(0))
	}
	return a
}

// onNIC reports whether the netstack NIC holds a.
func (h *host) onNIC(a netip.Addr) bool {
	want := tcpip.AddrFrom4(a.As4())
	for _, pa := range h.st.GVisor().AllAddresses()[h.st.NIC()] {
		if pa.AddressWithPrefix.Address == want {
			return true
		}
	}
	return false
}

// kernelSide gives the kernel side of the TAP an address and returns the
// wire on it.
func (h *host) kernelSide(addrs ...string) *wire {
	h.t.Helper()
	for _, a := range addrs {
		h.ns.IP(h.t, "addr", "add", a, "dev", h.name)
	}
	if h.wire == nil {
		h.wire = openWire(h.t, h.ns, h.name)
	}
	return h.wire
}
