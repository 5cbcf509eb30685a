package dhcp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The harness drives a Client in virtual time against a scripted server:
// every message the client sends goes through Append and Decode (the wire
// form), and the server's answers are delivered at once.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	clientHW = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	serverHW = [6]byte{0x02, 0, 0, 0, 0, 0x53}
	serverIP = netip.MustParseAddr("192.0.2.1")
	routerIP = netip.MustParseAddr("192.0.2.254")
)

// server is a scripted DHCP server. Fields say how it answers.
type server struct {
	pool     []netip.Addr // offered in order; an address declined is skipped
	lease    time.Duration
	t1, t2   time.Duration // 0: not sent
	nak      bool          // NAK every REQUEST
	silent   bool          // answer nothing
	noAuto   bool          // send option 116 = 0
	declined []netip.Addr
	released []netip.Addr
	got      []Message
}

func (s *server) next() netip.Addr {
	for _, a := range s.pool {
		if !contains(s.declined, a) {
			return a
		}
	}
	return netip.Addr{}
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// answer returns the server's reply to m, if any.
func (s *server) answer(m Message) (Message, bool) {
	s.got = append(s.got, m)
	switch m.Type {
	case Decline:
		a, _ := m.Addr4(OptRequestedIP)
		s.declined = append(s.declined, a)
		return Message{}, false
	case Release:
		s.released = append(s.released, m.CIAddr)
		return Message{}, false
	}
	if s.silent {
		return Message{}, false
	}
	r := Message{Op: OpReply, XID: m.XID, CHAddr: m.CHAddr, SIAddr: serverIP}
	r.SetOption(OptServerID, serverIP.AsSlice())
	if s.noAuto {
		r.SetOption(OptAutoConfigure, []byte{0})
	}
	grant := func(a netip.Addr) {
		r.YIAddr = a
		r.SetOption(OptSubnetMask, []byte{255, 255, 255, 0})
		r.SetOption(OptRouter, routerIP.AsSlice())
		r.SetOption(OptDNS, append(serverIP.AsSlice(), 192, 0, 2, 2))
		r.SetOption(OptLeaseTime, Uint32(uint32(s.lease/time.Second)))
		if s.t1 > 0 {
			r.SetOption(OptRenewalTime, Uint32(uint32(s.t1/time.Second)))
			r.SetOption(OptRebindingTime, Uint32(uint32(s.t2/time.Second)))
		}
	}
	switch m.Type {
	case Discover:
		a := s.next()
		if !a.IsValid() {
			return Message{}, false
		}
		r.Type = Offer
		grant(a)
	case Request:
		want, ok := m.Addr4(OptRequestedIP)
		if !ok {
			want = m.CIAddr
		}
		if s.nak || contains(s.declined, want) || !contains(s.pool, want) {
			r.Type = Nak
			return r, true
		}
		r.Type = Ack
		grant(want)
	default:
		return Message{}, false
	}
	return r, true
}

// sent is one message the client sent, decoded from its wire form.
type sent struct {
	at   time.Duration
	msg  Message
	to   netip.Addr
	toHW [6]byte
}

type harness struct {
	t    *testing.T
	c    *Client
	srv  *server
	now  time.Time
	sent []sent
	outs []Output
	// inUse says which addresses another host holds (the RFC 5227 probe
	// finds them).
	inUse map[netip.Addr]bool
	// configured is what the client put on the interface.
	configured netip.Prefix
	checked    []netip.Addr
	events     []Event
	saved      Lease
}

func newHarness(t *testing.T, cfg Config, srv *server) *harness {
	t.Helper()
	if cfg.HW == [6]byte{} {
		cfg.HW = clientHW
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, c: c, srv: srv, now: t0, inUse: map[netip.Addr]bool{}}
}

func (h *harness) start() { h.c.Start(h.now); h.drain() }

// drain performs the client's outputs, answering its messages.
func (h *harness) drain() {
	for {
		outs := h.c.AppendOutputs(nil)
		if len(outs) == 0 {
			return
		}
		for _, o := range outs {
			h.outs = append(h.outs, o)
			h.perform(o)
		}
	}
}

func (h *harness) perform(o Output) {
	switch o.Kind {
	case OutSend:
		wire := o.Message.Append(nil)
		m, err := Decode(wire)
		if err != nil {
			h.t.Fatalf("client sent an undecodable %v: %v", o.Message.Type, err)
		}
		if len(wire) < minSendLen {
			h.t.Fatalf("client sent %d bytes, want at least %d", len(wire), minSendLen)
		}
		h.sent = append(h.sent, sent{at: h.now.Sub(t0), msg: m, to: o.To, toHW: o.ToHW})
		if r, ok := h.srv.answer(m); ok {
			r2, err := Decode(r.Append(nil))
			if err != nil {
				h.t.Fatal(err)
			}
			h.c.HandleMessage(h.now, r2, serverHW)
		}
	case OutCheck:
		h.checked = append(h.checked, o.Lease.Addr.Addr())
		if h.configured == o.Lease.Addr {
			h.t.Fatalf("checking %v, which is already configured", o.Lease.Addr)
		}
		a := o.Lease.Addr.Addr()
		h.c.HandleCheck(h.now, a, h.inUse[a], "in use by 02:99:00:00:00:01")
	case OutConfigure:
		h.configured = o.Lease.Addr
	case OutUnconfigure:
		if h.configured != o.Lease.Addr {
			h.t.Fatalf("unconfigure %v, configured is %v", o.Lease.Addr, h.configured)
		}
		h.configured = netip.Prefix{}
	case OutEvent:
		h.events = append(h.events, o.Event)
	case OutSaveLease:
		h.saved = o.Lease
	}
}

// runUntil jumps from deadline to deadline until limit or until done.
func (h *harness) runUntil(limit time.Time, done func() bool) bool {
	for {
		if done != nil && done() {
			return true
		}
		dl, ok := h.c.Deadline()
		if !ok || dl.After(limit) {
			h.now = limit
			return done != nil && done()
		}
		if dl.After(h.now) {
			h.now = dl
		}
		h.c.HandleTimer(h.now)
		h.drain()
	}
}

func (h *harness) runFor(d time.Duration) { h.runUntil(h.now.Add(d), nil) }

func (h *harness) runUntilBound(limit time.Duration) netip.Prefix {
	h.t.Helper()
	if !h.runUntil(h.now.Add(limit), func() bool { return h.c.State() == StateBound }) {
		h.t.Fatalf("not bound after %v: state %v\n%s", limit, h.c.State(), h.dump())
	}
	return h.configured
}

func (h *harness) dump() string {
	var b strings.Builder
	for _, s := range h.sent {
		fmt.Fprintf(&b, "  %v %v to %v ciaddr=%v\n", s.at, s.msg.Type, s.to, s.msg.CIAddr)
	}
	for _, e := range h.events {
		fmt.Fprintf(&b, "  event %v %v %s\n", e.Kind, e.Lease.Addr, e.Reason)
	}
	return b.String()
}

func (h *harness) sentOf(t MessageType) []sent {
	var out []sent
	for _, s := range h.sent {
		if s.msg.Type == t {
			out = append(out, s)
		}
	}
	return out
}

func (h *harness) eventsOf(k EventKind) []Event {
	var out []Event
	for _, e := range h.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}
