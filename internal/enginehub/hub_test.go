package enginehub

import (
	"container/heap"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

const settle = 10 * time.Minute

// run builds a hub for cfg and runs it until quiet.
func run(t *testing.T, cfg Config) *Hub {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	if err := h.RunUntilQuiet(settle); err != nil {
		t.Fatalf("RunUntilQuiet: %v\n%s", err, text(h))
	}
	return h
}

// text renders the timeline.
func text(h *Hub) string {
	var b strings.Builder
	for _, l := range h.Timeline() {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkAllBoundUnique checks that every host ended bound on its own
// in-range address, and that no host ever configured an address outside
// the range or one another host had configured at the same time.
func checkAllBoundUnique(t *testing.T, h *Hub) {
	t.Helper()
	hosts := h.Hosts()
	owner := map[netip.Addr]int{}
	for _, hs := range hosts {
		if !hs.Addr.IsValid() || hs.State != autoip.StateBound {
			t.Errorf("host %d: state %v, address %v; want bound", hs.Index, hs.State, hs.Addr)
			continue
		}
		if !autoip.InRange(hs.Addr) {
			t.Errorf("host %d: address %v out of range", hs.Index, hs.Addr)
		}
		if o, dup := owner[hs.Addr]; dup {
			t.Errorf("hosts %d and %d both hold %v", o, hs.Index, hs.Addr)
		}
		owner[hs.Addr] = hs.Index
	}
	held := map[netip.Addr]int{} // address -> host holding it, along the timeline
	for _, l := range h.Timeline() {
		switch l.What {
		case "ADD":
			if !autoip.InRange(l.Addr) {
				t.Errorf("%v: address out of range", l)
			}
			if o, ok := held[l.Addr]; ok && o != l.Host {
				t.Errorf("%v: host %d holds it already", l, o)
			}
			held[l.Addr] = l.Host
		case "REMOVE":
			delete(held, l.Addr)
		}
	}
	s := h.Summary()
	if s.Bound != len(hosts) || s.Unique != len(hosts) || s.Hosts != len(hosts) {
		t.Errorf("Summary = %+v, want %d bound and unique", s, len(hosts))
	}
	if h.Pending() != 0 {
		t.Errorf("quiet hub has %d pending events", h.Pending())
	}
}

func TestAllHostsBindUniqueInRange(t *testing.T) {
	for n := 2; n <= 20; n++ {
		for _, seed := range []uint64{1, 2, 1 << 63} {
			t.Run(fmt.Sprintf("hosts=%d/seed=%d", n, seed), func(t *testing.T) {
				h := run(t, Config{Hosts: n, Seed: seed})
				checkAllBoundUnique(t, h)
				binds := 0
				for _, l := range h.Timeline() {
					if l.What == "BIND" {
						binds++
					}
				}
				if binds < n {
					t.Errorf("%d BIND lines for %d hosts", binds, n)
				}
				if t.Failed() {
					t.Log("\n" + text(h))
				}
			})
		}
	}
}

func TestSameInitialExactlyOneKeepsIt(t *testing.T) {
	initial := netip.MustParseAddr("169.254.20.20")
	for _, n := range []int{2, 3, 4, 5, 8, 13, 20} {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("hosts=%d/seed=%d", n, seed), func(t *testing.T) {
				cfg := Config{Hosts: n, Seed: seed, Initial: initial}
				h := run(t, cfg)
				checkAllBoundUnique(t, h)
				var keepers []int
				for _, hs := range h.Hosts() {
					if hs.Addr == initial {
						keepers = append(keepers, hs.Index)
					}
				}
				// The keeper probes first; the others hear its probe while
				// waiting or probing, and move. Only probes sent within one
				// latency of each other can make two hosts both give it up
				// (RFC 5227 simultaneous probes); then nobody keeps it.
				var probes []Line
				moved := map[int]bool{}
				for _, l := range h.Timeline() {
					if l.Addr == initial && l.What == "PROBE" {
						probes = append(probes, l)
					}
					if l.Addr == initial && l.What == "CONFLICT" {
						moved[l.Host] = true
						if l.From.IsZero() {
							t.Errorf("%v: conflict without the other host's MAC", l)
						}
					}
				}
				switch {
				case len(keepers) == 1:
					for i := range n {
						if i != keepers[0] && !moved[i] {
							t.Errorf("host %d neither keeps %v nor saw a conflict on it", i, initial)
						}
					}
					if moved[keepers[0]] {
						t.Errorf("keeper %d saw a conflict on %v", keepers[0], initial)
					}
				case len(keepers) == 0 && len(probes) >= 2 && probes[1].At-probes[0].At <= h.Config().Latency:
					t.Logf("simultaneous probes at %v and %v: nobody keeps %v (RFC-correct)", probes[0].At, probes[1].At, initial)
				default:
					t.Errorf("hosts %v keep %v, want exactly one\n%s", keepers, initial, text(h))
				}
			})
		}
	}
}

// TestSameInitialSimultaneousProbes: with a latency longer than PROBE_WAIT
// every host probes before hearing anyone, so they all see each other's
// probes and all move; nobody keeps the address, and all end unique.
func TestSameInitialSimultaneousProbes(t *testing.T) {
	initial := netip.MustParseAddr("169.254.20.20")
	h := run(t, Config{Hosts: 3, Seed: 1, Initial: initial, Latency: 1500 * time.Millisecond})
	checkAllBoundUnique(t, h)
	for _, hs := range h.Hosts() {
		if hs.Addr == initial {
			t.Errorf("host %d keeps %v although every host's probe crossed another's", hs.Index, initial)
		}
	}
}

func TestSameSeedSameTimeline(t *testing.T) {
	for _, cfg := range []Config{
		{Hosts: 5, Seed: 7},
		{Hosts: 6, Seed: 7, Initial: netip.MustParseAddr("169.254.99.1"), TraceFrames: true},
		{Hosts: 4, Seed: 3, Stagger: 3 * time.Second, Initial: netip.MustParseAddr("169.254.1.0"), TraceFrames: true},
		{Hosts: 8, Seed: 9, Latency: 700 * time.Millisecond, Defend: acd.Abandon, Initial: netip.MustParseAddr("169.254.254.255")},
	} {
		a, b := text(run(t, cfg)), text(run(t, cfg))
		if a != b {
			t.Errorf("config %+v: two runs differ:\n%s\n---\n%s", cfg, a, b)
		}
		if a == "" {
			t.Errorf("config %+v: empty timeline", cfg)
		}
		other := cfg
		other.Seed++
		if c := text(run(t, other)); c == a {
			t.Errorf("config %+v: seeds %d and %d give the same timeline:\n%s", cfg, cfg.Seed, other.Seed, a)
		}
	}
}

// TestAddingHostKeepsOthersStreams: host i's delays depend on (Seed, i)
// only, so the first probe of every existing host happens at the same time
// when a host is added.
func TestAddingHostKeepsOthersStreams(t *testing.T) {
	firstProbes := func(n int) map[int]time.Duration {
		h := run(t, Config{Hosts: n, Seed: 11})
		m := map[int]time.Duration{}
		for _, l := range h.Timeline() {
			if _, ok := m[l.Host]; !ok && l.What == "PROBE" {
				m[l.Host] = l.At
			}
		}
		return m
	}
	small, big := firstProbes(4), firstProbes(5)
	for i := range 4 {
		if small[i] != big[i] {
			t.Errorf("host %d probes first at %v with 4 hosts, %v with 5", i, small[i], big[i])
		}
	}
	a, b := HostRand(11, 3), HostRand(11, 3)
	for range 20 {
		if x, y := a.Uint64(), b.Uint64(); x != y {
			t.Fatalf("HostRand(11, 3) not reproducible: %x != %x", x, y)
		}
	}
	if HostRand(11, 3).Uint64() == HostRand(11, 4).Uint64() || HostRand(11, 3).Uint64() == HostRand(12, 3).Uint64() {
		t.Error("HostRand streams of neighbouring hosts or seeds start alike")
	}
}

// TestStackAnswersForBoundAddress: a host that joins after another has
// claimed the address hears the bound host's stack answer its probe (the
// defence of RFC 5227 §2.4) and moves; the emulated reply is broadcast.
func TestStackAnswersForBoundAddress(t *testing.T) {
	initial := netip.MustParseAddr("169.254.20.20")
	h := run(t, Config{Hosts: 3, Seed: 1, Initial: initial, Stagger: 20 * time.Second, TraceFrames: true})
	checkAllBoundUnique(t, h)
	hosts := h.Hosts()
	if hosts[0].Addr != initial {
		t.Fatalf("first host holds %v, want %v\n%s", hosts[0].Addr, initial, text(h))
	}
	if hosts[0].Replies != 2 {
		t.Errorf("first host's stack sent %d replies, want 2 (one per late joiner)", hosts[0].Replies)
	}
	for _, hs := range hosts[1:] {
		if hs.Conflicts != 1 || hs.Stats.ProbeConflicts != 1 {
			t.Errorf("host %d: %d conflicts (%d while probing), want 1", hs.Index, hs.Conflicts, hs.Stats.ProbeConflicts)
		}
		if hs.Replies != 0 {
			t.Errorf("host %d answered %d probes, want 0", hs.Index, hs.Replies)
		}
	}
	replies := 0
	for _, l := range h.Timeline() {
		if l.What == "CONFLICT" && strings.Contains(l.Detail, "answers for it") {
			replies++
			if l.From != MAC(0) {
				t.Errorf("%v: conflict from %v, want %v", l, l.From, MAC(0))
			}
		}
		if l.What == "START" && l.At != time.Duration(l.Host)*20*time.Second {
			t.Errorf("%v: host %d should start at %v", l, l.Host, time.Duration(l.Host)*20*time.Second)
		}
	}
	if replies != 2 {
		t.Errorf("%d conflicts caused by stack replies, want 2\n%s", replies, text(h))
	}
}

// TestFrameDelivery: frames reach every other host, never the sender.
func TestFrameDelivery(t *testing.T) {
	h := run(t, Config{Hosts: 1, Seed: 1})
	hs := h.Hosts()[0]
	tm := acd.DefaultTiming()
	if want := uint64(tm.ProbeNum + tm.AnnounceNum); hs.Sent != want || hs.Received != 0 || hs.Stats.Own != 0 {
		t.Errorf("lone host: sent %d, received %d, own %d; want %d, 0, 0", hs.Sent, hs.Received, hs.Stats.Own, want)
	}

	h = run(t, Config{Hosts: 5, Seed: 2})
	var total uint64
	for _, hs := range h.Hosts() {
		total += hs.Sent + hs.Replies
	}
	if s := h.Summary(); s.Frames != total {
		t.Errorf("Summary.Frames = %d, hosts sent %d", s.Frames, total)
	}
	for _, hs := range h.Hosts() {
		if want := total - hs.Sent - hs.Replies; hs.Received != want || hs.Stats.Frames != want {
			t.Errorf("host %d received %d (engine counted %d), want %d", hs.Index, hs.Received, hs.Stats.Frames, want)
		}
		if hs.Stats.Malformed != 0 || hs.Stats.NotARP != 0 || hs.Stats.Own != 0 || hs.Stats.BadSender != 0 {
			t.Errorf("host %d: stats %+v", hs.Index, hs.Stats)
		}
	}
}

// TestLatencyDelaysConflicts: the conflict is seen exactly one latency
// after the probe that causes it.
func TestLatencyDelaysConflicts(t *testing.T) {
	for _, lat := range []time.Duration{time.Nanosecond, time.Millisecond, 37 * time.Millisecond} {
		h := run(t, Config{Hosts: 2, Seed: 4, Latency: lat, Initial: netip.MustParseAddr("169.254.8.8")})
		var probe, conflict *Line
		tl := h.Timeline()
		for i := range tl {
			l := &tl[i]
			if l.What == "PROBE" && probe == nil {
				probe = l
			}
			if l.What == "CONFLICT" && conflict == nil {
				conflict = l
			}
		}
		if probe == nil || conflict == nil {
			t.Fatalf("latency %v: no probe or conflict\n%s", lat, text(h))
		}
		if conflict.At-probe.At != lat || conflict.Host == probe.Host || conflict.From != MAC(probe.Host) {
			t.Errorf("latency %v: probe %v, conflict %v", lat, probe, conflict)
		}
	}
}

func TestRunUntilQuietLimitAndResume(t *testing.T) {
	cfg := Config{Hosts: 4, Seed: 5, Initial: netip.MustParseAddr("169.254.20.20")}
	whole := run(t, cfg)

	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RunUntilQuiet(0); err == nil {
		t.Error("RunUntilQuiet(0) succeeded")
	}
	if err := h.RunUntilQuiet(-time.Second); err == nil {
		t.Error("RunUntilQuiet(-1s) succeeded")
	}
	steps := 0
	for {
		err := h.RunUntilQuiet(300 * time.Millisecond)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotQuiet) {
			t.Fatalf("RunUntilQuiet: %v", err)
		}
		if steps++; steps > 1000 {
			t.Fatal("never quiet")
		}
		if h.Now() != time.Duration(steps)*300*time.Millisecond {
			t.Fatalf("after %d limited runs Now() = %v", steps, h.Now())
		}
	}
	if steps < 10 {
		t.Errorf("only %d limited runs; the limit is not enforced", steps)
	}
	if a, b := text(whole), text(h); a != b {
		t.Errorf("run in slices differs from run in one go:\n%s\n---\n%s", a, b)
	}
	// Quiet stays quiet.
	n := len(h.Timeline())
	if err := h.RunUntilQuiet(time.Hour); err != nil || len(h.Timeline()) != n {
		t.Errorf("second run of a quiet hub: %v, %d new lines", err, len(h.Timeline())-n)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no hosts", Config{}, "0 hosts"},
		{"negative hosts", Config{Hosts: -3}, "-3 hosts"},
		{"too many hosts", Config{Hosts: MaxHosts + 1}, fmt.Sprint(MaxHosts + 1)},
		{"negative latency", Config{Hosts: 2, Latency: -time.Millisecond}, "latency -1ms"},
		{"initial reserved", Config{Hosts: 2, Initial: netip.MustParseAddr("169.254.0.1")}, "169.254.0.1"},
		{"initial routable", Config{Hosts: 2, Initial: netip.MustParseAddr("10.1.2.3")}, "10.1.2.3"},
		{"negative stagger", Config{Hosts: 2, Stagger: -1}, "stagger"},
		{"huge stagger", Config{Hosts: 2, Stagger: MaxStagger + 1}, "stagger"},
		{"bad timing", Config{Hosts: 2, Timing: acd.Timing{ProbeMin: 3 * time.Second}}, "PROBE_MIN"},
		{"bad policy", Config{Hosts: 2, Defend: 9}, "defend policy 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New(%+v) succeeded", tt.cfg)
			}
			if h != nil {
				t.Error("New returned a hub with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	h, err := New(Config{Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := h.Config(); c.Latency != DefaultLatency || !c.Start.Equal(DefaultStart) {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestQNXTiming: a hub with QNX delay=200 timing binds within the scaled
// probe window.
func TestQNXTiming(t *testing.T) {
	q := autoip.DefaultQNXOptions()
	q.DelayMS = 200
	tm, _, err := q.Timing()
	if err != nil {
		t.Fatal(err)
	}
	h := run(t, Config{Hosts: 3, Seed: 1, Timing: tm})
	checkAllBoundUnique(t, h)
	// PROBE_WAIT 100ms + 2 gaps of at most 200ms + ANNOUNCE_WAIT 2s.
	if s := h.Summary(); s.LastBind > 100*time.Millisecond+400*time.Millisecond+2*time.Second {
		t.Errorf("last bind at %v, too late for delay=200", s.LastBind)
	}
}

func TestEventHeapTiesByInsertionOrder(t *testing.T) {
	var h Hub
	t0 := DefaultStart
	at := []time.Duration{5, 1, 5, 5, 0, 1, 5}
	for i, d := range at {
		h.push(event{at: t0.Add(d), host: i})
	}
	var got []int
	for len(h.q) > 0 {
		got = append(got, heap.Pop(&h.q).(event).host)
	}
	want := []int{4, 1, 5, 0, 2, 3, 6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pop order %v, want %v", got, want)
	}
}

// TestTimersAreCancelledLazily: a host's timer entry is replaced, not
// duplicated, when its deadline changes, and stale entries are dropped.
func TestTimersAreCancelledLazily(t *testing.T) {
	h, err := New(Config{Hosts: 3, Seed: 1, Initial: netip.MustParseAddr("169.254.20.20")})
	if err != nil {
		t.Fatal(err)
	}
	maxPending := 0
	for {
		err := h.RunUntilQuiet(time.Millisecond)
		if p := h.Pending(); p > maxPending {
			maxPending = p
		}
		if err == nil {
			break
		}
	}
	// At most one live timer per host, frames in flight, and the stale
	// timers of the hosts that moved.
	if maxPending > 3*3 {
		t.Errorf("up to %d heap entries for 3 hosts", maxPending)
	}
	for i, hs := range h.hosts {
		if hs.armed {
			t.Errorf("host %d still armed when quiet", i)
		}
	}
}

func TestMAC(t *testing.T) {
	for i, want := range map[int]string{0: "02:00:00:00:00:00", 1: "02:00:00:00:00:01", 0x1234: "02:00:00:00:12:34", MaxHosts - 1: "02:00:00:00:ff:ff"} {
		m := MAC(i)
		if m.String() != want || !m.IsUnicast() {
			t.Errorf("MAC(%d) = %v, want %s, unicast", i, m, want)
		}
	}
	h := run(t, Config{Hosts: 3, Seed: 1})
	for i, hs := range h.Hosts() {
		if hs.Index != i || hs.MAC != MAC(i) {
			t.Errorf("host %d: index %d, MAC %v", i, hs.Index, hs.MAC)
		}
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "0.000s",
		999 * time.Microsecond:     "0.000s",
		time.Millisecond:           "0.001s",
		1234567 * time.Microsecond: "1.234s",
		90 * time.Second:           "90.000s",
		-1500 * time.Millisecond:   "-1.500s",
	} {
		if got := FormatOffset(d); got != want {
			t.Errorf("FormatOffset(%v) = %q, want %q", d, got, want)
		}
	}
	l := Line{At: 1234 * time.Millisecond, Host: 3, What: "CONFLICT", Addr: netip.MustParseAddr("169.254.20.20"), From: MAC(1), Detail: "x"}
	want := "    1.234s  host 3     02:00:00:00:00:03  CONFLICT   169.254.20.20    x"
	if got := l.String(); got != want {
		t.Errorf("Line.String() =\n%q, want\n%q", got, want)
	}
	if got := (Line{Host: 0, What: "START"}).String(); strings.HasSuffix(got, " ") {
		t.Errorf("Line.String() has trailing spaces: %q", got)
	}
	s := Summary{Hosts: 4, Bound: 4, Unique: 4, Conflicts: 3, LastBind: 6712 * time.Millisecond, Now: 8713 * time.Millisecond, Frames: 20}
	if got, want := s.String(), "4/4 hosts bound, 4 unique addresses, last bind at 6.712s, 3 conflicts, 20 frames, quiet at 8.713s"; got != want {
		t.Errorf("Summary.String() = %q, want %q", got, want)
	}
}
