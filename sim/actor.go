package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/dhcp"
	"github.com/autoip-project/autoip/dhcp/dhcptest"
	"github.com/autoip-project/autoip/internal/splitmix"
	"github.com/autoip-project/autoip/sim/segment"
)

// actor is a scripted device on the segment (see ActorKind). It reacts to
// the frames of its partition and to its own timers, and sends raw frames
// through the segment like any host.
type actor struct {
	idx  int
	cfg  ActorConfig
	mac  acd.MAC
	port *segment.Port
	rng  splitmix.Source
	sent int

	queue     [][]byte             // replies waiting for Delay, in order (proxy-arp, probe-denier)
	attacking map[netip.Addr]uint8 // usurper: attackRunning or attackDone
	lastSeen  netip.Addr           // malformed: last address announced by someone
	dhcp      *dhcptest.Server     // dhcp-server
	buf       []byte
}

// Usurper attack states.
const (
	attackRunning = iota + 1
	attackDone
)

// Actor token kinds (the low byte of a timer token).
const (
	tokQueue = iota + 1 // send the queue's head
	tokSteal            // usurper: announce address (token>>8 & 0xffffffff), round token>>40
	tokTick             // malformed: next frame
)

// AddActor adds an actor and returns its index.
func (s *Sim) AddActor(ac ActorConfig) (int, error) {
	if s.closed {
		return 0, errors.New("sim: add actor: simulation closed")
	}
	ac = ac.WithDefaults()
	if err := ac.Validate(); err != nil {
		return 0, fmt.Errorf("sim: actor %d: %w", len(s.actors), err)
	}
	if len(s.actors) >= MaxActors {
		return 0, fmt.Errorf("sim: add actor: %w: more than %d actors", ErrInvalid, MaxActors)
	}
	i := len(s.actors)
	a := &actor{idx: i, cfg: ac, mac: ac.MAC}
	if a.mac.IsZero() {
		a.mac = acd.MAC{0x06, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	}
	a.rng.State = splitmix.Derive(s.cfg.Seed, uint64(i), streamActor)
	if ac.Kind == ActorUsurper {
		a.attacking = make(map[netip.Addr]uint8)
	}
	if ac.Kind == ActorDHCPServer {
		a.dhcp = &dhcptest.Server{Addr: ac.ServerIP, Router: ac.ServerIP, Lease: ac.Lease}
		first := ac.PoolStart.As4()
		base := binary.BigEndian.Uint32(first[:])
		for k := range ac.PoolSize {
			var x [4]byte
			binary.BigEndian.PutUint32(x[:], base+uint32(k))
			a.dhcp.Pool = append(a.dhcp.Pool, netip.AddrFrom4(x))
		}
	}
	port, err := s.seg.AttachFunc(tcpip.LinkAddress(a.mac[:]), func(b []byte) { a.receive(s, b) })
	if err != nil {
		return 0, fmt.Errorf("sim: actor %d: %w", i, err)
	}
	a.port = port
	s.actors = append(s.actors, a)
	if ac.Kind == ActorMalformed {
		s.actorTimer(a, max(int64(ac.From), s.now()), tokTick)
	}
	return i, nil
}

// actorTimer schedules a's timer token at virtual time at (never in the
// past).
func (s *Sim) actorTimer(a *actor, at int64, token int64) {
	_ = s.seg.At(time.Duration(at), func() error {
		a.timer(s, token)
		return nil
	})
}

// send puts a frame made by actor a on the segment.
func (s *Sim) send(a *actor, b []byte) {
	_ = s.seg.Send(a.port, b) // a function port: cannot fail
}

// NumActors returns the number of actors added.
func (s *Sim) NumActors() int { return len(s.actors) }

// Actor returns the configuration of actor i, defaults applied.
func (s *Sim) Actor(i int) ActorConfig { return s.actors[i].cfg }

// ActorMAC returns actor i's hardware address.
func (s *Sim) ActorMAC(i int) acd.MAC { return s.actors[i].mac }

func (a *actor) active(now int64) bool {
	return now >= int64(a.cfg.From) && (a.cfg.Until == 0 || now < int64(a.cfg.Until)) &&
		(a.cfg.Count == 0 || a.sent < a.cfg.Count)
}

// receive reacts to a frame on the segment.
func (a *actor) receive(s *Sim, b []byte) {
	if a.dhcp != nil {
		a.serveDHCP(s, b)
		return
	}
	f, err := acd.DecodeFrame(b)
	if err != nil || f.SenderHW == a.mac {
		return
	}
	if a.cfg.Kind == ActorMalformed && f.IsAnnouncement() {
		a.lastSeen = f.SenderIP
	}
	if !a.active(s.now()) {
		return
	}
	switch a.cfg.Kind {
	case ActorProxyARP:
		if f.Op != acd.OpRequest || f.TargetIP == zeroAddr ||
			(f.IsProbe() && a.cfg.IgnoreProbes) || (f.IsAnnouncement() && a.cfg.IgnoreAnnouncements) {
			return
		}
		r := acd.Frame{Dst: f.SenderHW, Src: a.mac, Packet: acd.Packet{
			Op: acd.OpReply, SenderHW: a.mac, SenderIP: f.TargetIP, TargetHW: f.SenderHW, TargetIP: f.SenderIP}}
		a.reply(s, r)
	case ActorProbeDenier:
		if !f.IsProbe() {
			return
		}
		r := acd.Frame{Dst: acd.BroadcastMAC, Src: a.mac, Packet: acd.Packet{
			Op: acd.OpReply, SenderHW: a.mac, SenderIP: f.TargetIP, TargetHW: f.SenderHW, TargetIP: zeroAddr}}
		a.reply(s, r)
	case ActorUsurper:
		x := f.SenderIP
		if !f.IsAnnouncement() {
			return
		}
		if st := a.attacking[x]; st == attackRunning || st == attackDone && a.cfg.Once {
			return
		}
		a.attacking[x] = attackRunning
		a.sent++
		v := binary.BigEndian.Uint32(x.AsSlice())
		for k := 0; k < a.cfg.Repeat; k++ {
			at := s.now() + int64(a.cfg.Delay) + int64(k)*int64(a.cfg.Gap)
			s.actorTimer(a, at, tokSteal|int64(v)<<8|int64(k)<<40)
		}
	}
}

// serveDHCP answers a client's DHCP message while the server is active.
func (a *actor) serveDHCP(s *Sim, b []byte) {
	payload, ok := dhcptest.RequestPayload(b)
	if !ok || !a.active(s.now()) {
		return
	}
	m, err := dhcp.Decode(payload)
	if err != nil {
		return
	}
	r, ok := a.dhcp.Handle(m)
	if !ok {
		return
	}
	a.sent++
	a.buf = dhcptest.ReplyFrame(a.buf[:0], a.mac, a.cfg.ServerIP, r)
	s.send(a, a.buf)
}

// reply sends r after the actor's delay.
func (a *actor) reply(s *Sim, r acd.Frame) {
	a.sent++
	b := r.AppendBinary(nil)
	if a.cfg.Delay == 0 {
		s.send(a, b)
		return
	}
	a.queue = append(a.queue, b)
	s.actorTimer(a, s.now()+int64(a.cfg.Delay), tokQueue)
}

// timer runs an actor timer.
func (a *actor) timer(s *Sim, token int64) {
	switch token & 0xff {
	case tokQueue:
		b := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		s.send(a, b)
	case tokSteal:
		var x4 [4]byte
		binary.BigEndian.PutUint32(x4[:], uint32(token>>8))
		x := netip.AddrFrom4(x4)
		round := int(token >> 40)
		a.buf = acd.BroadcastFrame(acd.Announcement(a.mac, x)).AppendBinary(a.buf[:0])
		s.send(a, a.buf)
		if round == a.cfg.Repeat-1 {
			if a.cfg.Once {
				a.attacking[x] = attackDone
			} else {
				delete(a.attacking, x)
			}
		}
	case tokTick:
		if a.cfg.Until != 0 && s.now() >= int64(a.cfg.Until) || a.cfg.Count != 0 && a.sent >= a.cfg.Count {
			return
		}
		a.buf = a.malformed(a.buf[:0])
		a.sent++
		s.send(a, a.buf)
		s.actorTimer(a, s.now()+int64(a.cfg.Interval), tokTick)
	}
}

// malformedKinds is the number of kinds malformed cycles through.
const malformedKinds = 9

// malformed appends the actor's next malformed or impossible frame.
func (a *actor) malformed(b []byte) []byte {
	r := a.rng.Next()
	victim := a.lastSeen
	if !victim.IsValid() {
		victim = netip.AddrFrom4([4]byte{169, 254, byte(1 + r%254), byte(r >> 8)})
	}
	arp := func(op uint16, htype, ptype uint16, hlen byte, sha acd.MAC, spa, tpa netip.Addr) []byte {
		b = append(b, acd.BroadcastMAC[:]...)
		b = append(b, a.mac[:]...)
		b = binary.BigEndian.AppendUint16(b, acd.EtherTypeARP)
		b = binary.BigEndian.AppendUint16(b, htype)
		b = binary.BigEndian.AppendUint16(b, ptype)
		b = append(b, hlen, 4)
		b = binary.BigEndian.AppendUint16(b, op)
		b = append(b, sha[:]...)
		b = append(b, spa.AsSlice()...)
		b = append(b, 0, 0, 0, 0, 0, 0)
		b = append(b, tpa.AsSlice()...)
		for len(b) < acd.MinFrameLen {
			b = append(b, 0)
		}
		return b
	}
	switch a.sent % malformedKinds {
	case 0: // truncated ARP
		b = append(b, acd.BroadcastMAC[:]...)
		b = append(b, a.mac[:]...)
		b = binary.BigEndian.AppendUint16(b, acd.EtherTypeARP)
		b = binary.BigEndian.AppendUint64(b, r)
		b = append(b, 0, 1)
		return b
	case 1: // hardware type not Ethernet
		return arp(1, 6, 0x0800, 6, a.mac, victim, victim)
	case 2: // protocol type not IPv4
		return arp(1, 1, 0x86dd, 6, a.mac, victim, victim)
	case 3: // unknown opcode
		return arp(9, 1, 0x0800, 6, a.mac, victim, victim)
	case 4: // wrong hardware address length
		return arp(1, 1, 0x0800, 8, a.mac, victim, victim)
	case 5: // broadcast sender hardware address probing for a real address
		// (one claiming the address itself is a conflict all the same, R29)
		return arp(1, 1, 0x0800, 6, acd.BroadcastMAC, zeroAddr, victim)
	case 6: // zero sender hardware address replying to a real address
		return arp(2, 1, 0x0800, 6, acd.MAC{}, zeroAddr, victim)
	case 7: // runt: shorter than an Ethernet header
		b = binary.BigEndian.AppendUint64(b, r)
		return append(b, byte(r>>3), byte(r>>11))
	default: // not ARP at all
		b = append(b, acd.BroadcastMAC[:]...)
		b = append(b, a.mac[:]...)
		b = binary.BigEndian.AppendUint16(b, 0x88b5) // IEEE local experimental
		for len(b) < acd.MinFrameLen {
			b = binary.BigEndian.AppendUint64(b, a.rng.Next())
		}
		return b[:acd.MinFrameLen]
	}
}

var zeroAddr = netip.AddrFrom4([4]byte{})
