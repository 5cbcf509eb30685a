package sim

import (
	"github.com/autoip-project/autoip/stack"

	"fmt"
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// Violation is a broken invariant.
type Violation struct {
	// Rule names the invariant: unique, range, stack-addr, unbound,
	// first-probe, probe-gap, probe-count, announce-wait, announce-gap,
	// rate-limit, defend-interval, queue-drop.
	Rule string `json:"rule"`
	// Host is the host concerned, or -1.
	Host int `json:"host"`
	// At is when, in virtual time since the start (0 for end-of-run checks).
	At     time.Duration `json:"-"`
	AtMS   float64       `json:"at_ms"`
	Detail string        `json:"detail"`
}

// String formats v for people.
func (v Violation) String() string {
	h := "segment"
	if v.Host >= 0 {
		h = fmt.Sprintf("host %d", v.Host)
	}
	return fmt.Sprintf("%s: %s at %v: %s", v.Rule, h, v.At, v.Detail)
}

// CheckOptions selects the optional invariants.
type CheckOptions struct {
	// AllBound requires every AutoIP host that is booted with its link up
	// to hold an address at the end (liveness; turn it off when a rogue
	// makes binding impossible).
	AllBound bool
}

// Check verifies the invariants at the end of a run:
//
//   - unique: no two hosts of one partition hold the same address (static
//     incumbents included), and range: every bound address is in
//     169.254.1.0-169.254.254.255;
//   - stack-addr: each netstack's NIC holds exactly the address its client
//     reports (no candidate is configured before it is claimed, R10);
//   - unbound: with opts.AllBound, every live AutoIP host is bound (or,
//     with DHCP, holds a lease); leases count for unique and stack-addr;
//   - RFC timing, measured on the frame log: the first probe of an attempt
//     falls within [begin+delay, begin+delay+PROBE_WAIT], where begin is
//     the boot, link-up or conflict that began the attempt and delay is the
//     link-up delay or the rate-limit wait (first-probe); PROBE_NUM probes
//     spaced within [PROBE_MIN, PROBE_MAX] (probe-count, probe-gap);
//     ANNOUNCE_WAIT between the last probe and the claim (announce-wait);
//     announcements of one series at least ANNOUNCE_INTERVAL apart
//     (announce-gap);
//   - rate-limit: once MAX_CONFLICTS conflicts are counted (the engine's
//     count, reset when an address was held RATE_LIMIT_INTERVAL), the first
//     probes of consecutive attempts are RATE_LIMIT_INTERVAL apart or more;
//   - defend-interval: at most one defence per DEFEND_INTERVAL per binding;
//   - queue-drop: no host's link queue overflowed.
//
// The result is in host order, then time order.
func (s *Sim) Check(opts CheckOptions) []Violation {
	var out []Violation
	add := func(rule string, host int, at int64, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Host: host, At: time.Duration(at), AtMS: msOf(at), Detail: fmt.Sprintf(format, args...)})
	}
	evBy, txBy := s.byHost()
	for i, h := range s.hosts {
		if h.cfg.Static.IsValid() {
			continue
		}
		s.checkTiming(i, h, evBy[i], txBy[i], add)
	}
	// End-of-run checks.
	type holder struct {
		group int
		addr  netip.Addr
	}
	held := make(map[holder][]int)
	for i, h := range s.hosts {
		if !h.booted || !h.port.Up() {
			continue
		}
		var a netip.Addr
		want := []netip.Addr{}
		if h.client != nil {
			st := h.client.Status()
			var lease netip.Addr
			for _, m := range h.client.Addresses() {
				if m.Source == stack.SourceDHCP && m.State == stack.AddrConfigured {
					lease = m.Prefix.Addr()
				}
			}
			if lease.IsValid() {
				want = append(want, lease)
				k := holder{h.port.Group(), lease}
				held[k] = append(held[k], i)
			}
			if st.State.IsBound() {
				a = st.Configured
				want = append(want, a)
			} else if opts.AllBound && !lease.IsValid() {
				add("unbound", i, s.now(), "state %v at the end of the run, and no DHCP lease", st.State)
			}
		} else {
			a = h.cfg.Static
			want = append(want, a)
		}
		slices.SortFunc(want, netip.Addr.Compare)
		if got := s.nicAddrs(h); !slices.Equal(got, want) {
			add("stack-addr", i, s.now(), "NIC has %v, client holds %v", got, want)
		}
		if !a.IsValid() {
			continue
		}
		if !autoip.InRange(a) {
			add("range", i, s.now(), "address %v is outside %v-%v", a, autoip.FirstAddr, autoip.LastAddr)
		}
		k := holder{h.port.Group(), a}
		held[k] = append(held[k], i)
	}
	keys := make([]holder, 0, len(held))
	for k, l := range held {
		if len(l) > 1 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b holder) int { return a.addr.Compare(b.addr) })
	for _, k := range keys {
		l := held[k]
		add("unique", l[0], s.now(), "address %v is held by hosts %v (partition %d)", k.addr, l, k.group)
	}
	if n := s.noBufferDrops(); n > 0 {
		add("queue-drop", -1, s.now(), "%d frames dropped on full link queues", n)
	}
	slices.SortStableFunc(out, func(a, b Violation) int {
		if a.Host != b.Host {
			return a.Host - b.Host
		}
		return int(a.At - b.At)
	})
	return out
}

// nicAddrs returns h's IPv4 NIC addresses, sorted, without the broadcast
// address netstack adds itself.
func (s *Sim) nicAddrs(h *host) []netip.Addr {
	out := []netip.Addr{}
	for _, pa := range h.gv.AllAddresses()[hostNIC] { // map order: sorted below
		if pa.Protocol != ipv4.ProtocolNumber {
			continue
		}
		a := netip.AddrFrom4(pa.AddressWithPrefix.Address.As4())
		if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// noBufferDrops sums the hosts' TxPacketsDroppedNoBufferSpace.
func (s *Sim) noBufferDrops() uint64 {
	var n uint64
	for _, h := range s.hosts {
		if h.booted {
			n += h.gv.Stats().NICs.TxPacketsDroppedNoBufferSpace.Value()
		}
	}
	return n
}

// byHost splits the logs per host, keeping their order.
func (s *Sim) byHost() ([][]evRec, [][]txRec) {
	n := len(s.hosts)
	evCount := make([]int, n)
	txCount := make([]int, n)
	for _, r := range s.evlog {
		evCount[r.host]++
	}
	for _, r := range s.txlog {
		if r.from >= 0 && engineFrame(r) {
			txCount[r.from]++
		}
	}
	evAll := make([]evRec, 0, len(s.evlog))
	txAll := make([]txRec, 0, len(s.txlog))
	evBy := make([][]evRec, n)
	txBy := make([][]txRec, n)
	for i := 0; i < n; i++ {
		evBy[i] = evAll[len(evAll) : len(evAll) : len(evAll)+evCount[i]]
		evAll = evAll[:len(evAll)+evCount[i]]
		txBy[i] = txAll[len(txAll) : len(txAll) : len(txAll)+txCount[i]]
		txAll = txAll[:len(txAll)+txCount[i]]
	}
	for _, r := range s.evlog {
		evBy[r.host] = append(evBy[r.host], r)
	}
	for _, r := range s.txlog {
		if r.from >= 0 && engineFrame(r) {
			txBy[r.from] = append(txBy[r.from], r)
		}
	}
	return evBy, txBy
}

// engineFrame reports whether r can be the link-local engine's: probes
// and announcements of other addresses (a DHCP lease's, probed by a
// detector of its own) are not timed against the engine's attempts.
func engineFrame(r txRec) bool {
	switch r.kind {
	case FrameProbe:
		return r.tpa[0] == 169 && r.tpa[1] == 254
	case FrameAnnouncement:
		return r.spa[0] == 169 && r.spa[1] == 254
	}
	return true
}

// checkTiming walks one host's events and frames in order.
func (s *Sim) checkTiming(i int, h *host, evs []evRec, txs []txRec, add func(string, int, int64, string, ...any)) {
	t := h.cfg.Timing.WithDefaults()
	var (
		pending    bool // an attempt has begun and its first probe is due
		begin      int64
		firstWait  bool // LinkUpDelay applies to this attempt
		rateUntil  int64
		rateSet    bool
		inAttempt  bool
		cand       [4]byte
		probes     int
		lastProbe  int64
		bound      bool
		boundAt    int64
		addr       [4]byte
		annSet     bool
		lastAnn    int64
		defSet     bool
		lastDef    int64
		conflicts  int
		firstSet   bool
		lastFirst  int64
		probesDone bool
	)
	withdraw := func(at int64) {
		if bound && at-boundAt >= int64(t.RateLimitInterval) {
			conflicts = 0
		}
		bound = false
	}
	newAttempt := func(at int64, first bool) {
		pending, begin, firstWait, rateSet, inAttempt = true, at, first, false, false
	}
	ei, ti := 0, 0
	for ei < len(evs) || ti < len(txs) {
		if ti >= len(txs) || (ei < len(evs) && evs[ei].ord < txs[ti].ord) {
			e := evs[ei]
			ei++
			switch e.kind {
			case recStart:
				if e.phase == 0 { // fresh state
					conflicts, firstSet = 0, false
				}
				bound, annSet, defSet = false, false, false
				newAttempt(e.at, true)
			case recLinkUp:
				newAttempt(e.at, true)
			case recLinkDown:
				pending, inAttempt = false, false
			case recConflict:
				if acd.Phase(e.phase) == acd.PhaseBound {
					withdraw(e.at)
				}
				conflicts++
				newAttempt(e.at, false)
			case recRateLimit:
				rateUntil, rateSet = e.until, true
			case recUnbind, recStop:
				withdraw(e.at)
				pending, inAttempt = false, false
			case recProbe:
				delay := int64(0)
				if firstWait {
					delay = int64(h.cfg.LinkUpDelay)
				}
				if rateSet && rateUntil-begin > delay {
					delay = rateUntil - begin
				}
				lo, hi := begin+delay, begin+delay+int64(t.ProbeWait)
				if !pending {
					add("first-probe", i, e.at, "first probe for %v without an attempt having begun", netip.AddrFrom4(e.addr))
				} else if (e.at < lo || e.at > hi) && !(h.cfg.DHCP && e.at > hi) {
					// (A DHCP host's link-local waits for DHCP first: only
					// its lower bound is checked.)
					add("first-probe", i, e.at, "first probe for %v at %v, want within [%v, %v]",
						netip.AddrFrom4(e.addr), dur(e.at), dur(lo), dur(hi))
				}
				if conflicts >= t.MaxConflicts && firstSet && e.at-lastFirst < int64(t.RateLimitInterval) {
					add("rate-limit", i, e.at, "attempt on %v %v after the previous one with %d conflicts counted, want at least %v",
						netip.AddrFrom4(e.addr), dur(e.at-lastFirst), conflicts, t.RateLimitInterval)
				}
				firstSet, lastFirst = true, e.at
				pending, inAttempt, cand, probes, probesDone = false, true, e.addr, 0, false
			case recBind:
				if !inAttempt || cand != e.addr {
					add("probe-count", i, e.at, "bound %v without probing it", netip.AddrFrom4(e.addr))
				} else {
					if probes != t.ProbeNum {
						add("probe-count", i, e.at, "bound %v after %d probes, want %d", netip.AddrFrom4(e.addr), probes, t.ProbeNum)
					}
					if e.at-lastProbe < int64(t.AnnounceWait) {
						add("announce-wait", i, e.at, "claimed %v %v after the last probe, want at least %v",
							netip.AddrFrom4(e.addr), dur(e.at-lastProbe), t.AnnounceWait)
					}
				}
				inAttempt = false
				bound, boundAt, addr, annSet, defSet = true, e.at, e.addr, false, false
			case recReannounce:
				annSet = false
			case recDefend:
				if defSet && e.at-lastDef < int64(t.DefendInterval) {
					add("defend-interval", i, e.at, "defended %v %v after the previous defence, want at least %v",
						netip.AddrFrom4(e.addr), dur(e.at-lastDef), t.DefendInterval)
				}
				defSet, lastDef = true, e.at
			}
			continue
		}
		r := txs[ti]
		ti++
		switch r.kind {
		case FrameProbe:
			if !inAttempt || r.tpa != cand {
				add("probe-count", i, r.at, "probe for %v outside an attempt", netip.AddrFrom4(r.tpa))
				continue
			}
			probes++
			if probes > 1 {
				gap := r.at - lastProbe
				if gap < int64(t.ProbeMin) || gap > int64(t.ProbeMax) {
					add("probe-gap", i, r.at, "probe %d for %v %v after the previous one, want within [%v, %v]",
						probes, netip.AddrFrom4(r.tpa), dur(gap), t.ProbeMin, t.ProbeMax)
				}
			}
			if probes > t.ProbeNum && !probesDone {
				probesDone = true
				add("probe-count", i, r.at, "more than %d probes for %v", t.ProbeNum, netip.AddrFrom4(r.tpa))
			}
			lastProbe = r.at
		case FrameAnnouncement:
			if r.flags&txDefence != 0 || !bound || r.spa != addr {
				continue
			}
			if annSet && r.at-lastAnn < int64(t.AnnounceInterval) {
				add("announce-gap", i, r.at, "announcement of %v %v after the previous one, want at least %v",
					netip.AddrFrom4(r.spa), dur(r.at-lastAnn), t.AnnounceInterval)
			}
			annSet, lastAnn = true, r.at
		}
	}
}

func dur(ns int64) time.Duration { return time.Duration(ns) }

func msOf(ns int64) float64 { return float64(ns) / 1e6 }
