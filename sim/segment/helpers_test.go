package segment_test

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/stack"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func mac(i int) acd.MAC { return acd.MAC{0x02, 0x5e, 0, 0, byte(i >> 8), byte(i)} }

func la(i int) tcpip.LinkAddress { m := mac(i); return tcpip.LinkAddress(m[:]) }

// world is a segment with autoip stacks on it, for the tests.
type world struct {
	t     testing.TB
	clk   *stack.DetClock
	seg   *segment.Segment
	pcap  bytes.Buffer
	hosts []*host
	tx    []segment.Frame // copies of every frame put on the segment
}

type host struct {
	port   *segment.Port
	st     *stack.Stack
	events []autoip.Event
}

func newWorld(t testing.TB, cfg segment.Config) *world {
	t.Helper()
	w := &world{t: t, clk: stack.NewDetClock(t0)}
	user := cfg.OnTransmit
	cfg.OnTransmit = func(f segment.Frame) {
		f.Bytes = append([]byte(nil), f.Bytes...)
		w.tx = append(w.tx, f)
		if user != nil {
			user(f)
		}
	}
	cfg.PCAP = &w.pcap
	seg, err := segment.New(w.clk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.seg = seg
	t.Cleanup(func() {
		for _, h := range w.hosts {
			if h.st != nil {
				h.st.Close()
			}
		}
		seg.Close()
	})
	return w
}

// add attaches an autoip stack with engine configuration ecfg.
func (w *world) add(pc segment.PortConfig, ecfg autoip.Config) *host {
	w.t.Helper()
	return w.addClient(pc, stack.ClientConfig{Engine: ecfg})
}

// addClient attaches an autoip stack with client configuration cc (its
// OnEvent, if any, runs after the host records the event).
func (w *world) addClient(pc segment.PortConfig, cc stack.ClientConfig) *host {
	w.t.Helper()
	i := len(w.hosts)
	port, err := w.seg.Attach(channel.New(64, 1514, la(i)), pc)
	if err != nil {
		w.t.Fatal(err)
	}
	h := &host{port: port}
	user := cc.OnEvent
	cc.OnEvent = func(ev autoip.Event) {
		h.events = append(h.events, ev)
		if user != nil {
			user(ev)
		}
	}
	st, err := stack.New(stack.Options{
		Link: port.Link(), Clock: w.clk, NoTCP: true,
		RandSource: rand.NewSource(int64(i + 1)), SecureRNG: rand.New(rand.NewSource(int64(i + 100))),
		AutoIP: &cc,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	h.st = st
	w.hosts = append(w.hosts, h)
	return h
}

func (h *host) bound() netip.Addr { return h.st.Client().Status().Configured }

func (w *world) run(d time.Duration) bool {
	w.t.Helper()
	quiet, err := w.seg.RunFor(d)
	if err != nil {
		w.t.Fatal(err)
	}
	return quiet
}

// distinct fails unless every host is bound to an address of its own.
func (w *world) distinct() []netip.Addr {
	w.t.Helper()
	seen := map[netip.Addr]int{}
	var out []netip.Addr
	for i, h := range w.hosts {
		a := h.bound()
		if !a.IsValid() {
			w.t.Fatalf("host %d not bound: %v", i, h.st.Client().Status().State)
		}
		if j, dup := seen[a]; dup {
			w.t.Fatalf("hosts %d and %d both hold %v", j, i, a)
		}
		seen[a] = i
		out = append(out, a)
	}
	return out
}

// pcapTimes returns the timestamps of the capture's records.
func pcapTimes(t testing.TB, b []byte) []time.Time {
	t.Helper()
	var out []time.Time
	for off := 24; off < len(b); {
		sec := binary.LittleEndian.Uint32(b[off:])
		ns := binary.LittleEndian.Uint32(b[off+4:])
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		out = append(out, time.Unix(int64(sec), int64(ns)).UTC())
		off += 16 + n
	}
	return out
}

// newChannel returns a channel endpoint with host i's MAC.
func newChannel(i int) *channel.Endpoint { return channel.New(16, 1514, la(i)) }

// writeFrame writes frame to the port's endpoint as its stack would.
func writeFrame(p *segment.Port, frame []byte) {
	pkt := gvstack.NewPacketBuffer(gvstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	var l gvstack.PacketBufferList
	l.PushBack(pkt)
	p.Endpoint().WritePackets(l)
	pkt.DecRef()
}
