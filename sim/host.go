package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/internal/splitmix"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/stack"
)

// host is one simulated machine: its netstack, segment port and
// bookkeeping.
type host struct {
	sim  *Sim
	idx  int32
	cfg  HostConfig
	mac  acd.MAC
	inc  int // incarnation: restarts so far
	port *segment.Port

	gv         *gvstack.Stack
	shim       *stack.Shim
	client     *stack.Client
	closeStack func() error
	rnd        hostRand
	pcg        rand.PCG
	dpcg       rand.PCG // the DHCP client's draws
	// store is the state that survives restarts, as a daemon's state
	// file does; nil until the first boot and after a fresh restart.
	store *persist.Memory

	onEvent func(autoip.Event)

	booted  bool // a netstack exists
	isBound bool
	traced  bool
	bootAt  int64 // boot time of this incarnation
}

// txDefence tags the frames of the drain that follows a DEFEND event:
// the announcement among them is the defence.
const txDefence = 1

// boot builds the host's netstack on its port and starts its client.
func (s *Sim) boot(h *host) error {
	seed, idx := s.cfg.Seed, uint64(h.idx)
	inc := uint64(h.inc) << 8
	ep := channel.New(s.cfg.QueueSize, 1514, tcpip.LinkAddress(h.mac[:]))
	h.rnd.insec.State = splitmix.Derive(seed, idx, streamNetRand|inc)
	h.rnd.secure.State = splitmix.Derive(seed, idx, streamSecure|inc)
	if h.store == nil {
		h.store = &persist.Memory{}
	}
	kept := h.store.Saves() > 0
	if err := h.port.Plug(ep); err != nil {
		return fmt.Errorf("sim: boot host %d: %w", h.idx, err)
	}
	opts := stack.Options{
		Link:       h.port.Link(),
		Clock:      s.clk,
		RandSource: &h.rnd,
		SecureRNG:  (*secureReader)(&h.rnd),
		NoTCP:      true,
	}
	if !h.cfg.Static.IsValid() {
		eseed := h.cfg.EngineSeed
		if eseed == 0 && !h.cfg.SeedFromMAC {
			eseed = splitmix.Derive(seed, idx, streamEngineSeed|inc)
		}
		h.pcg.Seed(splitmix.Derive(seed, idx, streamEngineRand|inc), splitmix.Derive(seed, idx, streamEngineRand|inc|1<<7))
		opts.AutoIP = &stack.ClientConfig{
			Engine: autoip.Config{
				HW:          h.mac,
				Seed:        eseed,
				Initial:     h.cfg.Initial,
				Timing:      h.cfg.Timing,
				LinkUpDelay: h.cfg.LinkUpDelay,
				Defend:      h.cfg.Defend,
				Rand:        rand.New(&h.pcg),
			},
			Store:   h.store,
			OnEvent: h.onEvent,
		}
		if h.cfg.DHCP {
			h.dpcg.Seed(splitmix.Derive(seed, idx, streamDHCPRand|inc), splitmix.Derive(seed, idx, streamDHCPRand|inc|1<<7))
			opts.AutoIP.DHCP = &stack.DHCPConfig{LinkLocalAfter: h.cfg.LinkLocalAfter, Rand: rand.New(&h.dpcg)}
			opts.AutoIP.OnAddressEvent = func(ev stack.AddressEvent) { s.onAddressEvent(h, ev) }
		}
	}
	h.booted, h.bootAt = true, s.now()
	s.boots++
	var keptFlag uint8
	if kept {
		keptFlag = 1
	}
	s.record(h, recStart, keptFlag, h.mac4(), 0)
	t0 := time.Now()
	err := s.build(h, opts)
	s.bootWall += time.Since(t0)
	if err != nil {
		h.booted = false
		s.boots--
		h.port.Unplug()
		return fmt.Errorf("sim: boot host %d: %w", h.idx, err)
	}
	if h.cfg.Static.IsValid() {
		if err := addStatic(h.gv, h.cfg.Static); err != nil {
			return fmt.Errorf("sim: boot static host %d: %w", h.idx, err)
		}
		s.setBound(h, true)
		if h.cfg.Announce {
			b := acd.BroadcastFrame(acd.Announcement(h.mac, h.cfg.Static)).AppendBinary(nil)
			if err := h.shim.InjectOutbound(b); err != nil {
				return fmt.Errorf("sim: static host %d announcement: %w", h.idx, err)
			}
		}
	}
	s.refreshClaim(h)
	return nil
}

// mac4 packs the MAC's last four bytes for the record's address field
// (start records carry the MAC, not an address).
func (h *host) mac4() [4]byte { return [4]byte(h.mac[2:6]) }

// close closes the host's netstack (the client withdraws its address and
// reports STOP).
func (h *host) close() error {
	err := h.closeStack()
	h.booted = false
	h.gv, h.shim, h.client, h.closeStack = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("sim: close host %d: %w", h.idx, err)
	}
	return nil
}

// shutdown closes the host's netstack and unplugs it from the segment;
// frames it had not sent are not sent.
func (s *Sim) shutdown(h *host) {
	if !h.booted {
		return
	}
	err := h.closeStack()
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("sim: close host %d: %w", h.idx, err)
	}
	h.port.Unplug()
	h.booted = false
	s.boots--
	if h.cfg.Static.IsValid() {
		s.setBound(h, false)
	}
	s.refreshClaim(h)
	h.gv, h.shim, h.client, h.closeStack = nil, nil, nil, nil
}

// onEvent records an engine event; it runs inside the host's step.
func (s *Sim) onEvent(h *host, ev autoip.Event) {
	if s.closing {
		return
	}
	var kind recKind
	var until int64
	switch ev.Kind {
	case autoip.EventProbe:
		kind = recProbe
		s.ctr.attempts++
	case autoip.EventBind:
		kind = recBind
		s.setBound(h, true)
	case autoip.EventConflict:
		kind = recConflict
		s.ctr.conflicts++
		if ev.Phase == acd.PhaseBound {
			s.ctr.boundConflicts++
			s.setBound(h, false)
		}
	case autoip.EventDefend:
		kind = recDefend
		s.ctr.defences++
		h.port.Tag(txDefence) // the drain after this step holds the defence, if it was sent
	case autoip.EventUnbind:
		kind = recUnbind
		s.setBound(h, false)
	case autoip.EventStop:
		kind = recStop
		s.setBound(h, false)
	case autoip.EventRateLimit:
		kind = recRateLimit
		s.ctr.rateLimits++
		until = ev.Until.Sub(s.cfg.Start).Nanoseconds()
	default:
		return
	}
	var a [4]byte
	if ev.Addr.Is4() {
		a = ev.Addr.As4()
	}
	s.record(h, kind, uint8(ev.Phase), a, until)
	if h.client != nil {
		s.refreshClaim(h)
	}
}

func (s *Sim) setBound(h *host, b bool) {
	if h.isBound == b {
		return
	}
	h.isBound = b
	if b {
		s.bound++
	} else {
		s.bound--
	}
}

// record appends an event record and traces it.
func (s *Sim) record(h *host, kind recKind, phase uint8, addr [4]byte, until int64) {
	s.ord++
	r := evRec{at: s.now(), ord: s.ord, host: h.idx, kind: kind, phase: phase, addr: addr, until: until}
	s.evlog = append(s.evlog, r)
	if h.traced {
		s.trace.event(r, h)
	}
}

// refreshClaim tells the segment the address h now probes or holds, which
// filtered delivery lists it under: its engine's candidate or bound address
// (from the candidate's first moment, before the first probe, because the
// engine already treats frames for it as conflicts then), or its static
// address.
func (s *Sim) refreshClaim(h *host) {
	var a netip.Addr
	switch {
	case !h.booted:
	case h.cfg.Static.IsValid():
		a = h.cfg.Static
	case h.client != nil:
		a = h.client.Status().Addr
	}
	h.port.SetConcern(a)
}

// holding returns the address h holds at the end, if any: its bound or
// static address, while booted with the link up.
func (s *Sim) holding(h *host) netip.Addr {
	if !h.booted || !h.port.Up() {
		return netip.Addr{}
	}
	if h.client == nil {
		return h.cfg.Static
	}
	st := h.client.Status()
	if st.State.IsBound() {
		return st.Configured
	}
	return netip.Addr{}
}

// onAddressEvent counts a DHCP host's lease events.
func (s *Sim) onAddressEvent(h *host, ev stack.AddressEvent) {
	if s.closing {
		return
	}
	switch ev.Kind {
	case stack.LeaseBound:
		s.ctr.leases++
	case stack.LeaseLost:
		if ev.Reason != "stopped" && ev.Reason != "released" {
			s.ctr.leasesLost++
		}
	case stack.LeaseDeclined:
		s.ctr.declines++
	}
}
