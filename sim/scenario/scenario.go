// Package scenario is the simulator's scenario format: a simulation
// described as JSON (hosts, actors, faults, scheduled operations and the
// expected outcome), parsed and checked with every offending field named,
// turned into a sim.Sim, run, and compared with its expectations. The
// library in ../testdata/scenarios reproduces the bug classes other
// implementations have had.
package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// Scenario is a simulation described as data: the JSON scenario file
// format (see package sim's doc for an example). Durations are Go duration
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
func (l LinkSpec) Model() segment.LinkModel {
	return segment.LinkModel{
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
	// DHCP runs a DHCP client first, link-local after LinkLocalAfter
	// without a lease (default 10s).
	DHCP           bool     `json:"dhcp,omitempty"`
	LinkLocalAfter Duration `json:"link_local_after,omitempty"`
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

// ActorSpec is ActorConfig in a scenario file; Kind is "proxy-arp",
// "probe-denier", "usurper", "malformed" or "dhcp-server".
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
	// dhcp-server: its address, first pool address, pool size and lease.
	ServerIP  string   `json:"server_ip,omitempty"`
	PoolStart string   `json:"pool_start,omitempty"`
	PoolSize  int      `json:"pool_size,omitempty"`
	Lease     Duration `json:"lease,omitempty"`
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

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	sc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", filepath.Base(path), err)
	}
	return sc, nil
}

// Parse decodes and validates a scenario.
func Parse(b []byte) (*Scenario, error) {
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
