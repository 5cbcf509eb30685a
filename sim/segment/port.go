package segment

import (
	"errors"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// PortConfig configures a port.
type PortConfig struct {
	// Filtered makes the port receive only the broadcast ARP frames that
	// concern the address given to SetConcern (see the package doc), as a
	// daemon's kernel ARP filter would. Default: every frame.
	Filtered bool
	// Echo is the probability that a frame this port sends comes back to
	// it, 0..1, on top of LinkModel.Echo (endpoint ports only).
	Echo float64
	// QueueSize is the capacity of the endpoint's queue, if known: the
	// segment counts drains that find it full (Stats.QueueFull).
	QueueSize int
	// OnDeliver, if set, sees every frame just before it is handed to the
	// port (valid during the call only).
	OnDeliver func(frame []byte)
}

// Port is one attachment to the segment: the link endpoint of a stack's
// NIC (Attach, NewPort and Plug) or a function (AttachFunc, Bridge). A
// port has a partition (SetGroup), a link state (SetLink) and, if filtered,
// the address it is concerned with. Endpoint ports are numbered from 0 in
// the order they were added, and so are function ports; frames are handed
// to the endpoint ports of a partition in that order, then to its function
// ports.
type Port struct {
	seg   *Segment
	id    int32 // index among endpoint ports, or ^index among function ports
	cfg   PortConfig
	group int32
	up    bool
	dirty bool // on seg.dirty (guarded by seg.mu)
	tag   uint8

	ep     *channel.Endpoint
	notify *channel.NotificationHandle
	mac    [6]byte
	recv   func(frame []byte) // function ports

	concern  netip.Addr // filtered: the address the port is listed under
	watchers []watcher
	nextW    int
}

type watcher struct {
	id int
	f  func(up bool)
}

// NewPort adds an endpoint port with nothing plugged in yet (a machine not
// yet powered on): it neither sends nor receives until Plug.
func (s *Segment) NewPort(cfg PortConfig) (*Port, error) {
	if s.closed {
		return nil, errors.New("segment: new port: segment closed")
	}
	if err := CheckProbability("port echo", cfg.Echo); err != nil {
		return nil, fmt.Errorf("segment: port %d: %w", len(s.ports), err)
	}
	if cfg.QueueSize < 0 {
		return nil, fmt.Errorf("segment: port %d: %w: queue size %d is negative", len(s.ports), ErrInvalid, cfg.QueueSize)
	}
	p := &Port{seg: s, id: int32(len(s.ports)), cfg: cfg, up: true}
	s.ports = append(s.ports, p)
	if !cfg.Filtered {
		s.index.unfiltered = append(s.index.unfiltered, p.id)
	} else {
		s.index.filtered++
	}
	if cfg.Echo > 0 {
		s.echo++
		s.ideal = false
	}
	return p, nil
}

// Attach adds a port for ep, the channel endpoint under a stack's NIC
// (whatever is stacked on it: the Shim, gVisor's Ethernet layer, a
// sniffer, an embedder's own endpoints). Frames the stack writes are taken
// from ep's queue; frames for it are injected with ep.InjectInbound, which
// runs the stack synchronously.
func (s *Segment) Attach(ep *channel.Endpoint, cfg PortConfig) (*Port, error) {
	p, err := s.NewPort(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.Plug(ep); err != nil {
		return nil, err
	}
	return p, nil
}

// AttachFunc adds a function port: recv sees every frame of the port's
// partition that reaches it (no MAC filter, no concern filter), and Send
// puts frames on the segment from it. Scripted devices, monitors and
// bridges are function ports. mac is informational (Frame.From.MAC).
func (s *Segment) AttachFunc(mac tcpip.LinkAddress, recv func(frame []byte)) (*Port, error) {
	if s.closed {
		return nil, errors.New("segment: attach function: segment closed")
	}
	if recv == nil {
		return nil, errors.New("segment: attach function: nil receive function")
	}
	p := &Port{seg: s, id: ^int32(len(s.raws)), up: true, recv: recv}
	copy(p.mac[:], mac)
	s.raws = append(s.raws, p)
	return p, nil
}

// Plug connects ep to an endpoint port that has none; the link is up.
func (p *Port) Plug(ep *channel.Endpoint) error {
	if p.recv != nil {
		return fmt.Errorf("segment: plug into function port %d", ^p.id)
	}
	if ep == nil {
		return fmt.Errorf("segment: port %d: nil endpoint", p.id)
	}
	if p.ep != nil {
		return fmt.Errorf("segment: port %d: an endpoint is plugged in already", p.id)
	}
	if la := ep.LinkAddress(); len(la) != header.EthernetAddressSize {
		return fmt.Errorf("segment: port %d: link address %v has %d bytes, not a MAC's 6", p.id, la, len(la))
	}
	copy(p.mac[:], ep.LinkAddress())
	p.ep, p.up = ep, true
	p.notify = ep.AddNotify(p)
	p.seg.index.addMAC(p.mac, p.id)
	return nil
}

// Unplug disconnects the endpoint (the machine is off): what it queued is
// taken from it, and counted as sent while down unless another endpoint is
// plugged in before it goes out; nothing reaches it any more.
func (p *Port) Unplug() {
	if p.ep == nil {
		return
	}
	p.seg.drainDirty()
	p.seg.drainOne(p)
	p.detach()
}

func (p *Port) detach() {
	if p.ep == nil {
		return
	}
	p.ep.RemoveNotify(p.notify)
	p.seg.index.delMAC(p.mac, p.id)
	p.ep, p.notify = nil, nil
}

// WriteNotify implements channel.Notification: the endpoint's stack wrote a
// frame. It may be called from any goroutine; the segment takes the frames
// after the current step.
func (p *Port) WriteNotify() {
	s := p.seg
	s.mu.Lock()
	if !p.dirty {
		p.dirty = true
		s.dirty = append(s.dirty, p.id)
	}
	wake := s.wakeOn
	s.mu.Unlock()
	if wake {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Index returns the port's number among the endpoint ports, or among the
// function ports.
func (p *Port) Index() int {
	if p.id < 0 {
		return int(^p.id)
	}
	return int(p.id)
}

// IsFunc reports whether p is a function port.
func (p *Port) IsFunc() bool { return p.id < 0 }

// MAC returns the port's hardware address (the plugged endpoint's).
func (p *Port) MAC() tcpip.LinkAddress { return tcpip.LinkAddress(p.mac[:]) }

// Endpoint returns the plugged endpoint, or nil.
func (p *Port) Endpoint() *channel.Endpoint { return p.ep }

// Plugged reports whether an endpoint is plugged in (function ports: true).
func (p *Port) Plugged() bool { return p.ep != nil || p.recv != nil }

// Up reports the port's link state.
func (p *Port) Up() bool { return p.up }

// Group returns the port's partition.
func (p *Port) Group() int { return int(p.group) }

// SetGroup moves the port to partition g: it hears only ports of the same
// partition. Every port starts in partition 0.
func (p *Port) SetGroup(g int) { p.group = int32(g) }

// SetLink takes the port's link down or up. While it is down the segment
// neither delivers to the port nor forwards what it sends. The endpoint
// returned by Link reports the change to whoever watches it (an attached
// stack.Client withdraws its address or starts afresh), synchronously.
func (p *Port) SetLink(up bool) {
	if p.up == up {
		return
	}
	p.seg.drainDirty()
	p.up = up
	for _, w := range p.watchers {
		w.f(up)
	}
}

// SetConcern lists a filtered port under a, the address it probes or
// holds (the zero Addr: none). Broadcast ARP frames whose sender or target
// address is a usable link-local address reach only the filtered ports
// listed under it.
func (p *Port) SetConcern(a netip.Addr) {
	if !p.cfg.Filtered || a == p.concern {
		return
	}
	if p.concern.IsValid() {
		p.seg.index.unlist(p.concern, p.id)
	}
	if !p.seg.index.list(a, p.id) {
		a = netip.Addr{}
	}
	p.concern = a
}

// Tag marks the frames the segment next takes from the port's queue (those
// already written and those written until then) with t, which OnTransmit
// sees; the mark is then cleared. It also makes sure the port is drained
// soon, even if nothing is written.
func (p *Port) Tag(t uint8) {
	p.tag = t
	if p.ep != nil {
		p.WriteNotify()
	}
}

// Link returns the endpoint to build a stack on: the plugged channel
// endpoint, reporting the port's link state to a watcher (it implements
// stack.LinkStateWatcher: stack.NewShim(p.Link()) and stack.Attach wire
// SetLink into the client). Use it for one stack per plug.
func (p *Port) Link() gvstack.LinkEndpoint {
	if p.ep == nil {
		return nil
	}
	l := &portLink{p: p}
	l.Endpoint.Init(p.ep, l)
	return l
}

// portLink is the endpoint Link returns.
type portLink struct {
	nested.Endpoint
	p *Port
}

// WatchLinkState calls f with the port's link state now and at every
// change, on the segment's goroutine, until stop is called.
func (l *portLink) WatchLinkState(f func(up bool)) (stop func()) {
	p := l.p
	p.nextW++
	id := p.nextW
	p.watchers = append(p.watchers, watcher{id: id, f: f})
	f(p.up)
	return func() {
		for i, w := range p.watchers {
			if w.id == id {
				p.watchers = append(p.watchers[:i:i], p.watchers[i+1:]...)
				return
			}
		}
	}
}

// Send puts frame on the segment from function port p, after the frames
// already waiting. Endpoint ports send by writing to their endpoint.
func (s *Segment) Send(p *Port, frame []byte) error {
	if p.recv == nil {
		return fmt.Errorf("segment: send from endpoint port %d: its stack writes to its endpoint", p.id)
	}
	s.outq = append(s.outq, outFrame{slot: s.pool.put(frame), from: p.id})
	return nil
}

// DeliverTo hands frame to port p alone, at once, as if it came off the
// wire (a frame only p sees: spoofed, or from a host beyond a switch). It
// is recorded (pcap, OnTransmit with To set) but suffers no fault.
func (s *Segment) DeliverTo(p *Port, frame []byte) {
	s.stats.Frames++
	s.capture(frame)
	if s.cfg.OnTransmit != nil {
		s.cfg.OnTransmit(Frame{At: s.Now(), To: p, Bytes: frame})
	}
	if p.Plugged() && p.up {
		s.inject(p, frame)
	}
}
