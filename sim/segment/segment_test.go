package segment_test

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/link/channel"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/stack"
)

var same = netip.MustParseAddr("169.254.7.7")

// forcedCollision runs six stacks that all start on one address, on a
// faulty segment, and returns the capture and the addresses they end with.
func forcedCollision(t *testing.T, seed uint64) ([]byte, []netip.Addr, segment.Stats) {
	t.Helper()
	w := newWorld(t, segment.Config{Seed: seed, Link: segment.LinkModel{
		Latency: time.Millisecond, Jitter: 2 * time.Millisecond, Dup: 0.2, Reorder: 0.2, Echo: 0.2,
	}})
	for range 6 {
		w.add(segment.PortConfig{}, autoip.Config{Initial: same})
	}
	if !w.run(10 * time.Minute) {
		t.Fatal("not quiet after 10 minutes")
	}
	conflicts := 0
	for _, h := range w.hosts {
		for _, ev := range h.events {
			if ev.Kind == autoip.EventConflict && ev.Addr == same {
				conflicts++
			}
		}
	}
	if conflicts < 5 {
		t.Errorf("%d conflicts on %v, want at least 5 (one host at most keeps it)", conflicts, same)
	}
	return bytes.Clone(w.pcap.Bytes()), w.distinct(), w.seg.Stats()
}

// TestForcedCollisionDeterministic: stacks forced onto one address end up
// on distinct ones; the same seed gives the same capture, byte for byte,
// and the faults happened.
func TestForcedCollisionDeterministic(t *testing.T) {
	p1, a1, st := forcedCollision(t, 3)
	p2, a2, _ := forcedCollision(t, 3)
	if !bytes.Equal(p1, p2) || !slices.Equal(a1, a2) {
		t.Fatalf("two runs differ: %d vs %d capture bytes, %v vs %v", len(p1), len(p2), a1, a2)
	}
	if st.Frames <= 6*5 {
		t.Errorf("only %d frames: the collision cost no extra frame", st.Frames)
	}
	if st.Duplicated == 0 || st.Reordered == 0 || st.Echoed == 0 {
		t.Errorf("faults did not happen: %+v", st)
	}
	p3, _, _ := forcedCollision(t, 4)
	if bytes.Equal(p1, p3) {
		t.Error("another seed gave the same capture")
	}
}

// TestPCAPVirtualTime: the capture's timestamps are the virtual times at
// which frames went on the segment, from the clock's start.
func TestPCAPVirtualTime(t *testing.T) {
	w := newWorld(t, segment.Config{})
	w.add(segment.PortConfig{}, autoip.Config{})
	w.run(time.Minute)
	ts := pcapTimes(t, w.pcap.Bytes())
	if len(ts) != len(w.tx) || len(ts) != 5 {
		t.Fatalf("%d records, %d frames seen; want 5 (3 probes, 2 announcements)", len(ts), len(w.tx))
	}
	for i, at := range ts {
		if want := t0.Add(w.tx[i].At); !at.Equal(want) {
			t.Errorf("record %d at %v, want %v", i, at, want)
		}
	}
	if w.seg.Stats().Frames != 5 {
		t.Errorf("Stats.Frames = %d", w.seg.Stats().Frames)
	}
}

// TestLossLatencyAndPartitions: with total loss nobody hears anybody (all
// keep the shared address); latency delays delivery; a partition hears
// only itself until Merge.
func TestLossLatencyAndPartitions(t *testing.T) {
	t.Run("loss", func(t *testing.T) {
		w := newWorld(t, segment.Config{Link: segment.LinkModel{Loss: 1}})
		a := w.add(segment.PortConfig{}, autoip.Config{Initial: same})
		b := w.add(segment.PortConfig{}, autoip.Config{Initial: same})
		w.run(time.Minute)
		if a.bound() != same || b.bound() != same || w.seg.Stats().Deliveries != 0 || w.seg.Stats().Lost == 0 {
			t.Errorf("bound %v and %v, stats %+v; want both on %v, every delivery lost", a.bound(), b.bound(), w.seg.Stats(), same)
		}
	})
	t.Run("latency", func(t *testing.T) {
		var got []time.Duration
		w := newWorld(t, segment.Config{Link: segment.LinkModel{Latency: 3 * time.Millisecond}})
		w.add(segment.PortConfig{}, autoip.Config{})
		var seg *segment.Segment
		w.add(segment.PortConfig{OnDeliver: func([]byte) { got = append(got, seg.Now()) }}, autoip.Config{})
		seg = w.seg
		w.run(time.Minute)
		var sent []time.Duration
		for _, f := range w.tx {
			if f.From.Index() == 0 {
				sent = append(sent, f.At+3*time.Millisecond)
			}
		}
		if len(sent) == 0 || !slices.Equal(got, sent) {
			t.Errorf("host 1 received at %v, want the send times plus 3ms %v", got, sent)
		}
	})
	t.Run("partition", func(t *testing.T) {
		w := newWorld(t, segment.Config{})
		a := w.add(segment.PortConfig{}, autoip.Config{Initial: same})
		b := w.add(segment.PortConfig{}, autoip.Config{Initial: same})
		b.port.SetGroup(1)
		w.run(time.Minute)
		if a.bound() != same || b.bound() != same {
			t.Fatalf("partitioned hosts bound %v and %v, want both %v", a.bound(), b.bound(), same)
		}
		w.seg.Merge()
		if err := a.st.Client().Reannounce(); err != nil {
			t.Fatal(err)
		}
		w.run(time.Minute)
		if a.bound() == b.bound() {
			t.Errorf("after the merge both still hold %v", a.bound())
		}
	})
}

// TestSetLinkReachesTheClient: a stack built on Port.Link follows the
// port's link state, and nothing crosses a port that is down.
func TestSetLinkReachesTheClient(t *testing.T) {
	w := newWorld(t, segment.Config{})
	a := w.add(segment.PortConfig{}, autoip.Config{})
	w.run(time.Minute)
	addr := a.bound()
	a.port.SetLink(false)
	if st := a.st.Client().Status(); st.State != autoip.StateLinkDown || st.Configured.IsValid() {
		t.Fatalf("after SetLink(false): %v, configured %v", st.State, st.Configured)
	}
	a.port.SetLink(true)
	w.run(time.Minute)
	if a.bound() != addr {
		t.Errorf("after link-up bound %v, want the same %v again", a.bound(), addr)
	}
	// A frame written while the port is down is not forwarded.
	a.port.SetLink(false)
	if err := a.st.Shim().InjectOutbound(acd.BroadcastFrame(acd.Announcement(mac(0), addr)).AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if w.seg.Stats().TxLinkDown != 1 {
		t.Errorf("TxLinkDown = %d, want 1", w.seg.Stats().TxLinkDown)
	}
}

// TestFilteredPorts: a filtered port receives the broadcast ARP that
// concerns its address and no other; an unfiltered one receives everything;
// unicast reaches only the port with that MAC.
func TestFilteredPorts(t *testing.T) {
	w := newWorld(t, segment.Config{})
	var got [3][]string
	for i := range 3 {
		pc := segment.PortConfig{Filtered: i < 2, OnDeliver: func(b []byte) {
			f, _ := acd.DecodeFrame(b)
			got[i] = append(got[i], f.Kind().String()+" "+f.TargetIP.String())
		}}
		port, err := w.seg.Attach(channel.New(8, 1514, la(i)), pc)
		if err != nil {
			t.Fatal(err)
		}
		w.hosts = append(w.hosts, &host{port: port})
	}
	w.hosts[0].port.SetConcern(netip.MustParseAddr("169.254.1.1"))
	w.hosts[1].port.SetConcern(netip.MustParseAddr("169.254.2.2"))
	dev, _ := w.seg.AttachFunc(la(9), func([]byte) {})
	if dev.MAC() != la(9) || !dev.IsFunc() || dev.Index() != 0 {
		t.Errorf("function port: MAC %v, IsFunc %v, Index %d", dev.MAC(), dev.IsFunc(), dev.Index())
	}
	for _, f := range []acd.Frame{
		acd.BroadcastFrame(acd.Probe(mac(9), netip.MustParseAddr("169.254.1.1"))),
		acd.BroadcastFrame(acd.Probe(mac(9), netip.MustParseAddr("169.254.3.3"))),
		{Dst: mac(1), Src: mac(9), Packet: acd.Probe(mac(9), netip.MustParseAddr("169.254.4.4"))},
		acd.BroadcastFrame(acd.Probe(mac(9), netip.MustParseAddr("169.254.255.255"))),
	} {
		if err := w.seg.Send(dev, f.AppendBinary(nil)); err != nil {
			t.Fatal(err)
		}
	}
	w.run(time.Second)
	want := [3][]string{
		{"probe 169.254.1.1", "probe 169.254.255.255"},
		{"probe 169.254.4.4", "probe 169.254.255.255"},
		{"probe 169.254.1.1", "probe 169.254.3.3", "probe 169.254.255.255"},
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("port %d received %v, want %v", i, got[i], want[i])
		}
	}
	if err := w.seg.Send(w.hosts[0].port, nil); err == nil {
		t.Error("Send from an endpoint port accepted")
	}
}

// TestDeliverToAndTag: DeliverTo reaches one port only, at once, and is
// recorded; a tag marks the frames of the port's next drain.
func TestDeliverToAndTag(t *testing.T) {
	w := newWorld(t, segment.Config{})
	a := w.add(segment.PortConfig{}, autoip.Config{})
	b := w.add(segment.PortConfig{}, autoip.Config{})
	w.run(time.Minute)
	x := b.bound()
	// A's stack answers a request for its address; only A gets it.
	req := acd.Frame{Dst: acd.BroadcastMAC, Src: mac(7), Packet: acd.Packet{Op: acd.OpRequest, SenderHW: mac(7), SenderIP: netip.MustParseAddr("169.254.99.99"), TargetIP: a.bound()}}
	n := len(w.tx)
	a.port.Tag(5)
	w.seg.DeliverTo(a.port, req.AppendBinary(nil))
	w.run(time.Second)
	if len(w.tx) != n+2 || w.tx[n].To != a.port || w.tx[n].From != nil {
		t.Fatalf("frames after DeliverTo: %+v", w.tx[n:])
	}
	reply := w.tx[n+1]
	if reply.From != a.port || reply.Tag != 5 {
		t.Errorf("A's reply from %v with tag %d, want from A with tag 5", reply.From, reply.Tag)
	}
	a.port.Tag(6)
	w.run(time.Second) // nothing written: the tag is used up by an empty drain
	if err := a.st.Client().Reannounce(); err != nil {
		t.Fatal(err)
	}
	w.run(time.Second)
	if last := w.tx[len(w.tx)-1]; last.Tag != 0 {
		t.Errorf("a later frame carries tag %d", last.Tag)
	}
	if b.bound() != x {
		t.Errorf("B moved from %v to %v", x, b.bound())
	}
}

// TestCallbacksMayCallBack: an engine callback, running inside a delivery,
// may change the segment: here B takes its own link down when it loses its
// first candidate, and schedules the link's return.
func TestCallbacksMayCallBack(t *testing.T) {
	w := newWorld(t, segment.Config{})
	w.add(segment.PortConfig{}, autoip.Config{Initial: same})
	w.run(time.Minute)
	var b *host
	flapped := false
	b = w.addClient(segment.PortConfig{}, stack.ClientConfig{
		Engine: autoip.Config{Initial: same},
		OnEvent: func(ev autoip.Event) {
			if ev.Kind != autoip.EventConflict || flapped {
				return
			}
			flapped = true
			b.port.SetLink(false)
			if err := w.seg.At(w.seg.Now()+time.Second, func() error { b.port.SetLink(true); return nil }); err != nil {
				t.Error(err)
			}
		},
	})
	w.run(time.Minute)
	if !flapped {
		t.Fatal("no conflict")
	}
	var kinds []string
	for _, ev := range b.events {
		kinds = append(kinds, ev.Kind.String())
	}
	if a := b.bound(); !a.IsValid() || a == same || !slices.Contains(kinds, "BIND") {
		t.Errorf("B holds %v after the flap it made itself; events %v", a, kinds)
	}
}

// TestConfigErrors: bad configurations are refused, naming the value.
func TestConfigErrors(t *testing.T) {
	clk := stack.NewDetClock(t0)
	for _, c := range []struct {
		cfg  segment.Config
		want string
	}{
		{segment.Config{Link: segment.LinkModel{Loss: 2}}, "link loss 2 is out of range 0..1"},
		{segment.Config{Link: segment.LinkModel{Jitter: time.Hour}}, "link jitter 1h0m0s is out of range 0..1m0s"},
		{segment.Config{Settle: -1}, "settle -1ns is negative"},
	} {
		if _, err := segment.New(clk, c.cfg); err == nil || !errors.Is(err, segment.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := segment.New(nil, segment.Config{}); err == nil {
		t.Error("nil clock accepted")
	}
	seg, _ := segment.New(clk, segment.Config{})
	if _, err := seg.NewPort(segment.PortConfig{Echo: 1.5}); err == nil || !strings.Contains(err.Error(), "port echo 1.5 is out of range") {
		t.Errorf("port echo: %v", err)
	}
	p, _ := seg.NewPort(segment.PortConfig{})
	if err := p.Plug(channel.New(1, 1514, "short")); err == nil || !strings.Contains(err.Error(), "link address 73686f7274 has 5 bytes, not a MAC's 6") {
		t.Errorf("bad MAC: %v", err)
	}
	if err := seg.At(-time.Second, nil); err == nil || !strings.Contains(err.Error(), "in the past") {
		t.Errorf("At in the past: %v", err)
	}
	if err := seg.SetLinkModel(segment.LinkModel{Dup: -1}); err == nil || !strings.Contains(err.Error(), "link dup -1") {
		t.Errorf("SetLinkModel: %v", err)
	}
}

// TestScheduledErrorStops: a function scheduled with At that fails stops
// the run with its error.
func TestScheduledErrorStops(t *testing.T) {
	w := newWorld(t, segment.Config{})
	boom := errors.New("boom")
	ran := false
	w.seg.At(time.Second, func() error { return boom })
	w.seg.At(2*time.Second, func() error { ran = true; return nil })
	if _, err := w.seg.RunFor(time.Minute); !errors.Is(err, boom) || ran {
		t.Errorf("RunFor: %v (later function ran: %v), want boom and a stop", err, ran)
	}
}
