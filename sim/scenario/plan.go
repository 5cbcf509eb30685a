package scenario

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim"
)

// Validation and planning: a scenario resolved into the configurations of
// its simulation, every error naming the field that caused it.

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
	h.DHCP = h.DHCP || d.DHCP
	if h.LinkLocalAfter == 0 {
		h.LinkLocalAfter = d.LinkLocalAfter
	}
	return h
}

// plan is a scenario resolved into configurations.
type plan struct {
	cfg    sim.Config
	hosts  []sim.HostConfig
	actors []sim.ActorConfig
	check  sim.CheckOptions
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
	p := &plan{cfg: sim.Config{
		Name: sc.Name, Seed: sc.Seed, Duration: time.Duration(sc.Duration), Unfiltered: sc.Unfiltered,
		QueueSize: sc.Queue, Link: sc.Link.Model(),
	}}
	p.cfg = p.cfg.WithDefaults()
	if err := p.cfg.Validate(); err != nil {
		return nil, err
	}
	if len(sc.Hosts) == 0 {
		return nil, fmt.Errorf("%w: no hosts", sim.ErrInvalid)
	}
	if n := sc.NumHosts(); n > sim.MaxHosts {
		return nil, fmt.Errorf("%w: %d hosts, at most %d", sim.ErrInvalid, n, sim.MaxHosts)
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
		if err := ac.Validate(); err != nil {
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
func (hs HostSpec) expand(where string, seed uint64, first int) ([]sim.HostConfig, error) {
	n := hs.Count
	if n == 0 {
		n = 1
	}
	if n < 0 {
		return nil, fmt.Errorf("%s: %w: count %d is negative", where, sim.ErrInvalid, n)
	}
	var base sim.HostConfig
	var err error
	var mac acd.MAC
	if hs.MAC != "" {
		if mac, err = acd.ParseMAC(hs.MAC); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", where, sim.ErrInvalid, err)
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
			return nil, fmt.Errorf("%s: %w: a static incumbent group must have count 1, not %d", where, sim.ErrInvalid, n)
		}
		if base.Static, err = parseAddr("static", hs.Static); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	base.Announce = hs.Announce
	if base.Timing, err = hs.Timing.Timing(); err != nil {
		return nil, fmt.Errorf("%s: %w: timing: %w", where, sim.ErrInvalid, err)
	}
	if hs.Defend != "" {
		if base.Defend, err = acd.ParseDefendPolicy(hs.Defend); err != nil {
			return nil, fmt.Errorf("%s: %w: %w", where, sim.ErrInvalid, err)
		}
	}
	base.LinkUpDelay = time.Duration(hs.LinkUpDelay)
	base.Echo = hs.Echo
	base.DHCP, base.LinkLocalAfter = hs.DHCP, time.Duration(hs.LinkLocalAfter)
	if base.LinkLocalAfter < 0 || base.LinkLocalAfter > time.Hour {
		return nil, fmt.Errorf("%s: %w: link_local_after %v is out of range 0..1h", where, sim.ErrInvalid, base.LinkLocalAfter)
	}
	if hs.At < 0 {
		return nil, fmt.Errorf("%s: %w: at %v is negative", where, sim.ErrInvalid, time.Duration(hs.At))
	}
	switch hs.Start {
	case "", "all":
	case "staggered":
		if hs.Interval <= 0 {
			return nil, fmt.Errorf("%s: %w: staggered start needs an interval > 0, not %v", where, sim.ErrInvalid, time.Duration(hs.Interval))
		}
	case "random":
		if hs.Window <= 0 {
			return nil, fmt.Errorf("%s: %w: random start needs a window > 0, not %v", where, sim.ErrInvalid, time.Duration(hs.Window))
		}
	default:
		return nil, fmt.Errorf("%s: %w: start %q: want all, staggered or random", where, sim.ErrInvalid, hs.Start)
	}
	out := make([]sim.HostConfig, n)
	for k := range out {
		hc := base
		idx := first + k
		switch hs.Start {
		case "staggered":
			hc.Start = time.Duration(hs.At) + time.Duration(k)*time.Duration(hs.Interval)
		case "random":
			hc.Start = time.Duration(hs.At) + sim.ArrivalOffset(seed, idx, time.Duration(hs.Window))
		default:
			hc.Start = time.Duration(hs.At)
		}
		if !mac.IsZero() {
			hc.MAC = addMAC(mac, k)
		}
		if err := hc.Validate(); err != nil {
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
		return netip.Addr{}, fmt.Errorf("%w: %s address %q is not an IPv4 address", sim.ErrInvalid, what, s)
	}
	if !autoip.InRange(a) {
		return netip.Addr{}, fmt.Errorf("%w: %s address %v is outside %v-%v", sim.ErrInvalid, what, a, autoip.FirstAddr, autoip.LastAddr)
	}
	return a, nil
}

func (as ActorSpec) config() (sim.ActorConfig, error) {
	k, err := sim.ParseActorKind(as.Kind)
	if err != nil {
		return sim.ActorConfig{}, err
	}
	ac := sim.ActorConfig{
		Kind: k, From: time.Duration(as.From), Until: time.Duration(as.Until), Delay: time.Duration(as.Delay),
		IgnoreProbes: as.IgnoreProbes, IgnoreAnnouncements: as.IgnoreAnnouncements,
		Repeat: as.Repeat, Gap: time.Duration(as.Gap), Once: as.Once, Interval: time.Duration(as.Interval), Count: as.Count,
		PoolSize: as.PoolSize, Lease: time.Duration(as.Lease),
	}
	for _, f := range []struct {
		name, v string
		dst     *netip.Addr
	}{{"server_ip", as.ServerIP, &ac.ServerIP}, {"pool_start", as.PoolStart, &ac.PoolStart}} {
		if f.v == "" {
			continue
		}
		a, err := netip.ParseAddr(f.v)
		if err != nil || !a.Is4() {
			return sim.ActorConfig{}, fmt.Errorf("%w: %s %q is not an IPv4 address", sim.ErrInvalid, f.name, f.v)
		}
		*f.dst = a
	}
	if as.MAC != "" {
		if ac.MAC, err = acd.ParseMAC(as.MAC); err != nil {
			return sim.ActorConfig{}, fmt.Errorf("%w: %w", sim.ErrInvalid, err)
		}
	}
	return ac, nil
}

func (ev EventSpec) validate(hosts int, duration time.Duration) error {
	if ev.At < 0 {
		return fmt.Errorf("%w: at %v is negative", sim.ErrInvalid, time.Duration(ev.At))
	}
	checkHosts := func(l []int) error {
		for _, h := range l {
			if h < 0 || h >= hosts {
				return fmt.Errorf("%w: host %d out of range 0..%d", sim.ErrInvalid, h, hosts-1)
			}
		}
		return nil
	}
	needHosts := func() error {
		if len(ev.Hosts) == 0 && !ev.All {
			return fmt.Errorf("%w: %s needs hosts or all", sim.ErrInvalid, ev.Op)
		}
		return checkHosts(ev.Hosts)
	}
	if ev.For < 0 || ev.For > Duration(sim.MaxDuration) {
		return fmt.Errorf("%w: for %v is out of range 0..%v", sim.ErrInvalid, time.Duration(ev.For), sim.MaxDuration)
	}
	switch ev.Op {
	case "link-down", "link-up", "flap", "reannounce", "restart":
		if err := needHosts(); err != nil {
			return err
		}
		if ev.Op == "restart" && ev.MAC != "" {
			if len(ev.Hosts) != 1 || ev.All {
				return fmt.Errorf("%w: restart with a MAC needs exactly one host", sim.ErrInvalid)
			}
			m, err := acd.ParseMAC(ev.MAC)
			if err != nil {
				return fmt.Errorf("%w: %w", sim.ErrInvalid, err)
			}
			if !m.IsUnicast() {
				return fmt.Errorf("%w: restart MAC %v is not a unicast address", sim.ErrInvalid, m)
			}
		}
	case "move":
		if err := needHosts(); err != nil {
			return err
		}
		if ev.Partition < 0 || ev.Partition > sim.MaxHosts {
			return fmt.Errorf("%w: partition %d out of range 0..%d", sim.ErrInvalid, ev.Partition, sim.MaxHosts)
		}
	case "partition":
		if len(ev.Groups) == 0 {
			return fmt.Errorf("%w: partition needs groups", sim.ErrInvalid)
		}
		seen := map[int]bool{}
		for _, g := range ev.Groups {
			if err := checkHosts(g); err != nil {
				return err
			}
			for _, h := range g {
				if seen[h] {
					return fmt.Errorf("%w: host %d is in two groups", sim.ErrInvalid, h)
				}
				seen[h] = true
			}
		}
	case "merge":
	case "link":
		if ev.Link == nil {
			return fmt.Errorf("%w: link needs a link model", sim.ErrInvalid)
		}
		if err := ev.Link.Model().Validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown op %q: want link-down, link-up, flap, partition, merge, move, restart, reannounce or link", sim.ErrInvalid, ev.Op)
	}
	return nil
}
