package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// Scenario is a simulation described as data: the JSON scenario file
// format (see the package doc for an example). Durations are Go duration
// strings ("1.5s", "250ms"); addresses are dotted quads; MACs are
// colon-separated hex. Unknown fields are errors, so typos do not pass
// silently.
type Scenario struct {
	// Name labels the run; Description says what it shows.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed is the only entropy source (Config.Seed).
	Seed uint64 `json:"seed,omitempty"`
	// Duration bounds the simulated time (default 10m).
	Duration Duration `json:"duration,omitempty"`
	// Unfiltered turns delivery filtering off (Config.Unfiltered).
	Unfiltered bool `json:"unfiltered,omitempty"`
	// Queue is the link queue size (Config.QueueSize).
	Queue int `json:"queue,omitempty"`
	// Link is the segment's fault model at the start.
	Link LinkSpec `json:"link,omitempty"`
	// Defaults fills the fields a host group leaves zero.
	Defaults HostSpec `json:"defaults,omitempty"`
	// Hosts are groups of hosts, indexed in order: the first group's
	// hosts are 0..count-1, and so on.
	Hosts []HostSpec `json:"hosts"`
	// Actors are rogue or broken devices.
	Actors []ActorSpec `json:"actors,omitempty"`
	// Events are scheduled operations (link changes, partitions, ...).
	Events []EventSpec `json:"events,omitempty"`
	// Expect states the outcome; CheckExpect verifies it.
	Expect Expect `json:"expect,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"1.5s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LinkSpec is LinkModel in a scenario file.
type LinkSpec struct {
	Latency      Duration `json:"latency,omitempty"`
	Jitter       Duration `json:"jitter,omitempty"`
	Loss         float64  `json:"loss,omitempty"`
	Dup          float64  `json:"dup,omitempty"`
	DupDelay     Duration `json:"dup_delay,omitempty"`
	Reorder      float64  `json:"reorder,omitempty"`
	ReorderDelay Duration `json:"reorder_delay,omitempty"`
	Echo         float64  `json:"echo,omitempty"`
	EchoDelay    Duration `json:"echo_delay,omitempty"`
}

// Model converts l.
func (l LinkSpec) Model() LinkModel {
	return LinkModel{
		Latency: time.Duration(l.Latency), Jitter: time.Duration(l.Jitter), Loss: l.Loss,
		Dup: l.Dup, DupDelay: time.Duration(l.DupDelay), Reorder: l.Reorder, ReorderDelay: time.Duration(l.ReorderDelay),
		Echo: l.Echo, EchoDelay: time.Duration(l.EchoDelay),
	}
}

// HostSpec describes a group of identical hosts.
type HostSpec struct {
	// Count is the number of hosts (default 1).
	Count int `json:"count,omitempty"`
	// Start is the arrival pattern: "all" (default: every host at At),
	// "staggered" (host k of the group at At+k·Interval) or "random"
	// (uniformly in [At, At+Window], drawn per host from the seed).
	Start    string   `json:"start,omitempty"`
	At       Duration `json:"at,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	Window   Duration `json:"window,omitempty"`
	// MAC is the first host's hardware address; the others count up from
	// it. Default: 02:00:ii:ii:ii:ii from the host index.
	MAC string `json:"mac,omitempty"`
	// EngineSeed gives every host of the group the same candidate
	// sequence; SeedFromMAC uses autoip.SeedFromMAC. Default: a seed per
	// host derived from the scenario seed.
	EngineSeed  uint64 `json:"engine_seed,omitempty"`
	SeedFromMAC bool   `json:"seed_from_mac,omitempty"`
	// Initial is the first address tried (forced identical first
	// addresses: give several hosts the same one).
	Initial string `json:"initial,omitempty"`
	// Static makes the hosts static incumbents holding this address
	// (count must be 1); Announce makes them announce it at boot.
	Static   string `json:"static,omitempty"`
	Announce bool   `json:"announce,omitempty"`
	// Timing overrides protocol constants.
	Timing *TimingSpec `json:"timing,omitempty"`
	// Defend is "once" (default) or "abandon" (RFC 3927 §2.5 allows no
	// other policy for link-local addresses).
	Defend string `json:"defend,omitempty"`
	// LinkUpDelay is waited after boot and link-up (autoipd -t).
	LinkUpDelay Duration `json:"link_up_delay,omitempty"`
	// Echo is the probability that the hosts' own frames come back.
	Echo float64 `json:"echo,omitempty"`
}

// TimingSpec is acd.Timing in a scenario file. QNXDelayMS applies the
// lsm-autoip delay= mapping (autoip.QNXOptions) first; the other fields,
// where set, override.
type TimingSpec struct {
	QNXDelayMS        int      `json:"qnx_delay_ms,omitempty"`
	ProbeWait         Duration `json:"probe_wait,omitempty"`
	ProbeNum          int      `json:"probe_num,omitempty"`
	ProbeMin          Duration `json:"probe_min,omitempty"`
	ProbeMax          Duration `json:"probe_max,omitempty"`
	AnnounceWait      Duration `json:"announce_wait,omitempty"`
	AnnounceNum       int      `json:"announce_num,omitempty"`
	AnnounceInterval  Duration `json:"announce_interval,omitempty"`
	MaxConflicts      int      `json:"max_conflicts,omitempty"`
	RateLimitInterval Duration `json:"rate_limit_interval,omitempty"`
	DefendInterval    Duration `json:"defend_interval,omitempty"`
}

// Timing converts t.
func (t *TimingSpec) Timing() (acd.Timing, error) {
	var out acd.Timing
	if t == nil {
		return out, nil
	}
	if t.QNXDelayMS != 0 {
		o := autoip.DefaultQNXOptions()
		o.DelayMS = t.QNXDelayMS
		qt, _, err := o.Timing()
		if err != nil {
			return out, err
		}
		out = qt
	}
	setD := func(dst *time.Duration, v Duration) {
		if v != 0 {
			*dst = time.Duration(v)
		}
	}
	setN := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setD(&out.ProbeWait, t.ProbeWait)
	setN(&out.ProbeNum, t.ProbeNum)
	setD(&out.ProbeMin, t.ProbeMin)
	setD(&out.ProbeMax, t.ProbeMax)
	setD(&out.AnnounceWait, t.AnnounceWait)
	setN(&out.AnnounceNum, t.AnnounceNum)
	setD(&out.AnnounceInterval, t.AnnounceInterval)
	setN(&out.MaxConflicts, t.MaxConflicts)
	setD(&out.RateLimitInterval, t.RateLimitInterval)
	setD(&out.DefendInterval, t.DefendInterval)
	return out, out.Validate()
}

// merge returns t with the zero fields filled from d.
func (t *TimingSpec) merge(d *TimingSpec) *TimingSpec {
	if t == nil {
		return d
	}
	if d == nil {
		return t
	}
	m := *t
	pickD := func(a *Duration, b Duration) {
		if *a == 0 {
			*a = b
		}
	}
	pickN := func(a *int, b int) {
		if *a == 0 {
			*a = b
		}
	}
	pickN(&m.QNXDelayMS, d.QNXDelayMS)
	pickD(&m.ProbeWait, d.ProbeWait)
	pickN(&m.ProbeNum, d.ProbeNum)
	pickD(&m.ProbeMin, d.ProbeMin)
	pickD(&m.ProbeMax, d.ProbeMax)
	pickD(&m.AnnounceWait, d.AnnounceWait)
	pickN(&m.AnnounceNum, d.AnnounceNum)
	pickD(&m.AnnounceInterval, d.AnnounceInterval)
	pickN(&m.MaxConflicts, d.MaxConflicts)
	pickD(&m.RateLimitInterval, d.RateLimitInterval)
	pickD(&m.DefendInterval, d.DefendInterval)
	return &m
}

// merge returns h with the zero fields filled from d (Count, MAC, Static
// and Announce are never inherited).
func (h HostSpec) merge(d HostSpec) HostSpec {
	if h.Start == "" {
		h.Start = d.Start
	}
	if h.At == 0 {
		h.At = d.At
	}
	if h.Interval == 0 {
		h.Interval = d.Interval
	}
	if h.Window == 0 {
		h.Window = d.Window
	}
	if h.EngineSeed == 0 {
		h.EngineSeed = d.EngineSeed
	}
	h.SeedFromMAC = h.SeedFromMAC || d.SeedFromMAC
	if h.Initial == "" {
		h.Initial = d.Initial
	}
	h.Timing = h.Timing.merge(d.Timing)
	if h.Defend == "" {
		h.Defend = d.Defend
	}
	if h.LinkUpDelay == 0 {
		h.LinkUpDelay = d.LinkUpDelay
	}
	if h.Echo == 0 {
		h.Echo = d.Echo
	}
	return h
}

// ActorSpec is ActorConfig in a scenario file; Kind is "proxy-arp",
// "probe-denier", "usurper" or "malformed".
type ActorSpec struct {
	Kind                string   `json:"kind"`
	MAC                 string   `json:"mac,omitempty"`
	From                Duration `json:"from,omitempty"`
	Until               Duration `json:"until,omitempty"`
	Delay               Duration `json:"delay,omitempty"`
	IgnoreProbes        bool     `json:"ignore_probes,omitempty"`
	IgnoreAnnouncements bool     `json:"ignore_announcements,omitempty"`
	Repeat              int      `json:"repeat,omitempty"`
	Gap                 Duration `json:"gap,omitempty"`
	Once                bool     `json:"once,omitempty"`
	Interval            Duration `json:"interval,omitempty"`
	Count               int      `json:"count,omitempty"`
}

// EventSpec is a scheduled operation. Op is one of:
//
//	link-down, link-up   Hosts (or All) lose or regain carrier
//	flap                 link-down at At, link-up at At+For (default 1s)
//	partition            Groups: the listed hosts go to partitions 1, 2, ...
//	merge                every host and actor back to partition 0
//	move                 Hosts: link-down, move to Partition, link-up For later
//	restart              Hosts reboot; MAC gives the (single) host a new MAC,
//	                     otherwise the next default MAC; FreshState forgets
//	                     the saved state
//	reannounce           Hosts (or All) announce their address again
//	link                 Link becomes the segment's fault model
type EventSpec struct {
	At         Duration  `json:"at"`
	Op         string    `json:"op"`
	Hosts      []int     `json:"hosts,omitempty"`
	All        bool      `json:"all,omitempty"`
	Groups     [][]int   `json:"groups,omitempty"`
	Partition  int       `json:"partition,omitempty"`
	For        Duration  `json:"for,omitempty"`
	MAC        string    `json:"mac,omitempty"`
	FreshState bool      `json:"fresh_state,omitempty"`
	Link       *LinkSpec `json:"link,omitempty"`
}

// Expect states a scenario's outcome. Host keys are host indices in
// decimal. Every field is optional.
type Expect struct {
	// Bound is the number of AutoIP hosts bound at the end. Without it,
	// every live AutoIP host must be bound (CheckOptions.AllBound).
	Bound *int `json:"bound,omitempty"`
	// Counter ranges.
	Attempts       *Range `json:"attempts,omitempty"`
	Conflicts      *Range `json:"conflicts,omitempty"`
	BoundConflicts *Range `json:"bound_conflicts,omitempty"`
	Defences       *Range `json:"defences,omitempty"`
	RateLimits     *Range `json:"rate_limits,omitempty"`
	Malformed      *Range `json:"malformed_frames,omitempty"`
	Echoed         *Range `json:"echoed,omitempty"`
	// Addr maps a host to the address it holds at the end ("" for none);
	// NotAddr to an address it must not hold; EverBound to an address it
	// must have bound at some time.
	Addr      map[string]string `json:"addr,omitempty"`
	NotAddr   map[string]string `json:"not_addr,omitempty"`
	EverBound map[string]string `json:"ever_bound,omitempty"`
	// Holders maps an address to the number of hosts holding it at the end.
	Holders map[string]int `json:"holders,omitempty"`
	// Quiet, if set, says whether the run must end quiet.
	Quiet *bool `json:"quiet,omitempty"`
}

// Range bounds a counter; a missing end is open.
type Range struct {
	Min *uint64 `json:"min,omitempty"`
	Max *uint64 `json:"max,omitempty"`
}

func (r *Range) check(name string, v uint64) string {
	if r == nil {
		return ""
	}
	if r.Min != nil && v < *r.Min {
		return fmt.Sprintf("%s is %d, want at least %d", name, v, *r.Min)
	}
	if r.Max != nil && v > *r.Max {
		return fmt.Sprintf("%s is %d, want at most %d", name, v, *r.Max)
	}
	return ""
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", filepath.Base(path), err)
	}
	return sc, nil
}

// ParseScenario decodes and validates a scenario.
func ParseScenario(b []byte) (*Scenario, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var sc Scenario
	if err := d.Decode(&sc); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding: trailing data after the scenario object")
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// plan is a scenario resolved into configurations.
type plan struct {
	cfg    Config
	hosts  []HostConfig
	actors []ActorConfig
	check  CheckOptions
}

// Validate checks the whole scenario, naming the offending field.
func (sc *Scenario) Validate() error {
	_, err := sc.plan()
	return err
}

// NumHosts returns the number of hosts the scenario creates.
func (sc *Scenario) NumHosts() int {
	n := 0
	for _, h := range sc.Hosts {
		n += max(h.Count, 1)
	}
	return n
}

func (sc *Scenario) plan() (*plan, error) {
	p := &plan{cfg: Config{
		Name: sc.Name, Seed: sc.Seed, Duration: time.Duration(sc.Duration), Unfiltered: sc.Unfiltered,
		QueueSize: sc.Queue, Link: sc.Link.Model(),
	}}
	p.cfg = p.cfg.withDefaults()
	if err := p.cfg.validate(); err != nil {
		return nil, err
	}
	if len(sc.Hosts) == 0 {
		return nil, fmt.Errorf("%w: no hosts", ErrInvalid)
	}
	if n := sc.NumHosts(); n > MaxHosts {
		return nil, fmt.Errorf("%w: %d hosts, at most %d", ErrInvalid, n, MaxHosts)
	}
	for gi, hs0 := range sc.Hosts {
		hs := hs0.merge(sc.Defaults)
		where := fmt.Sprintf("hosts[%d]", gi)
		cfgs, err := hs.expand(where, sc.Seed, len(p.hosts))
		if err != nil {
			return nil, err
		}
		p.hosts = append(p.hosts, cfgs...)
	}
	for ai, as := range sc.Actors {
		ac, err := as.config()
		if err != nil {
			return nil, fmt.Errorf("actors[%d]: %w", ai, err)
		}
		if err := ac.withDefaults().validate(); err != nil {
			return nil, fmt.Errorf("actors[%d]: %w", ai, err)
		}
		p.actors = append(p.actors, ac)
	}
	for ei, ev := range sc.Events {
		if err := ev.validate(len(p.hosts), time.Duration(sc.Duration)); err != nil {
			return nil, fmt.Errorf("events[%d] (%s at %v): %w", ei, ev.Op, time.Duration(ev.At), err)
		}
	}
	if err := sc.Expect.validate(len(p.hosts)); err != nil {
		return nil, fmt.Errorf("expect: %w", err)
	}
	p.check.AllBound = sc.Expect.Bound == nil
	return p, nil
}

// expand turns a host group into host configurations; first is the index
// of its first host.
func (hs HostSpec) expand(where string, seed uint64, first int) ([]HostConfig, error) {
	n := hs.Count
	if n == 0 {
		n = 1
	}
	if n < 0 {
		return nil, fmt.Errorf("%s: %w: count %d is negative", where, ErrInvalid, n)
	}
	var base HostConfig
	var err error
	var mac acd.MAC
	if hs.MAC != "" {
		if mac, err = acd.ParseMAC(hs.MAC); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", where, ErrInvalid, err)
		}
	}
	base.EngineSeed, base.SeedFromMAC = hs.EngineSeed, hs.SeedFromMAC
	if hs.Initial != "" {
		if base.Initial, err = parseAddr("initial", hs.Initial); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	if hs.Static != "" {
		if n != 1 {
			return nil, fmt.Errorf("%s: %w: a static incumbent group must have count 1, not %d", where, ErrInvalid, n)
		}
		if base.Static, err = parseAddr("static", hs.Static); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	base.Announce = hs.Announce
	if base.Timing, err = hs.Timing.Timing(); err != nil {
		return nil, fmt.Errorf("%s: %w: timing: %w", where, ErrInvalid, err)
	}
	if hs.Defend != "" {
		if base.Defend, err = acd.ParseDefendPolicy(hs.Defend); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", where, ErrInvalid, err)
		}
	}
	base.LinkUpDelay = time.Duration(hs.LinkUpDelay)
	base.Echo = hs.Echo
	if hs.At < 0 {
		return nil, fmt.Errorf("%s: %w: at %v is negative", where, ErrInvalid, time.Duration(hs.At))
	}
	switch hs.Start {
	case "", "all":
	case "staggered":
		if hs.Interval <= 0 {
			return nil, fmt.Errorf("%s: %w: staggered start needs an interval > 0, not %v", where, ErrInvalid, time.Duration(hs.Interval))
		}
	case "random":
		if hs.Window <= 0 {
			return nil, fmt.Errorf("%s: %w: random start needs a window > 0, not %v", where, ErrInvalid, time.Duration(hs.Window))
		}
	default:
		return nil, fmt.Errorf("%s: %w: start %q: want all, staggered or random", where, ErrInvalid, hs.Start)
	}
	out := make([]HostConfig, n)
	for k := range out {
		hc := base
		idx := first + k
		switch hs.Start {
		case "staggered":
			hc.Start = time.Duration(hs.At) + time.Duration(k)*time.Duration(hs.Interval)
		case "random":
			hc.Start = time.Duration(hs.At) + time.Duration(derive(seed, uint64(idx), streamStart)%uint64(hs.Window+1))
		default:
			hc.Start = time.Duration(hs.At)
		}
		if !mac.IsZero() {
			hc.MAC = addMAC(mac, k)
		}
		if err := hc.validate(); err != nil {
			return nil, fmt.Errorf("%s (host %d): %w", where, idx, err)
		}
		out[k] = hc
	}
	return out, nil
}

// addMAC returns m plus k, counting in the last three bytes.
func addMAC(m acd.MAC, k int) acd.MAC {
	v := uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
	v += uint32(k)
	m[3], m[4], m[5] = byte(v>>16), byte(v>>8), byte(v)
	return m
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: %s address %q is not an IPv4 address", ErrInvalid, what, s)
	}
	if !autoip.InRange(a) {
		return netip.Addr{}, fmt.Errorf("%w: %s address %v is outside %v-%v", ErrInvalid, what, a, autoip.FirstAddr, autoip.LastAddr)
	}
	return a, nil
}

func (as ActorSpec) config() (ActorConfig, error) {
	k, err := ParseActorKind(as.Kind)
	if err != nil {
		return ActorConfig{}, err
	}
	ac := ActorConfig{
		Kind: k, From: time.Duration(as.From), Until: time.Duration(as.Until), Delay: time.Duration(as.Delay),
		IgnoreProbes: as.IgnoreProbes, IgnoreAnnouncements: as.IgnoreAnnouncements,
		Repeat: as.Repeat, Gap: time.Duration(as.Gap), Once: as.Once, Interval: time.Duration(as.Interval), Count: as.Count,
	}
	if as.MAC != "" {
		if ac.MAC, err = acd.ParseMAC(as.MAC); err != nil {
			return ActorConfig{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return ac, nil
}

func (ev EventSpec) validate(hosts int, duration time.Duration) error {
	if ev.At < 0 {
		return fmt.Errorf("%w: at %v is negative", ErrInvalid, time.Duration(ev.At))
	}
	checkHosts := func(l []int) error {
		for _, h := range l {
			if h < 0 || h >= hosts {
				return fmt.Errorf("%w: host %d out of range 0..%d", ErrInvalid, h, hosts-1)
			}
		}
		return nil
	}
	needHosts := func() error {
		if len(ev.Hosts) == 0 && !ev.All {
			return fmt.Errorf("%w: %s needs hosts or all", ErrInvalid, ev.Op)
		}
		return checkHosts(ev.Hosts)
	}
	if ev.For < 0 || ev.For > Duration(MaxDuration) {
		return fmt.Errorf("%w: for %v is out of range 0..%v", ErrInvalid, time.Duration(ev.For), MaxDuration)
	}
	switch ev.Op {
	case "link-down", "link-up", "flap", "reannounce", "restart":
		if err := needHosts(); err != nil {
			return err
		}
		if ev.Op == "restart" && ev.MAC != "" {
			if len(ev.Hosts) != 1 || ev.All {
				return fmt.Errorf("%w: restart with a MAC needs exactly one host", ErrInvalid)
			}
			m, err := acd.ParseMAC(ev.MAC)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			if !m.IsUnicast() {
				return fmt.Errorf("%w: restart MAC %v is not a unicast address", ErrInvalid, m)
			}
		}
	case "move":
		if err := needHosts(); err != nil {
			return err
		}
		if ev.Partition < 0 || ev.Partition > MaxHosts {
			return fmt.Errorf("%w: partition %d out of range 0..%d", ErrInvalid, ev.Partition, MaxHosts)
		}
	case "partition":
		if len(ev.Groups) == 0 {
			return fmt.Errorf("%w: partition needs groups", ErrInvalid)
		}
		seen := map[int]bool{}
		for _, g := range ev.Groups {
			if err := checkHosts(g); err != nil {
				return err
			}
			for _, h := range g {
				if seen[h] {
					return fmt.Errorf("%w: host %d is in two groups", ErrInvalid, h)
				}
				seen[h] = true
			}
		}
	case "merge":
	case "link":
		if ev.Link == nil {
			return fmt.Errorf("%w: link needs a link model", ErrInvalid)
		}
		if err := ev.Link.Model().withDefaults().Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown op %q: want link-down, link-up, flap, partition, merge, move, restart, reannounce or link", ErrInvalid, ev.Op)
	}
	return nil
}

func (e *Expect) validate(hosts int) error {
	checkHost := func(k string) error {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= hosts {
			return fmt.Errorf("%w: host key %q is not a host index 0..%d", ErrInvalid, k, hosts-1)
		}
		return nil
	}
	for _, m := range []map[string]string{e.Addr, e.NotAddr, e.EverBound} {
		for k, v := range m {
			if err := checkHost(k); err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if _, err := netip.ParseAddr(v); err != nil {
				return fmt.Errorf("%w: host %s: address %q: %w", ErrInvalid, k, v, err)
			}
		}
	}
	for a, n := range e.Holders {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("%w: holders: address %q: %w", ErrInvalid, a, err)
		}
		if n < 0 {
			return fmt.Errorf("%w: holders of %s: %d is negative", ErrInvalid, a, n)
		}
	}
	if e.Bound != nil && (*e.Bound < 0 || *e.Bound > hosts) {
		return fmt.Errorf("%w: bound %d out of range 0..%d", ErrInvalid, *e.Bound, hosts)
	}
	return nil
}

// Outputs are where a scenario run writes besides its report.
type Outputs struct {
	PCAP          io.Writer
	Trace         io.Writer
	TraceHosts    []int
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Build creates the simulation a scenario describes, with its hosts,
// actors and events scheduled, ready to Run.
func (sc *Scenario) Build(out Outputs) (*Sim, error) {
	p, err := sc.plan()
	if err != nil {
		return nil, err
	}
	cfg := p.cfg
	cfg.PCAP, cfg.Trace, cfg.TraceHosts = out.PCAP, out.Trace, out.TraceHosts
	cfg.Progress, cfg.ProgressEvery = out.Progress, out.ProgressEvery
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	for _, hc := range p.hosts {
		if _, err := s.AddHost(hc); err != nil {
			return nil, err
		}
	}
	for _, ac := range p.actors {
		if _, err := s.AddActor(ac); err != nil {
			return nil, err
		}
	}
	for _, ev := range sc.Events {
		if err := s.schedule(ev); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// schedule turns an EventSpec into operations.
func (s *Sim) schedule(ev EventSpec) error {
	at := time.Duration(ev.At)
	hosts := ev.Hosts
	if ev.All {
		hosts = make([]int, len(s.hosts))
		for i := range hosts {
			hosts[i] = i
		}
	}
	each := func(t time.Duration, f func(int) error) error {
		return s.At(t, func() error {
			for _, h := range hosts {
				if err := f(h); err != nil {
					return err
				}
			}
			return nil
		})
	}
	down := func(i int) error { return s.SetLink(i, false) }
	up := func(i int) error { return s.SetLink(i, true) }
	flapFor := time.Duration(ev.For)
	if flapFor == 0 {
		flapFor = time.Second
	}
	switch ev.Op {
	case "link-down":
		return each(at, down)
	case "link-up":
		return each(at, up)
	case "flap":
		if err := each(at, down); err != nil {
			return err
		}
		return each(at+flapFor, up)
	case "reannounce":
		return each(at, s.Reannounce)
	case "restart":
		var mac acd.MAC
		if ev.MAC != "" {
			mac, _ = acd.ParseMAC(ev.MAC) // validated
		}
		return each(at, func(i int) error { return s.Restart(i, mac, !ev.FreshState) })
	case "move":
		if err := each(at, func(i int) error {
			if err := s.SetLink(i, false); err != nil {
				return err
			}
			return s.Move(i, ev.Partition)
		}); err != nil {
			return err
		}
		return each(at+flapFor, up)
	case "partition":
		return s.At(at, func() error { return s.Partition(ev.Groups) })
	case "merge":
		return s.At(at, s.Merge)
	case "link":
		m := ev.Link.Model()
		return s.At(at, func() error { return s.SetLinkModel(m) })
	}
	return fmt.Errorf("sim: schedule: unknown op %q", ev.Op)
}

// RunScenario builds and runs sc, and returns the simulation (for the
// caller to inspect, draw and Close) and its report, with host detail.
func RunScenario(sc *Scenario, out Outputs) (*Sim, *Report, error) {
	s, err := sc.Build(out)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Run(); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	r := s.Report(ReportOptions{HostDetail: true, Check: CheckOptions{AllBound: sc.Expect.Bound == nil}})
	return s, r, nil
}

// CheckExpect compares a report (with host detail) against the scenario's
// expectations and invariants, and returns one line per failure.
func (sc *Scenario) CheckExpect(r *Report) []string {
	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	for _, v := range r.Violations {
		failf("invariant %v", v)
	}
	e := &sc.Expect
	if e.Bound != nil && r.Bound != *e.Bound {
		failf("bound hosts: %d, want %d", r.Bound, *e.Bound)
	}
	for _, c := range []struct {
		name string
		r    *Range
		v    uint64
	}{
		{"attempts", e.Attempts, r.Attempts}, {"conflicts", e.Conflicts, r.Conflicts},
		{"bound conflicts", e.BoundConflicts, r.BoundConflicts}, {"defences", e.Defences, r.Defences},
		{"rate limits", e.RateLimits, r.RateLimits}, {"malformed frames", e.Malformed, r.Frames.Malformed},
		{"echoed frames", e.Echoed, r.Delivery.Echoed},
	} {
		if msg := c.r.check(c.name, c.v); msg != "" {
			failf("%s", msg)
		}
	}
	host := func(k string) *HostReport {
		i, _ := strconv.Atoi(k)
		if i < 0 || i >= len(r.HostDetail) {
			return nil
		}
		return &r.HostDetail[i]
	}
	for _, k := range sortedKeys(e.Addr) {
		if h := host(k); h == nil || h.Addr != e.Addr[k] {
			failf("host %s holds %q, want %q", k, addrOf(h), e.Addr[k])
		}
	}
	for _, k := range sortedKeys(e.NotAddr) {
		if h := host(k); h != nil && h.Addr == e.NotAddr[k] {
			failf("host %s holds %s, which it must not", k, h.Addr)
		}
	}
	for _, k := range sortedKeys(e.EverBound) {
		h := host(k)
		found := false
		if h != nil {
			for _, a := range h.BoundAddrs {
				found = found || a == e.EverBound[k]
			}
		}
		if !found {
			var got []string
			if h != nil {
				got = h.BoundAddrs
			}
			failf("host %s never bound %s (bound %v)", k, e.EverBound[k], got)
		}
	}
	holders := map[string]int{}
	for _, h := range r.HostDetail {
		if h.Addr != "" {
			holders[h.Addr]++
		}
	}
	for _, a := range sortedKeys(e.Holders) {
		if holders[a] != e.Holders[a] {
			failf("%s is held by %d hosts, want %d", a, holders[a], e.Holders[a])
		}
	}
	if e.Quiet != nil && r.Quiet != *e.Quiet {
		failf("quiet is %v, want %v", r.Quiet, *e.Quiet)
	}
	return fails
}

func addrOf(h *HostReport) string {
	if h == nil {
		return "(no such host)"
	}
	return h.Addr
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return strings.Compare(keys[i], keys[j]) < 0
	})
	return keys
}
