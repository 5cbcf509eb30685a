package dhcp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// State is where the client is (RFC 2131 figure 5).
type State uint8

// Client states.
const (
	StateStopped    State = iota // not started, or stopped
	StateInit                    // waiting to send the first DHCPDISCOVER
	StateSelecting               // DHCPDISCOVER sent, waiting for an offer
	StateRequesting              // DHCPREQUEST for an offer sent
	StateRebooting               // DHCPREQUEST for a saved lease sent (INIT-REBOOT)
	StateChecking                // acknowledged; the address is being probed (RFC 5227)
	StateDeclined                // the address was in use; waiting before INIT
	StateBound                   // the lease is configured
	StateRenewing                // T1 passed; DHCPREQUEST unicast to the server
	StateRebinding               // T2 passed; DHCPREQUEST broadcast
	StateLinkDown                // started; the link is down
)

// String returns the state's name.
func (s State) String() string {
	return [...]string{"stopped", "init", "selecting", "requesting", "rebooting", "checking", "declined", "bound", "renewing", "rebinding", "link-down"}[s]
}

// HasLease reports whether a lease is configured in this state.
func (s State) HasLease() bool { return s == StateBound || s == StateRenewing || s == StateRebinding }

// Defaults for Config fields left zero.
const (
	DefaultInitDelay     = time.Second
	DefaultRetransmit    = 4 * time.Second
	MaxRetransmit        = 64 * time.Second
	DefaultRequestTries  = 5 // the first DHCPREQUEST and four retransmissions
	DeclineWait          = 10 * time.Second
	MinRenewRetransmit   = 60 * time.Second
	maxFuzzPercent       = 5
	autoconfQuietRetries = 4
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid DHCP configuration")

// Config configures a Client.
type Config struct {
	// HW is the interface's hardware address (chaddr). Required.
	HW [6]byte
	// ClientID is option 61; nil means hardware type 1 and HW (RFC 2132
	// §9.14).
	ClientID []byte
	// Hostname, if set, is sent as option 12.
	Hostname string
	// Saved is the lease of a previous run: if it has not expired at
	// Start, the client asks for it again first (INIT-REBOOT).
	Saved Lease
	// InitDelay bounds the random wait before the first DHCPDISCOVER
	// (0: DefaultInitDelay; see the package doc). At most 10 s.
	InitDelay time.Duration
	// Retransmit is the first retransmission delay (0: 4 s, RFC 2131
	// §4.1); later ones double up to 64 s. Tests shorten it.
	Retransmit time.Duration
	// AutoConfigure sends option 116 in DHCPDISCOVER: this host can
	// configure a link-local address when no server answers (RFC 2563).
	AutoConfigure bool
	// Rand draws delays and transaction IDs. Nil: a PCG seeded from HW.
	Rand *rand.Rand
}

// Lease is an address leased from a server, with what came with it.
type Lease struct {
	Addr     netip.Prefix // address and subnet mask
	Server   netip.Addr   // server identifier (option 54)
	ServerHW [6]byte      // where unicast messages to the server go: the Ethernet source of its DHCPACK
	Routers  []netip.Addr // option 3
	DNS      []netip.Addr // option 6
	Domain   string       // option 15
	Acquired time.Time    // when the DHCPREQUEST that obtained it was sent (RFC 2131 §4.4.1)
	Duration time.Duration
	T1, T2   time.Duration // from Acquired
	Options  []Option      // every option of the DHCPACK, for hooks and status
}

// IsZero reports whether l is no lease.
func (l Lease) IsZero() bool { return !l.Addr.IsValid() }

// Expiry returns when the lease ends (the zero time for an infinite one).
func (l Lease) Expiry() time.Time {
	if l.Duration == InfiniteLease {
		return time.Time{}
	}
	return l.Acquired.Add(l.Duration)
}

// ExpiredAt reports whether the lease has ended at now.
func (l Lease) ExpiredAt(now time.Time) bool {
	e := l.Expiry()
	return l.IsZero() || (!e.IsZero() && !now.Before(e))
}

// OutputKind says what an Output asks of the caller.
type OutputKind uint8

// Output kinds.
const (
	// OutSend: send Message from port 68 to To:67, in an Ethernet frame to
	// ToHW (broadcast for a broadcast To), from the leased address if
	// Message.CIAddr is set, else from 0.0.0.0.
	OutSend OutputKind = iota + 1
	// OutCheck: probe Lease.Addr with RFC 5227 and call HandleCheck.
	OutCheck
	// OutConfigure: put Lease (address, subnet route, routers) on the
	// interface; it replaces any earlier lease.
	OutConfigure
	// OutUnconfigure: remove Lease from the interface at once.
	OutUnconfigure
	// OutEvent: report Event.
	OutEvent
	// OutSaveLease: store Lease (zero: forget the saved lease).
	OutSaveLease
)

// Output is one thing the client asks of its caller.
type Output struct {
	Kind    OutputKind
	Message Message    // OutSend
	To      netip.Addr // OutSend
	ToHW    [6]byte    // OutSend
	Lease   Lease      // OutCheck, OutConfigure, OutUnconfigure, OutSaveLease
	Event   Event      // OutEvent
}

// EventKind names an event.
type EventKind uint8

// Event kinds.
const (
	EventLeaseBound    EventKind = iota + 1 // a lease was configured
	EventLeaseRenewed                       // the lease was extended
	EventLeaseLost                          // the lease ended: Reason says why
	EventDeclined                           // an offered address was in use; declined
	EventAutoConfigure                      // RFC 2563: Allowed says whether link-local may run
)

// String returns the event's name as hooks see it.
func (k EventKind) String() string {
	switch k {
	case EventLeaseBound:
		return "LEASE_BOUND"
	case EventLeaseRenewed:
		return "LEASE_RENEWED"
	case EventLeaseLost:
		return "LEASE_LOST"
	case EventDeclined:
		return "LEASE_DECLINED"
	case EventAutoConfigure:
		return "AUTOCONFIGURE"
	}
	return "EVENT(?)"
}

// Event reports something that happened.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Lease   Lease
	Reason  string // EventLeaseLost: expired, expired before its check ended, nak, released, conflict, link down, stopped; EventDeclined: the conflict
	Allowed bool   // EventAutoConfigure
}

// Client is the DHCP client state machine. It is not safe for concurrent
// use: one goroutine owns it and performs its outputs in order.
type Client struct {
	cfg      Config
	clientID []byte
	rng      *rand.Rand

	state    State
	deadline time.Time
	tries    int       // messages sent in this exchange
	xid      uint32    // current transaction
	began    time.Time // when this acquisition began (secs field)
	sent     time.Time // when the last DHCPREQUEST went out
	offer    Message   // the offer being requested
	offerHW  [6]byte
	pending  Lease // acknowledged, being checked (CHECKING)
	lease    Lease // configured (BOUND, RENEWING, REBINDING) or saved
	linkUp   bool
	autoconf bool // RFC 2563: link-local allowed
	quiet    int  // DHCPDISCOVERs without any offer, for RFC 2563

	out []Output
}

// NewClient validates cfg and returns a stopped client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.HW == [6]byte{} || cfg.HW[0]&1 != 0 {
		return nil, fmt.Errorf("%w: hardware address % x is not unicast", ErrInvalidConfig, cfg.HW)
	}
	if cfg.InitDelay < 0 || cfg.InitDelay > 10*time.Second {
		return nil, fmt.Errorf("%w: initial delay %v, want 0..10s", ErrInvalidConfig, cfg.InitDelay)
	}
	if cfg.Retransmit < 0 || cfg.Retransmit > MaxRetransmit {
		return nil, fmt.Errorf("%w: retransmit %v, want 0..%v", ErrInvalidConfig, cfg.Retransmit, MaxRetransmit)
	}
	if len(cfg.ClientID) > 255 || len(cfg.Hostname) > 255 {
		return nil, fmt.Errorf("%w: client ID or host name longer than 255 bytes", ErrInvalidConfig)
	}
	if cfg.InitDelay == 0 {
		cfg.InitDelay = DefaultInitDelay
	}
	if cfg.Retransmit == 0 {
		cfg.Retransmit = DefaultRetransmit
	}
	id := cfg.ClientID
	if id == nil {
		id = append([]byte{1}, cfg.HW[:]...)
	}
	rng := cfg.Rand
	if rng == nil {
		var s uint64
		for _, b := range cfg.HW {
			s = s<<8 | uint64(b)
		}
		rng = rand.New(rand.NewPCG(s, 0x64686370)) // "dhcp"
	}
	return &Client{cfg: cfg, clientID: id, rng: rng, linkUp: true, autoconf: true, lease: cfg.Saved}, nil
}

// State returns the client's state.
func (c *Client) State() State { return c.state }

// Lease returns the configured lease (zero if none).
func (c *Client) Lease() Lease {
	if c.state.HasLease() {
		return c.lease
	}
	return Lease{}
}

// AutoConfigureAllowed reports whether RFC 2563 lets link-local run.
func (c *Client) AutoConfigureAllowed() bool { return c.autoconf }

// Deadline returns when HandleTimer is next due, if ever.
func (c *Client) Deadline() (time.Time, bool) {
	switch c.state {
	case StateStopped, StateChecking, StateLinkDown:
		return time.Time{}, false
	}
	if c.deadline.IsZero() {
		return time.Time{}, false
	}
	return c.deadline, true
}

// AppendOutputs appends the pending outputs to dst in order and forgets
// them.
func (c *Client) AppendOutputs(dst []Output) []Output {
	dst = append(dst, c.out...)
	clear(c.out)
	c.out = c.out[:0]
	return dst
}

// Start begins: INIT-REBOOT with the saved lease if it has not expired,
// else INIT. Starting a started client does nothing.
func (c *Client) Start(now time.Time) {
	if c.state != StateStopped {
		return
	}
	c.begin(now)
}

func (c *Client) begin(now time.Time) {
	if !c.linkUp {
		c.state = StateLinkDown
		return
	}
	if !c.lease.IsZero() && !c.lease.ExpiredAt(now) {
		c.state = StateRebooting
		c.newExchange(now)
		c.sendRequest(now)
		return
	}
	c.lease = Lease{}
	c.enterInit(now, c.uniform(0, c.cfg.InitDelay))
}

// Stop ends the client. With release, a held lease is given back
// (DHCPRELEASE) and forgotten; without, it is kept for the next Start
// (INIT-REBOOT). Either way it is removed from the interface.
func (c *Client) Stop(now time.Time, release bool) {
	if c.state == StateStopped {
		return
	}
	if c.state.HasLease() {
		l := c.lease
		if release {
			m := c.message(Release)
			m.CIAddr = l.Addr.Addr()
			m.SetOption(OptServerID, as4(l.Server))
			c.send(m, l.Server, l.ServerHW)
			c.lease = Lease{}
			c.emit(OutSaveLease, Lease{})
			c.lost(now, l, "released")
		} else {
			c.lost(now, l, "stopped")
		}
	}
	c.state, c.deadline = StateStopped, time.Time{}
}

// SetLink reports the link going down or up. Down gives a held lease up
// (it stays saved); up starts again, with INIT-REBOOT if the lease has not
// expired.
func (c *Client) SetLink(now time.Time, up bool) {
	if c.linkUp == up {
		return
	}
	c.linkUp = up
	if c.state == StateStopped {
		return
	}
	if !up {
		if c.state.HasLease() {
			c.lost(now, c.lease, "link down")
		}
		c.state, c.deadline = StateLinkDown, time.Time{}
		return
	}
	c.begin(now)
}

// HandleMessage handles a message received on port 68, from an Ethernet
// frame whose source was srcHW. Messages that are not replies to the
// current exchange are ignored.
func (c *Client) HandleMessage(now time.Time, m Message, srcHW [6]byte) {
	if m.Op != OpReply || m.XID != c.xid || m.CHAddr != c.cfg.HW {
		return
	}
	if v, ok := m.Option(OptAutoConfigure); ok && len(v) == 1 {
		c.setAutoconf(now, v[0] != 0)
	}
	switch c.state {
	case StateSelecting:
		if m.Type != Offer || !usable(m.YIAddr) {
			return
		}
		if _, ok := m.Addr4(OptServerID); !ok {
			return
		}
		c.quiet = 0
		c.offer, c.offerHW = m, srcHW
		c.state = StateRequesting
		c.tries = 0
		c.sendRequest(now)
	case StateRequesting, StateRebooting, StateRenewing, StateRebinding:
		if c.state == StateRequesting {
			if sid, _ := m.Addr4(OptServerID); sid != c.offerServer() {
				return // another server's answer to our broadcast
			}
		}
		switch m.Type {
		case Nak:
			c.nak(now)
		case Ack:
			c.ack(now, m, srcHW)
		}
	}
}

func (c *Client) offerServer() netip.Addr {
	a, _ := c.offer.Addr4(OptServerID)
	return a
}

func usable(a netip.Addr) bool { return a.Is4() && a.IsGlobalUnicast() }

func (c *Client) nak(now time.Time) {
	if c.state.HasLease() {
		c.lost(now, c.lease, "nak")
	}
	c.lease = Lease{}
	c.emit(OutSaveLease, Lease{})
	// RFC 2131 §3.1.4 says restart; after one retransmission delay, so
	// that a server refusing every request is not asked in a tight loop.
	c.enterInit(now, c.cfg.Retransmit)
}

func (c *Client) ack(now time.Time, m Message, srcHW [6]byte) {
	l, ok := leaseFrom(m, srcHW, c.sent)
	if !ok {
		return // no usable address or lease time: ignore, as if lost
	}
	switch c.state {
	case StateRenewing, StateRebinding:
		if l.Addr.Addr() == c.lease.Addr.Addr() {
			c.lease = l
			c.state = StateBound
			c.armT1()
			c.emit(OutConfigure, l) // mask, routers may have changed
			c.emit(OutSaveLease, l)
			c.event(Event{Kind: EventLeaseRenewed, Time: now, Lease: l})
			return
		}
		// A different address: give the old one up, check the new.
		c.lost(now, c.lease, "address changed")
		c.lease = Lease{}
	}
	if c.state == StateRebooting && l.Addr.Addr() != c.lease.Addr.Addr() {
		c.lease = Lease{}
	}
	c.pending = l
	c.state, c.deadline = StateChecking, time.Time{}
	c.emit(OutCheck, l)
}

// leaseFrom builds the lease a DHCPACK grants, if it grants one.
func leaseFrom(m Message, srcHW [6]byte, sent time.Time) (Lease, bool) {
	d, ok := m.Seconds(OptLeaseTime)
	if !usable(m.YIAddr) || !ok || d == 0 {
		return Lease{}, false
	}
	server, ok := m.Addr4(OptServerID)
	if !ok {
		server = m.SIAddr
	}
	bits := classfulBits(m.YIAddr)
	if mask, ok := m.Option(OptSubnetMask); ok && len(mask) == 4 {
		if b, ok := maskBits(mask); ok {
			bits = b
		}
	}
	l := Lease{
		Addr: netip.PrefixFrom(m.YIAddr, bits), Server: server, ServerHW: srcHW,
		Routers: m.Addrs4(OptRouter), DNS: m.Addrs4(OptDNS),
		Acquired: sent, Duration: d, Options: m.Options,
	}
	if b, ok := m.Option(OptDomainName); ok {
		l.Domain = string(b)
	}
	l.T1, _ = m.Seconds(OptRenewalTime)
	l.T2, _ = m.Seconds(OptRebindingTime)
	return l, true
}

func maskBits(mask []byte) (int, bool) {
	v := uint32(mask[0])<<24 | uint32(mask[1])<<16 | uint32(mask[2])<<8 | uint32(mask[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0 && n > 0
}

// classfulBits is the mask of a's class, used when a server sends none.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

// HandleCheck gives the result of OutCheck for addr: inUse means another
// host answered for it (RFC 5227 §2.1.1), with reason saying who.
func (c *Client) HandleCheck(now time.Time, addr netip.Addr, inUse bool, reason string) {
	if c.state != StateChecking || c.pending.Addr.Addr() != addr {
		return
	}
	l := c.pending
	c.pending = Lease{}
	if inUse {
		c.decline(now, l, reason)
		return
	}
	if l.ExpiredAt(now) {
		// The check outlasted the lease (a link that stayed silent for
		// long, a stalled caller): nothing to configure; start over.
		c.lease = Lease{}
		c.emit(OutSaveLease, Lease{})
		c.event(Event{Kind: EventLeaseLost, Time: now, Lease: l, Reason: "expired before its check ended"})
		c.enterInit(now, 0)
		return
	}
	c.lease = l
	c.state = StateBound
	c.armT1()
	if c.deadline.Before(now) && !c.deadline.IsZero() {
		c.deadline = now // T1 passed during the check: renew at once
	}
	c.emit(OutConfigure, l)
	c.emit(OutSaveLease, l)
	c.event(Event{Kind: EventLeaseBound, Time: now, Lease: l})
}

// Conflict reports that the configured lease's address is in use by
// another host and has to go (RFC 5227 §2.4): it is removed, declined and
// another is requested.
func (c *Client) Conflict(now time.Time, reason string) {
	if !c.state.HasLease() {
		return
	}
	l := c.lease
	c.lost(now, l, "conflict")
	c.decline(now, l, reason)
}

func (c *Client) decline(now time.Time, l Lease, reason string) {
	m := c.message(Decline)
	m.SetOption(OptRequestedIP, as4(l.Addr.Addr()))
	m.SetOption(OptServerID, as4(l.Server))
	if reason != "" {
		m.SetOption(OptMessage, []byte(reason))
	}
	c.send(m, broadcast4, broadcastHW)
	c.lease = Lease{}
	c.emit(OutSaveLease, Lease{})
	c.event(Event{Kind: EventDeclined, Time: now, Lease: l, Reason: reason})
	c.state = StateDeclined
	c.deadline = now.Add(DeclineWait)
}

// lost unconfigures l and reports it.
func (c *Client) lost(now time.Time, l Lease, reason string) {
	c.emit(OutUnconfigure, l)
	c.event(Event{Kind: EventLeaseLost, Time: now, Lease: l, Reason: reason})
}

// HandleTimer does whatever is due at now.
func (c *Client) HandleTimer(now time.Time) {
	for {
		dl, ok := c.Deadline()
		if !ok || now.Before(dl) {
			return
		}
		c.step(now)
	}
}

func (c *Client) step(now time.Time) {
	switch c.state {
	case StateInit, StateDeclined:
		c.state = StateSelecting
		c.newExchange(now)
		c.sendDiscover(now)
	case StateSelecting:
		c.quiet++
		if c.quiet >= autoconfQuietRetries {
			c.setAutoconf(now, true) // no server heard for a whole cycle
		}
		c.sendDiscover(now)
	case StateRequesting, StateRebooting:
		if c.tries >= DefaultRequestTries {
			if c.state == StateRebooting {
				c.lease = Lease{}
			}
			c.enterInit(now, 0)
			return
		}
		c.sendRequest(now)
	case StateBound:
		c.state = StateRenewing
		c.newExchange(now)
		c.sendRequest(now)
	case StateRenewing:
		if !now.Before(c.lease.Acquired.Add(c.lease.T2)) {
			c.state = StateRebinding
			c.newExchange(now)
		}
		c.sendRequest(now)
	case StateRebinding:
		if c.lease.ExpiredAt(now) {
			l := c.lease
			c.lease = Lease{}
			c.emit(OutSaveLease, Lease{})
			c.lost(now, l, "expired")
			c.enterInit(now, 0)
			return
		}
		c.sendRequest(now)
	}
}

func (c *Client) enterInit(now time.Time, wait time.Duration) {
	c.state = StateInit
	c.deadline = now.Add(wait)
}

func (c *Client) newExchange(now time.Time) {
	c.xid = c.rng.Uint32()
	c.tries = 0
	c.began = now
}

// armT1 sets the deadline to T1, fuzzing the RFC's default T1 and T2.
func (c *Client) armT1() {
	l := &c.lease
	if l.Duration == InfiniteLease {
		c.deadline = time.Time{}
		return
	}
	if l.T2 <= 0 || l.T2 >= l.Duration {
		l.T2 = c.fuzz(l.Duration * 7 / 8)
	}
	if l.T1 <= 0 || l.T1 >= l.T2 {
		l.T1 = min(c.fuzz(l.Duration/2), l.T2)
	}
	c.deadline = l.Acquired.Add(l.T1)
}

// fuzz takes up to maxFuzzPercent off d.
func (c *Client) fuzz(d time.Duration) time.Duration {
	return d - c.uniform(0, d*maxFuzzPercent/100)
}

func (c *Client) sendDiscover(now time.Time) {
	m := c.message(Discover)
	m.Secs = secs(now.Sub(c.began))
	if !c.lease.IsZero() {
		m.SetOption(OptRequestedIP, as4(c.lease.Addr.Addr()))
	}
	if c.cfg.AutoConfigure {
		m.SetOption(OptAutoConfigure, []byte{1})
	}
	c.send(m, broadcast4, broadcastHW)
	c.tries++
	c.deadline = now.Add(c.backoff())
}

// sendRequest sends the DHCPREQUEST of the current state (RFC 2131 table 4).
func (c *Client) sendRequest(now time.Time) {
	m := c.message(Request)
	m.Secs = secs(now.Sub(c.began))
	to, toHW := broadcast4, broadcastHW
	switch c.state {
	case StateRequesting:
		m.SetOption(OptRequestedIP, as4(c.offer.YIAddr))
		m.SetOption(OptServerID, as4(c.offerServer()))
	case StateRebooting:
		m.SetOption(OptRequestedIP, as4(c.lease.Addr.Addr()))
	case StateRenewing:
		m.CIAddr = c.lease.Addr.Addr()
		to, toHW = c.lease.Server, c.lease.ServerHW
	case StateRebinding:
		m.CIAddr = c.lease.Addr.Addr()
	}
	c.send(m, to, toHW)
	c.sent = now
	c.tries++
	switch c.state {
	case StateRenewing:
		c.deadline = renewRetransmit(now, c.lease.Acquired.Add(c.lease.T2))
	case StateRebinding:
		c.deadline = renewRetransmit(now, c.lease.Expiry())
	default:
		c.deadline = now.Add(c.backoff())
	}
}

// renewRetransmit is the next retransmission in RENEWING/REBINDING: half
// the time left until end, at least MinRenewRetransmit, and never past end.
func renewRetransmit(now, end time.Time) time.Time {
	if end.IsZero() {
		return now.Add(MinRenewRetransmit)
	}
	next := now.Add(max(end.Sub(now)/2, MinRenewRetransmit))
	if next.After(end) {
		return end
	}
	return next
}

// backoff is the wait after the tries-th message: 4, 8, ... 64 s, ±1 s.
func (c *Client) backoff() time.Duration {
	d := c.cfg.Retransmit
	for i := 1; i < c.tries && d < MaxRetransmit; i++ {
		d *= 2
	}
	d = min(d, MaxRetransmit)
	jitter := d / 4 // ±1 s of the RFC's 4 s, scaled for short test timings
	if jitter > time.Second {
		jitter = time.Second
	}
	return d - jitter + c.uniform(0, 2*jitter)
}

func (c *Client) message(t MessageType) Message {
	m := Message{Op: OpRequest, XID: c.xid, CHAddr: c.cfg.HW, Type: t}
	m.SetOption(OptClientID, c.clientID)
	switch t {
	case Discover, Request:
		m.SetOption(OptParamRequest, []byte{OptSubnetMask, OptRouter, OptDNS, OptDomainName, OptBroadcast, OptLeaseTime, OptRenewalTime, OptRebindingTime, OptAutoConfigure})
		m.SetOption(OptMaxSize, []byte{byte(MaxLen >> 8), byte(MaxLen & 0xff)})
		if c.cfg.Hostname != "" {
			m.SetOption(OptHostname, []byte(c.cfg.Hostname))
		}
	}
	return m
}

var (
	broadcast4  = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	broadcastHW = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func (c *Client) send(m Message, to netip.Addr, toHW [6]byte) {
	c.out = append(c.out, Output{Kind: OutSend, Message: m, To: to, ToHW: toHW})
}

func (c *Client) emit(k OutputKind, l Lease) { c.out = append(c.out, Output{Kind: k, Lease: l}) }

func (c *Client) event(ev Event) { c.out = append(c.out, Output{Kind: OutEvent, Event: ev}) }

func (c *Client) setAutoconf(now time.Time, allowed bool) {
	if c.autoconf == allowed {
		return
	}
	c.autoconf = allowed
	c.event(Event{Kind: EventAutoConfigure, Time: now, Allowed: allowed})
}

// uniform draws from [lo, hi].
func (c *Client) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

func secs(d time.Duration) uint16 { return uint16(min(d/time.Second, 0xffff)) }
