package sim

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim/segment"
)

// Defaults and limits of Config, HostConfig and ActorConfig.
const (
	DefaultDuration  = 10 * time.Minute
	MaxDuration      = 30 * 24 * time.Hour
	DefaultQueueSize = 16
	MaxQueueSize     = 4096
	MaxHosts         = 1 << 20
	MaxActors        = 1 << 10
)

// DefaultStart is the virtual wall-clock time at which a simulation with a
// zero Config.Start begins (fixed and UTC, so that runs do not depend on the
// machine's clock or time zone).
var DefaultStart = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// ErrInvalid is wrapped by every configuration error. It is the
// segment's: a bad link model is a bad simulation.
var ErrInvalid = segment.ErrInvalid

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
	Link segment.LinkModel
	// Unfiltered delivers every broadcast frame to every host, as a dumb
	// hub would and as a host without a kernel ARP filter sees them. The
	// default (false) delivers a frame only to the hosts it concerns; see
	// the package doc for why the outcome is the same.
	Unfiltered bool
	// QueueSize is the capacity of each host's outbound channel queue,
	// 1..MaxQueueSize; zero means DefaultQueueSize. The segment drains a host's
	// queue after every step of that host, so it never holds more than one
	// step's frames.
	QueueSize int
	// PCAP, if set, receives a pcap file (nanosecond timestamps, Ethernet
	// link type) of every frame put on the segment, with virtual
	// timestamps.
	PCAP io.Writer
	// Trace, if set, receives a text trace of the hosts in TraceHosts (all
	// hosts if TraceHosts is nil): events and, as TraceFrames says, the
	// frames they sent and received.
	Trace       io.Writer
	TraceHosts  []int
	TraceFrames TraceFrames
	// Progress, if set, receives a one-line progress report every
	// ProgressEvery of wall time (default 1s) while Run runs.
	Progress      io.Writer
	ProgressEvery time.Duration
	// FullStacks builds every host as stack.New does, with gVisor's
	// neighbour cache and ICMP and UDP, so that an embedder may send IP
	// traffic between hosts (Stack); such runs should be Unfiltered. By
	// default hosts carry ARP only, which changes nothing a run records
	// and costs a third of the memory (see the package doc).
	FullStacks bool
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
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
	c.Link = c.Link.WithDefaults()
	return c
}

// Validate checks c with its defaults applied and reports the first
// out-of-range field, naming it, its value and the accepted range.
func (c Config) Validate() error {
	c = c.WithDefaults()
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
	// DHCP runs a DHCP client first, link-local as its fallback after
	// LinkLocalAfter without a lease (zero: stack.DefaultLinkLocalAfter).
	DHCP           bool
	LinkLocalAfter time.Duration
}

// Validate reports the first invalid field, naming it and its value. The
// engine's own rules (autoip.Config.Validate) check what the host hands
// its engine.
func (h HostConfig) Validate() error {
	if !h.MAC.IsZero() && !h.MAC.IsUnicast() {
		return fmt.Errorf("%w: MAC %v is not unicast", ErrInvalid, h.MAC)
	}
	if h.Static.IsValid() && !autoip.InRange(h.Static) {
		return fmt.Errorf("%w: static address %v is outside %v-%v", ErrInvalid, h.Static, autoip.FirstAddr, autoip.LastAddr)
	}
	hw := h.MAC
	if hw.IsZero() {
		hw = hostMAC(0, 0) // the default MAC is unicast
	}
	ecfg := autoip.Config{HW: hw, Initial: h.Initial, Timing: h.Timing, LinkUpDelay: h.LinkUpDelay, Defend: h.Defend}
	if err := ecfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if h.Start < 0 || h.Start > MaxDuration {
		return fmt.Errorf("%w: start time %v is out of range 0..%v", ErrInvalid, h.Start, MaxDuration)
	}
	return segment.CheckProbability("host echo", h.Echo)
}

// TraceFrames says which frames the trace shows besides the events.
type TraceFrames uint8

// What the trace shows.
const (
	TraceSentAndReceived TraceFrames = iota // every frame a traced host sends or receives
	TraceSent                               // the frames it sends
	TraceNoFrames                           // events only
)

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
	// ActorDHCPServer is a DHCP server (package dhcptest) handing out
	// PoolSize addresses from PoolStart for Lease each, from ServerIP; it
	// answers from From until Until (a server that dies mid-run).
	ActorDHCPServer
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
	case ActorDHCPServer:
		return "dhcp-server"
	}
	return fmt.Sprintf("actor(%d)", uint8(k))
}

// ParseActorKind parses the names String returns.
func ParseActorKind(s string) (ActorKind, error) {
	for k := ActorProxyARP; k <= ActorDHCPServer; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: actor kind %q: want proxy-arp, probe-denier, usurper, malformed or dhcp-server", ErrInvalid, s)
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
	// 0..segment.MaxDelay; zero means 1ms for the usurper and none for the others.
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
	// The DHCP server's address, pool and lease time (defaults
	// 10.0.0.1, 10.0.0.10, 100 addresses, 10 minutes).
	ServerIP  netip.Addr
	PoolStart netip.Addr
	PoolSize  int
	Lease     time.Duration
}

// WithDefaults returns a with the zero fields of its kind set to their
// defaults.
func (a ActorConfig) WithDefaults() ActorConfig {
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
	if a.Kind == ActorDHCPServer {
		if !a.ServerIP.IsValid() {
			a.ServerIP = netip.AddrFrom4([4]byte{10, 0, 0, 1})
		}
		if !a.PoolStart.IsValid() {
			a.PoolStart = netip.AddrFrom4([4]byte{10, 0, 0, 10})
		}
		if a.PoolSize == 0 {
			a.PoolSize = 100
		}
		if a.Lease == 0 {
			a.Lease = 10 * time.Minute
		}
	}
	return a
}

// Validate reports the first invalid field of a with its defaults
// applied, naming it and its value.
func (a ActorConfig) Validate() error {
	a = a.WithDefaults()
	if a.Kind < ActorProxyARP || a.Kind > ActorDHCPServer {
		return fmt.Errorf("%w: actor kind %d unknown", ErrInvalid, a.Kind)
	}
	if !a.MAC.IsZero() && !a.MAC.IsUnicast() {
		return fmt.Errorf("%w: actor MAC %v is not unicast", ErrInvalid, a.MAC)
	}
	if a.From < 0 || a.Until < 0 || (a.Until != 0 && a.Until < a.From) {
		return fmt.Errorf("%w: actor active window %v..%v is not a forward interval", ErrInvalid, a.From, a.Until)
	}
	if a.Delay < 0 || a.Delay > segment.MaxDelay {
		return fmt.Errorf("%w: actor delay %v is out of range 0..%v", ErrInvalid, a.Delay, segment.MaxDelay)
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
	if a.Kind == ActorDHCPServer {
		if !a.ServerIP.Is4() || !a.ServerIP.IsGlobalUnicast() || !a.PoolStart.Is4() || !a.PoolStart.IsGlobalUnicast() {
			return fmt.Errorf("%w: DHCP server %v or pool start %v is not a routable IPv4 unicast address", ErrInvalid, a.ServerIP, a.PoolStart)
		}
		if a.PoolSize < 1 || a.PoolSize > 65536 {
			return fmt.Errorf("%w: DHCP pool size %d is out of range 1..65536", ErrInvalid, a.PoolSize)
		}
		if a.Lease < time.Second || a.Lease > 24*time.Hour {
			return fmt.Errorf("%w: DHCP lease %v is out of range 1s..24h", ErrInvalid, a.Lease)
		}
	}
	return nil
}
