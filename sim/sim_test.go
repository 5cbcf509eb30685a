package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// TestAddingHostKeepsStreams: host i's random draws depend on (seed, i)
// only, so adding a host leaves the others' first attempt (address and
// time of the first probe) unchanged.
func TestAddingHostKeepsStreams(t *testing.T) {
	first := func(n int) map[int]Event {
		s, err := New(Config{Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := 0; i < n; i++ {
			if _, err := s.AddHost(HostConfig{Start: time.Duration(i) * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		out := map[int]Event{}
		for _, e := range s.Events() {
			if _, ok := out[e.Host]; !ok && e.Kind == EventProbe {
				out[e.Host] = e
			}
		}
		return out
	}
	a, b := first(8), first(9)
	for i := 0; i < 8; i++ {
		if a[i] != b[i] {
			t.Errorf("host %d: first probe %+v with 8 hosts, %+v with 9", i, a[i], b[i])
		}
	}
}

// TestSameSeedSameRun: two simulations built the same way produce the same
// events; a different seed produces different ones.
func TestSameSeedSameRun(t *testing.T) {
	events := func(seed uint64) []Event {
		s, _ := New(Config{Seed: seed})
		defer s.Close()
		for i := 0; i < 5; i++ {
			s.AddHost(HostConfig{Initial: netip.MustParseAddr("169.254.3.3")})
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		return s.Events()
	}
	a, b, c := events(1), events(1), events(2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("same seed, different events")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("different seeds, same events")
	}
}

// TestCheckCatchesViolations feeds the checker hand-made logs that break
// each timing rule once.
func TestCheckCatchesViolations(t *testing.T) {
	const ms = int64(time.Millisecond)
	a := [4]byte{169, 254, 1, 1}
	b := [4]byte{169, 254, 2, 2}
	type item struct {
		ev *evRec
		tx *txRec
	}
	ev := func(at int64, k EventKind, addr [4]byte) item { return item{ev: &evRec{at: at, kind: k, addr: addr}} }
	tx := func(at int64, k FrameKind, spa, tpa [4]byte) item {
		return item{tx: &txRec{at: at, kind: k, spa: spa, tpa: tpa}}
	}
	good := func(at int64, addr [4]byte) []item { // a correct attempt starting at `at`
		return []item{
			ev(at+500*ms, EventProbe, addr), tx(at+500*ms, FrameProbe, [4]byte{}, addr),
			tx(at+1500*ms, FrameProbe, [4]byte{}, addr), tx(at+3000*ms, FrameProbe, [4]byte{}, addr),
			ev(at+5000*ms, EventBind, addr), tx(at+5000*ms, FrameAnnouncement, addr, addr),
			tx(at+7000*ms, FrameAnnouncement, addr, addr),
		}
	}
	cases := []struct {
		rule  string
		items []item
	}{
		{"", append([]item{ev(0, EventStart, [4]byte{})}, good(0, a)...)},
		{"first-probe", []item{ev(0, EventStart, [4]byte{}), ev(1500*ms, EventProbe, a), tx(1500*ms, FrameProbe, [4]byte{}, a)}},
		{"probe-gap", []item{ev(0, EventStart, [4]byte{}), ev(500*ms, EventProbe, a), tx(500*ms, FrameProbe, [4]byte{}, a), tx(900*ms, FrameProbe, [4]byte{}, a)}},
		{"probe-gap", []item{ev(0, EventStart, [4]byte{}), ev(500*ms, EventProbe, a), tx(500*ms, FrameProbe, [4]byte{}, a), tx(2600*ms, FrameProbe, [4]byte{}, a)}},
		{"probe-count", []item{ev(0, EventStart, [4]byte{}), ev(500*ms, EventProbe, a), tx(500*ms, FrameProbe, [4]byte{}, a), ev(3000*ms, EventBind, a)}},
		{"announce-wait", []item{ev(0, EventStart, [4]byte{}), ev(500*ms, EventProbe, a), tx(500*ms, FrameProbe, [4]byte{}, a),
			tx(1500*ms, FrameProbe, [4]byte{}, a), tx(2500*ms, FrameProbe, [4]byte{}, a), ev(3000*ms, EventBind, a)}},
		{"announce-gap", append(append([]item{ev(0, EventStart, [4]byte{})}, good(0, a)...), tx(7500*ms, FrameAnnouncement, a, a))},
		{"defend-interval", append(append([]item{ev(0, EventStart, [4]byte{})}, good(0, a)...), ev(20000*ms, EventDefend, a), ev(25000*ms, EventDefend, a))},
		{"rate-limit", func() []item {
			its := []item{ev(0, EventStart, [4]byte{})}
			at := int64(0)
			for i := 0; i < 10; i++ { // ten conflicts, each right after the first probe
				its = append(its, ev(at+500*ms, EventProbe, b), tx(at+500*ms, FrameProbe, [4]byte{}, b), ev(at+600*ms, EventConflict, b))
				at += 600 * ms
			}
			// The eleventh attempt starts at once instead of waiting 60s.
			return append(its, ev(at+500*ms, EventProbe, a), tx(at+500*ms, FrameProbe, [4]byte{}, a))
		}()},
	}
	for _, c := range cases {
		s := &Sim{hosts: []*host{{cfg: HostConfig{}}}}
		var evs []evRec
		var txs []txRec
		for i, it := range c.items {
			if it.ev != nil {
				r := *it.ev
				r.ord = uint32(i)
				evs = append(evs, r)
			} else {
				r := *it.tx
				r.ord = uint32(i)
				txs = append(txs, r)
			}
		}
		var got []string
		s.checkTiming(0, s.hosts[0], evs, txs, func(rule string, _ int, _ int64, format string, args ...any) {
			got = append(got, rule+": "+fmt.Sprintf(format, args...))
		})
		switch {
		case c.rule == "" && len(got) > 0:
			t.Errorf("correct log flagged: %v", got)
		case c.rule != "" && (len(got) == 0 || !strings.HasPrefix(got[0], c.rule+":")):
			t.Errorf("want a %s violation, got %v", c.rule, got)
		}
	}
}

// TestCheckUnique: two hosts on one address in one partition are flagged;
// in different partitions they are not.
func TestCheckUnique(t *testing.T) {
	for _, partitioned := range []bool{false, true} {
		s, _ := New(Config{Seed: 1})
		s.AddHost(HostConfig{Static: netip.MustParseAddr("169.254.9.9")})
		s.AddHost(HostConfig{Static: netip.MustParseAddr("169.254.9.9")})
		if partitioned {
			s.Partition([][]int{{1}})
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		vs := s.Check(CheckOptions{AllBound: true})
		flagged := len(vs) == 1 && vs[0].Rule == "unique"
		if flagged == partitioned {
			t.Errorf("partitioned=%v: violations %v", partitioned, vs)
		}
		s.Close()
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"loss", Config{Link: segment.LinkModel{Loss: 1.5}}, "link loss 1.5 is out of range 0..1"},
		{"nan", Config{Link: segment.LinkModel{Dup: nanF()}}, "link dup NaN is out of range 0..1"},
		{"latency", Config{Link: segment.LinkModel{Latency: -time.Second}}, "link latency -1s is out of range"},
		{"queue", Config{QueueSize: 5000}, "queue size 5000 is out of range 1..4096"},
		{"duration", Config{Duration: -1}, "duration -1ns is out of range"},
	}
	for _, c := range cases {
		_, err := New(c.cfg)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	s, _ := New(Config{})
	defer s.Close()
	hostCases := []struct {
		hc   HostConfig
		want string
	}{
		{HostConfig{Initial: netip.MustParseAddr("169.254.0.1")}, "initial address 169.254.0.1 is outside"},
		{HostConfig{Static: netip.MustParseAddr("10.0.0.1")}, "static address 10.0.0.1 is outside"},
		{HostConfig{MAC: acd.BroadcastMAC}, "is not unicast"},
		{HostConfig{Timing: acd.Timing{ProbeNum: -1}}, "PROBE_NUM"},
		{HostConfig{Echo: 2}, "host echo 2 is out of range"},
	}
	for _, c := range hostCases {
		if _, err := s.AddHost(c.hc); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.hc, err, c.want)
		}
	}
	if _, err := s.AddActor(ActorConfig{Kind: ActorMalformed, Interval: time.Nanosecond}); err == nil || !strings.Contains(err.Error(), "interval 1ns is out of range") {
		t.Errorf("actor: got %v", err)
	}
	if err := s.SetLink(3, false); err == nil || !strings.Contains(err.Error(), "host 3 out of range") {
		t.Errorf("set link: got %v", err)
	}
}

func nanF() float64 { z := 0.0; return z / z }

// TestRecordingDoesNotAllocate: once warm, recording a frame put on the
// segment (an actor's, concerning no host) allocates nothing: neither the
// segment nor the simulation's log (what a netstack allocates when it
// receives a frame is gVisor's business).
func TestRecordingDoesNotAllocate(t *testing.T) {
	s, _ := New(Config{Seed: 1})
	defer s.Close()
	for i := 0; i < 50; i++ {
		s.AddHost(HostConfig{})
	}
	s.AddActor(ActorConfig{Kind: ActorProxyARP, From: time.Hour})
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	// An announcement for an address nobody holds, and a probe for one.
	frames := [][]byte{
		acd.BroadcastFrame(acd.Announcement(acd.MAC{6, 0, 0, 0, 0, 0}, netip.MustParseAddr("169.254.200.200"))).AppendBinary(nil),
		acd.BroadcastFrame(acd.Probe(acd.MAC{6, 0, 0, 0, 0, 0}, netip.MustParseAddr("169.254.201.201"))).AppendBinary(nil),
	}
	s.txlog = make([]txRec, 0, 10000) // growth of the frame log is amortised, not per frame
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			s.send(s.actors[0], f)
		}
		s.seg.Step()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round", allocs)
	}
}

// TestHostEcho: a host's own echo works on an otherwise ideal segment.
func TestHostEcho(t *testing.T) {
	s, _ := New(Config{Seed: 1})
	defer s.Close()
	s.AddHost(HostConfig{Echo: 1})
	s.AddHost(HostConfig{})
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	tot, vs := s.Totals(), s.Check(CheckOptions{AllBound: true})
	if tot.Segment.Echoed != 5 || tot.Conflicts != 0 || len(vs) != 0 {
		t.Errorf("echoed %d, conflicts %d, violations %v; want 5 echoes of host 0's frames and no conflict", tot.Segment.Echoed, tot.Conflicts, vs)
	}
}

// TestHostAccessors: a booted host's stack, client and port are reachable,
// and agree with its status; a static host has no client.
func TestHostAccessors(t *testing.T) {
	s, _ := New(Config{Seed: 1})
	defer s.Close()
	s.AddHost(HostConfig{})
	s.AddHost(HostConfig{Static: netip.MustParseAddr("169.254.9.9")})
	if gv, _ := s.GVisor(0); gv != nil || s.Client(0) != nil {
		t.Error("a host that has not booted has a stack")
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	hs, _ := s.Host(0)
	gv, nic := s.GVisor(0)
	if gv == nil || s.Client(0) == nil || s.Client(0).Status().Configured != hs.Addr {
		t.Fatalf("host 0: stack %v, client %v, status %+v", gv, s.Client(0), hs)
	}
	found := false
	for _, pa := range gv.AllAddresses()[nic] {
		found = found || netip.AddrFrom4(pa.AddressWithPrefix.Address.As4()) == hs.Addr
	}
	if !found {
		t.Errorf("host 0's NIC lacks %v", hs.Addr)
	}
	if s.Client(1) != nil || !s.HostConfig(1).Static.IsValid() {
		t.Error("the static host has a client, or lost its configuration")
	}
	if s.Segment().Now() != s.Now() {
		t.Error("the segment's time is not the simulation's")
	}
	if gv, _ := s.GVisor(5); gv != nil || s.Client(-1) != nil {
		t.Error("out-of-range host has a client")
	}
}
