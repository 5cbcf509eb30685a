package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/autoip-project/autoip/autoip/acd"
)

// sweepScenario builds a random scenario for seed: a handful of hosts, a
// random arrival pattern, some forced collisions (shared initial
// addresses or engine seeds), a random fault model without loss, and
// sometimes a flap or a partition that heals.
func sweepScenario(seed uint64, lossy bool) *Scenario {
	r := splitMix{s: seed * 0x9E3779B97F4A7C15}
	pick := func(n uint64) int { return int(r.next() % n) }
	sc := &Scenario{Name: fmt.Sprintf("sweep-%d", seed), Seed: seed, Duration: Duration(5 * time.Minute)}
	n := 4 + pick(8)
	starts := []string{"all", "staggered", "random"}
	for n > 0 {
		k := min(n, 1+pick(4))
		hs := HostSpec{Count: k, Start: starts[pick(3)], Interval: Duration(time.Duration(1+pick(2000)) * time.Millisecond), Window: Duration(time.Duration(1+pick(20)) * time.Second)}
		switch pick(4) {
		case 0:
			hs.Initial = fmt.Sprintf("169.254.%d.%d", 1+pick(3), pick(3))
		case 1:
			hs.EngineSeed = uint64(1 + pick(3))
		}
		if pick(4) == 0 {
			hs.Timing = &TimingSpec{QNXDelayMS: 100 + pick(3000)}
		}
		if pick(5) == 0 {
			hs.Defend = "abandon"
		}
		if pick(6) == 0 {
			hs.LinkUpDelay = Duration(time.Duration(pick(3000)) * time.Millisecond)
		}
		sc.Hosts = append(sc.Hosts, hs)
		n -= k
	}
	if pick(2) == 0 {
		sc.Link = LinkSpec{
			Latency: Duration(time.Duration(pick(2000)) * time.Microsecond), Jitter: Duration(time.Duration(pick(3000)) * time.Microsecond),
			Dup: float64(pick(3)) / 10, Reorder: float64(pick(3)) / 10, Echo: float64(pick(3)) / 4,
		}
	}
	if lossy {
		sc.Link.Loss = 0.05 + float64(pick(10))/100
	}
	total := sc.NumHosts()
	switch pick(3) {
	case 0:
		sc.Events = append(sc.Events, EventSpec{At: Duration(time.Duration(5+pick(20)) * time.Second), Op: "flap", Hosts: []int{pick(uint64(total))}, For: Duration(time.Duration(1+pick(3000)) * time.Millisecond)})
	case 1:
		var a, b []int
		for i := 0; i < total; i++ {
			if pick(2) == 0 {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		sc.Events = append(sc.Events,
			EventSpec{At: 0, Op: "partition", Groups: [][]int{a, b}},
			EventSpec{At: Duration(30 * time.Second), Op: "merge"},
			EventSpec{At: Duration(30 * time.Second), Op: "flap", All: true, For: Duration(time.Second)})
	}
	return sc
}

// TestInvariantSweep runs random scenarios over many seeds: at the end no
// two hosts share an address, every host is bound, and the RFC timing and
// rate limits held throughout (see Check).
func TestInvariantSweep(t *testing.T) {
	seeds := uint64(60)
	if testing.Short() {
		seeds = 12
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		sc := sweepScenario(seed, false)
		if err := sc.Validate(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		s, r, err := RunScenario(sc, Outputs{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, v := range r.Violations {
			t.Errorf("seed %d (%d hosts): %v", seed, sc.NumHosts(), v)
		}
		if !r.Quiet {
			t.Errorf("seed %d: not quiet after %v", seed, time.Duration(sc.Duration))
		}
		s.Close()
	}
}

// TestInvariantSweepLossy repeats the sweep with 5-15% loss. Loss can hide
// a conflict, so uniqueness and liveness are not required; the RFC timing
// and rate limits still are.
func TestInvariantSweepLossy(t *testing.T) {
	seeds := uint64(30)
	if testing.Short() {
		seeds = 6
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		sc := sweepScenario(seed, true)
		s, err := sc.Build(Outputs{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := s.Run(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for _, v := range s.Check(CheckOptions{}) {
			if v.Rule != "unique" {
				t.Errorf("seed %d: %v", seed, v)
			}
		}
		s.Close()
	}
}

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

// readPCAP parses a pcap file (nanosecond format) into timestamps and
// frames.
func readPCAP(t *testing.T, b []byte) ([]time.Time, [][]byte) {
	t.Helper()
	if len(b) < pcapFileHeaderLen || binary.LittleEndian.Uint32(b) != pcapMagicNanos {
		t.Fatalf("not a nanosecond pcap file")
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != uint32(layers.LinkTypeEthernet) {
		t.Fatalf("link type %d, want Ethernet", lt)
	}
	var ts []time.Time
	var frames [][]byte
	for off := pcapFileHeaderLen; off < len(b); {
		if off+16 > len(b) {
			t.Fatalf("truncated record header at %d", off)
		}
		sec, nsec := binary.LittleEndian.Uint32(b[off:]), binary.LittleEndian.Uint32(b[off+4:])
		capLen, origLen := int(binary.LittleEndian.Uint32(b[off+8:])), int(binary.LittleEndian.Uint32(b[off+12:]))
		if capLen != origLen || off+16+capLen > len(b) {
			t.Fatalf("bad record at %d: caplen %d, len %d", off, capLen, origLen)
		}
		ts = append(ts, time.Unix(int64(sec), int64(nsec)).UTC())
		frames = append(frames, b[off+16:off+16+capLen])
		off += 16 + capLen
	}
	return ts, frames
}

// TestPCAP checks the capture: one record per frame put on the segment
// (plus duplicate and echoed copies), timestamps in virtual time and in
// order, every ARP frame decodable by gopacket, and readable by tcpdump
// when it is installed.
func TestPCAP(t *testing.T) {
	sc := load(t, "testdata/scenarios/kitchen-sink.json")
	o := run(t, sc)
	ts, frames := readPCAP(t, o.pcap)
	r := o.rep
	if want := r.Frames.Total + r.Delivery.Duplicated + r.Delivery.Echoed; uint64(len(frames)) != want {
		t.Errorf("%d records, want %d (frames %d + duplicates %d + echoes %d)", len(frames), want, r.Frames.Total, r.Delivery.Duplicated, r.Delivery.Echoed)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i].Before(ts[i-1]) {
			t.Fatalf("record %d at %v is before record %d at %v", i, ts[i], i-1, ts[i-1])
		}
	}
	if ts[0].Before(DefaultStart) || ts[len(ts)-1].After(DefaultStart.Add(o.sim.Now())) {
		t.Errorf("timestamps %v..%v outside the run", ts[0], ts[len(ts)-1])
	}
	arps := 0
	for i, f := range frames {
		kind, _ := classifyFrame(f)
		if kind > FrameReply {
			continue
		}
		arps++
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok {
			t.Fatalf("record %d: gopacket finds no ARP layer: %v", i, p.ErrorLayer())
		}
		ours, _ := acd.DecodeFrame(f)
		if !bytes.Equal(a.SourceProtAddress, ours.SenderIP.AsSlice()) || !bytes.Equal(a.DstProtAddress, ours.TargetIP.AsSlice()) {
			t.Errorf("record %d: gopacket and acd disagree", i)
		}
	}
	if arps == 0 {
		t.Fatal("no ARP frames")
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not installed; not checking that it reads the file")
		return
	}
	cmd := exec.Command(tcpdump, "-nn", "-r", "-")
	cmd.Stdin = bytes.NewReader(o.pcap)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump: %v: %s", err, stderr.Bytes())
	}
	records := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > 0 && l[0] >= '0' && l[0] <= '9' { // a record's line starts with its time stamp
			records++
		}
	}
	if records != len(frames) {
		t.Errorf("tcpdump printed %d records, the file has %d", records, len(frames))
	}
	if !strings.Contains(out.String(), "ARP, Request who-has 169.254.") {
		t.Errorf("tcpdump shows no ARP requests:\n%.500s", out.String())
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
		{"loss", Config{Link: LinkModel{Loss: 1.5}}, "link loss 1.5 is out of range 0..1"},
		{"nan", Config{Link: LinkModel{Dup: nanF()}}, "link dup NaN is out of range 0..1"},
		{"latency", Config{Link: LinkModel{Latency: -time.Second}}, "link latency -1s is out of range"},
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

func TestScenarioParseErrors(t *testing.T) {
	cases := []struct {
		doc, want string
	}{
		{`{"name":"x","hosts":[{}],"bogus":1}`, `unknown field "bogus"`},
		{`{"name":"x","hosts":[{}],"duration":"5 minutes"}`, `duration "5 minutes"`},
		{`{"name":"x","hosts":[{}],"duration":300}`, `want a string such as "1.5s"`},
		{`{"name":"x","hosts":[]}`, "no hosts"},
		{`{"name":"x","hosts":[{"initial":"10.1.1.1"}]}`, "hosts[0]: invalid simulation configuration: initial address 10.1.1.1 is outside"},
		{`{"name":"x","hosts":[{"start":"soon"}]}`, `start "soon": want all, staggered or random`},
		{`{"name":"x","hosts":[{"start":"random"}]}`, "random start needs a window"},
		{`{"name":"x","hosts":[{"static":"169.254.3.3","count":2}]}`, "must have count 1"},
		{`{"name":"x","hosts":[{"defend":"fight"}]}`, `defend policy "fight"`},
		{`{"name":"x","hosts":[{"timing":{"probe_min":"3s"}}]}`, "PROBE_MIN (3s) is more than PROBE_MAX (2s)"},
		{`{"name":"x","hosts":[{"timing":{"qnx_delay_ms":9000}}]}`, "delay 9000 ms is out of range 1..8000 ms"},
		{`{"name":"x","hosts":[{}],"actors":[{"kind":"gremlin"}]}`, `actors[0]: invalid simulation configuration: actor kind "gremlin"`},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"explode"}]}`, `unknown op "explode"`},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"flap","hosts":[3]}]}`, "host 3 out of range 0..0"},
		{`{"name":"x","hosts":[{}],"events":[{"at":"1s","op":"flap"}]}`, "flap needs hosts or all"},
		{`{"name":"x","hosts":[{"count":2}],"events":[{"at":"1s","op":"partition","groups":[[0],[0,1]]}]}`, "host 0 is in two groups"},
		{`{"name":"x","hosts":[{}],"link":{"loss":2}}`, "link loss 2 is out of range 0..1"},
		{`{"name":"x","hosts":[{}],"expect":{"addr":{"7":"169.254.1.1"}}}`, `host key "7" is not a host index 0..0`},
		{`{"name":"x","hosts":[{}]} {}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := ParseScenario([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.doc, err, c.want)
		}
	}
}

// TestSVG checks the picture is well-formed XML with one row per host and
// actor.
func TestSVG(t *testing.T) {
	o := run(t, load(t, "testdata/scenarios/partition-merge.json"))
	d := xml.NewDecoder(bytes.NewReader(o.svg))
	texts := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
			texts++
		}
	}
	for i := 0; i < o.sim.NumHosts(); i++ {
		if !bytes.Contains(o.svg, []byte(fmt.Sprintf(">h%d ", i))) {
			t.Errorf("no row for host %d", i)
		}
	}
	if !bytes.Contains(o.svg, []byte("conflict 169.254.")) {
		t.Error("no conflict marker")
	}
	var small bytes.Buffer
	if err := o.sim.WriteSVG(&small, SVGOptions{Hosts: []int{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(small.Bytes(), []byte(">h2 ")) || !bytes.Contains(small.Bytes(), []byte("showing 2 of 8 hosts")) {
		t.Error("host selection ignored")
	}
	if err := o.sim.WriteSVG(io.Discard, SVGOptions{Hosts: []int{99}}); err == nil {
		t.Error("out-of-range host accepted")
	}
}

// TestQueuesNeverOverflow: with the smallest queue, a storm of conflicts
// loses no frame, because the hub drains a host after every step.
func TestQueuesNeverOverflow(t *testing.T) {
	sc := load(t, "testdata/scenarios/kitchen-sink.json")
	sc.Queue = 2
	o := run(t, sc)
	if d := o.rep.Delivery; d.NoBufferSpace != 0 {
		t.Errorf("%d frames dropped on full queues", d.NoBufferSpace)
	}
	full := load(t, "testdata/scenarios/kitchen-sink.json")
	if p := run(t, full); !bytes.Equal(p.pcap, o.pcap) {
		t.Error("queue size changed the run")
	}
}

// TestTrace checks the per-host trace selection.
func TestTrace(t *testing.T) {
	var tr bytes.Buffer
	sc := load(t, "testdata/scenarios/static-incumbent.json")
	s, _, err := RunScenario(sc, Outputs{Trace: &tr, TraceHosts: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := tr.String()
	if !strings.Contains(out, " h1    START") || !strings.Contains(out, " h1    CONFLICT   169.254.20.20 (probing)") {
		t.Errorf("trace lacks host 1's story:\n%s", out)
	}
	if strings.Contains(out, " h0 ") || strings.Contains(out, " h2 ") {
		t.Errorf("trace has other hosts:\n%s", out)
	}
}

// TestProgress checks the progress line appears for a run and names the
// counts.
func TestProgress(t *testing.T) {
	var p bytes.Buffer
	sc := load(t, "testdata/scenarios/simultaneous-probe.json")
	s, _, err := RunScenario(sc, Outputs{Progress: &p, ProgressEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(p.String(), "bound 4") || !strings.Contains(p.String(), "booted 4/4") {
		t.Errorf("progress: %q", p.String())
	}
}

// TestHubDoesNotAllocate: once warm, putting a frame on the segment and
// working out who it concerns allocates nothing in the hub (what a
// netstack allocates when it receives a frame is gVisor's business).
func TestHubDoesNotAllocate(t *testing.T) {
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
			s.send(0, f)
		}
		s.pump()
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
	r := s.Report(ReportOptions{Check: CheckOptions{AllBound: true}})
	if r.Delivery.Echoed != 5 || r.Conflicts != 0 || len(r.Violations) != 0 {
		t.Errorf("echoed %d, conflicts %d, violations %v; want 5 echoes of host 0's frames and no conflict", r.Delivery.Echoed, r.Conflicts, r.Violations)
	}
}
