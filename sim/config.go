package sim

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// Defaults and limits of Config, HostConfig and ActorConfig.
const (
	DefaultDuration  = 10 * time.Minute
	MaxDuration      = 30 * 24 * time.Hour
	DefaultQueueSize = 16
	MaxQueueSize     = 4096
	MaxDelay         = time.Minute // latency, jitter and the other link delays
	MaxHosts         = 1 << 20
	MaxActors        = 1 << 10
)

// DefaultStart is the virtual wall-clock time at which a simulation with a
// zero Config.Start begins (fixed and UTC, so that runs do not depend on the
// machine's clock or time zone).
var DefaultStart = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid simulation configuration")

// Config configures a simulation.
type Config struct {
	// Name labels the run in reports.
	Name string
	// Seed is the only source of entropy: host delays, netstack
	// randomness, arrival times, actors' choices and fault decisions all
	// derive from it (see rand.go).
	Seed uint64
	// Start is the virtual time at which the run begins; zero means
	// DefaultStart.
	Start time.Time
	// Duration bounds the simulated time: Run stops at Start+Duration if the
	// segment has not gone quiet before. Zero means DefaultDuration.
	Duration time.Duration
	// Link is the segment's fault model at the start; SetLinkModel changes
	// it during a run.
	Link LinkModel
	// Unfiltered delivers every broadcast frame to every host, as a dumb
	// hub would and as a host without a kernel ARP filter sees them. The
	// default (false) delivers a frame only to the hosts it concerns; see
	// the package doc for why the outcome is the same.
	Unfiltered bool
	// QueueSize is the capacity of each host's outbound channel queue,
	// 1..MaxQueueSize; zero means DefaultQueueSize. The hub drains a host's
	// queue after every step of that host, so it never holds more than one
	// step's frames.
	QueueSize int
	// PCAP, if set, receives a pcap file (nanosecond timestamps, Ethernet
	// link type) of every frame put on the segment, with virtual
	// timestamps.
	PCAP io.Writer
	// Trace, if set, receives a text trace of the hosts in TraceHosts (all
	// hosts if TraceHosts is nil): events, frames sent and received.
	Trace      io.Writer
	TraceHosts []int
	// Progress, if set, receives a one-line progress report every
	// ProgressEvery of wall time (default 1s) while Run runs.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// LinkModel describes the segment's delivery faults. The zero value is an
// ideal segment: every frame reaches every host it concerns at once.
//
// Delay, jitter, reordering and duplication act on the frame (the segment is
// a shared medium: a frame reaches all receivers at the same time); loss is
// decided per receiver. Every decision is a hash of (seed, frame number,
// receiver), never a draw from a shared generator.
type LinkModel struct {
	// Latency is added to every frame's delivery, 0..MaxDelay.
	Latency time.Duration
	// Jitter adds a uniform random delay in [0, Jitter], 0..MaxDelay.
	Jitter time.Duration
	// Loss is the probability that a receiver misses a frame, 0..1.
	Loss float64
	// Dup is the probability that a frame is delivered a second time,
	// DupDelay (default 100µs) after the first copy, 0..1.
	Dup      float64
	DupDelay time.Duration
	// Reorder is the probability that a frame is held back by ReorderDelay
	// (default 5ms), letting later frames overtake it, 0..1.
	Reorder      float64
	ReorderDelay time.Duration
	// Echo is the probability that a frame is also delivered back to its
	// sender EchoDelay (default 10µs) later, as repeaters, some Wi-Fi
	// access points and some USB links do; HostConfig.Echo adds a
	// per-host probability. 0..1.
	Echo      float64
	EchoDelay time.Duration
}

func (m LinkModel) withDefaults() LinkModel {
	if m.DupDelay == 0 {
		m.DupDelay = 100 * time.Microsecond
	}
	if m.ReorderDelay == 0 {
		m.ReorderDelay = 5 * time.Millisecond
	}
	if m.EchoDelay == 0 {
		m.EchoDelay = 10 * time.Microsecond
	}
	return m
}

// Validate reports the first out-of-range field, naming it, its value and
// the accepted range.
func (m LinkModel) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"latency", m.Latency}, {"jitter", m.Jitter}, {"dup delay", m.DupDelay},
		{"reorder delay", m.ReorderDelay}, {"echo delay", m.EchoDelay},
	} {
		if d.v < 0 || d.v > MaxDelay {
			return fmt.Errorf("%w: link %s %v is out of range 0..%v", ErrInvalid, d.name, d.v, MaxDelay)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", m.Loss}, {"dup", m.Dup}, {"reorder", m.Reorder}, {"echo", m.Echo}} {
		if err := checkProb("link "+p.name, p.v); err != nil {
			return err
		}
	}
	return nil
}

func checkProb(name string, v float64) error {
	if !(v >= 0 && v <= 1) { // also catches NaN
		return fmt.Errorf("%w: %s %v is out of range 0..1", ErrInvalid, name, v)
	}
	return nil
}

// ideal reports whether frames can be delivered at once, without the heap.
func (m LinkModel) ideal() bool {
	return m.Latency == 0 && m.Jitter == 0 && m.Dup == 0 && m.Reorder == 0 && m.Echo == 0
}

func (c Config) withDefaults() Config {
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = time.Second
	}
	c.Link = c.Link.withDefaults()
	return c
}

func (c Config) validate() error {
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("%w: duration %v is out of range (0, %v]", ErrInvalid, c.Duration, MaxDuration)
	}
	if c.QueueSize < 1 || c.QueueSize > MaxQueueSize {
		return fmt.Errorf("%w: queue size %d is out of range 1..%d", ErrInvalid, c.QueueSize, MaxQueueSize)
	}
	if c.ProgressEvery < 0 {
		return fmt.Errorf("%w: progress interval %v is negative", ErrInvalid, c.ProgressEvery)
	}
	return c.Link.Validate()
}

// HostConfig describes one simulated host: a gVisor netstack on a channel
// link with the project's Shim and, unless Static is set, an AutoIP client.
type HostConfig struct {
	// MAC is the host's hardware address. Zero means 02:00:ii:ii:ii:ii
	// (the host index, big-endian); a restart with a new MAC puts the
	// incarnation number in the second byte.
	MAC acd.MAC
	// EngineSeed keys the host's candidate sequence. Zero means a seed
	// derived from (Config.Seed, host index, incarnation), unless
	// SeedFromMAC is set, in which case the engine uses
	// autoip.SeedFromMAC, as a real daemon does. Hosts with equal seeds try
	// the same addresses in the same order.
	EngineSeed  uint64
	SeedFromMAC bool
	// Initial is tried first (autoip.Config.Initial).
	Initial netip.Addr
	// Timing holds the protocol constants; zero fields take RFC defaults.
	Timing acd.Timing
	// Defend is the policy on conflicts while bound.
	Defend acd.DefendPolicy
	// LinkUpDelay is waited after start and link-up before PROBE_WAIT.
	LinkUpDelay time.Duration
	// Start is when the host boots, counted from the start of the run.
	Start time.Duration
	// Static, if valid, makes the host a static incumbent: a netstack that
	// holds this address (169.254.1.0-169.254.254.255, /16) from boot and
	// answers ARP for it, without AutoIP. Announce makes it send one ARP
	// announcement at boot.
	Static   netip.Addr
	Announce bool
	// Echo is the probability that a frame this host sends comes back to
	// it (its link echoes), 0..1, on top of LinkModel.Echo.
	Echo float64
}

func (h HostConfig) validate() error {
	if !h.MAC.IsZero() && !h.MAC.IsUnicast() {
		return fmt.Errorf("%w: MAC %v is not unicast", ErrInvalid, h.MAC)
	}
	if h.Initial.IsValid() && !autoip.InRange(h.Initial) {
		return fmt.Errorf("%w: initial address %v is outside %v-%v", ErrInvalid, h.Initial, autoip.FirstAddr, autoip.LastAddr)
	}
	if h.Static.IsValid() && !autoip.InRange(h.Static) {
		return fmt.Errorf("%w: static address %v is outside %v-%v", ErrInvalid, h.Static, autoip.FirstAddr, autoip.LastAddr)
	}
	if err := h.Timing.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if h.Defend == acd.DefendForever {
		return fmt.Errorf("%w: defend policy forever is not allowed for link-local hosts (RFC 3927 §2.5 allows abandon or once)", ErrInvalid)
	}
	if h.Defend > acd.DefendForever {
		return fmt.Errorf("%w: defend policy %d unknown", ErrInvalid, h.Defend)
	}
	if h.LinkUpDelay < 0 || h.LinkUpDelay > autoip.MaxLinkUpDelay {
		return fmt.Errorf("%w: link-up delay %v is out of range 0..%v", ErrInvalid, h.LinkUpDelay, autoip.MaxLinkUpDelay)
	}
	if h.Start < 0 || h.Start > MaxDuration {
		return fmt.Errorf("%w: start time %v is out of range 0..%v", ErrInvalid, h.Start, MaxDuration)
	}
	return checkProb("host echo", h.Echo)
}

// ActorKind names a hostile or broken device on the segment.
type ActorKind uint8

// Actor kinds.
const (
	_ ActorKind = iota
	// ActorProxyARP answers ARP requests for any address with its own MAC,
	// as a misconfigured router with proxy ARP does: every probe and, unless
	// IgnoreAnnouncements, every announcement gets a unicast reply claiming
	// the address (IgnoreProbes spares probes).
	ActorProxyARP
	// ActorProbeDenier answers every ARP probe with a broadcast reply
	// claiming the probed address, so no candidate ever survives probing.
	ActorProbeDenier
	// ActorUsurper waits for announcements and then announces the same
	// address itself, Repeat times Gap apart, Delay after the announcement
	// it saw: a rogue announcing other hosts' addresses. It attacks an
	// address again when it is announced after an attack ended (a
	// defence is an announcement), unless Once.
	ActorUsurper
	// ActorMalformed sends a malformed or impossible frame every Interval:
	// truncated ARP, wrong hardware or protocol type, unknown opcode, a
	// broadcast sender address, a runt, a non-ARP EtherType.
	ActorMalformed
)

// String returns the kind's name as scenario files spell it.
func (k ActorKind) String() string {
	switch k {
	case ActorProxyARP:
		return "proxy-arp"
	case ActorProbeDenier:
		return "probe-denier"
	case ActorUsurper:
		return "usurper"
	case ActorMalformed:
		return "malformed"
	}
	return fmt.Sprintf("actor(%d)", uint8(k))
}

// ParseActorKind parses the names String returns.
func ParseActorKind(s string) (ActorKind, error) {
	for k := ActorProxyARP; k <= ActorMalformed; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: actor kind %q: want proxy-arp, probe-denier, usurper or malformed", ErrInvalid, s)
}

// ActorConfig describes an actor: a scripted device on the segment that
// is not a netstack. Actors see every frame in their partition group
// (they are never filtered) and send raw frames.
type ActorConfig struct {
	Kind ActorKind
	// MAC is the actor's hardware address; zero means 06:00:ii:ii:ii:ii
	// (the actor index).
	MAC acd.MAC
	// From and Until bound the time the actor is active; Until zero means
	// forever.
	From, Until time.Duration
	// Delay is the reaction time (proxy-arp, probe-denier, usurper),
	// 0..MaxDelay; zero means 1ms for the usurper and none for the others.
	Delay time.Duration
	// IgnoreProbes and IgnoreAnnouncements restrict the proxy-arp actor.
	IgnoreProbes, IgnoreAnnouncements bool
	// Repeat and Gap shape the usurper's attack on each address
	// (defaults 2 and 1s: two conflicts within DEFEND_INTERVAL, so that a
	// DefendOnce host gives the address up).
	Repeat int
	Gap    time.Duration
	// Once makes the usurper attack each address only once.
	Once bool
	// Interval is the malformed actor's period (default 1s).
	Interval time.Duration
	// Count caps what the actor sends (usurper: attacks, malformed:
	// frames, others: replies); zero means no cap.
	Count int
}

func (a ActorConfig) withDefaults() ActorConfig {
	if a.Kind == ActorUsurper {
		if a.Delay == 0 {
			a.Delay = time.Millisecond
		}
		if a.Repeat == 0 {
			a.Repeat = 2
		}
		if a.Gap == 0 {
			a.Gap = time.Second
		}
	}
	if a.Kind == ActorMalformed && a.Interval == 0 {
		a.Interval = time.Second
	}
	return a
}

func (a ActorConfig) validate() error {
	if a.Kind < ActorProxyARP || a.Kind > ActorMalformed {
		return fmt.Errorf("%w: actor kind %d unknown", ErrInvalid, a.Kind)
	}
	if !a.MAC.IsZero() && !a.MAC.IsUnicast() {
		return fmt.Errorf("%w: actor MAC %v is not unicast", ErrInvalid, a.MAC)
	}
	if a.From < 0 || a.Until < 0 || (a.Until != 0 && a.Until < a.From) {
		return fmt.Errorf("%w: actor active window %v..%v is not a forward interval", ErrInvalid, a.From, a.Until)
	}
	if a.Delay < 0 || a.Delay > MaxDelay {
		return fmt.Errorf("%w: actor delay %v is out of range 0..%v", ErrInvalid, a.Delay, MaxDelay)
	}
	if a.Repeat < 0 || a.Repeat > 1000 {
		return fmt.Errorf("%w: actor repeat %d is out of range 0..1000", ErrInvalid, a.Repeat)
	}
	if a.Gap < 0 || a.Gap > time.Hour {
		return fmt.Errorf("%w: actor gap %v is out of range 0..1h", ErrInvalid, a.Gap)
	}
	if a.Kind == ActorMalformed && (a.Interval < time.Microsecond || a.Interval > time.Hour) {
		return fmt.Errorf("%w: malformed actor interval %v is out of range 1µs..1h", ErrInvalid, a.Interval)
	}
	if a.Count < 0 {
		return fmt.Errorf("%w: actor count %d is negative", ErrInvalid, a.Count)
	}
	return nil
}
