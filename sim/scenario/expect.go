package scenario

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
)

// Expect states a scenario's outcome. Host keys are host indices in
// decimal. Every field is optional.
type Expect struct {
	// Bound is the number of AutoIP hosts bound at the end. Without it,
	// every live AutoIP host must be bound (CheckOptions.AllBound).
	Bound *int `json:"bound,omitempty"`
	// Counter ranges.
	Attempts       *Range `json:"attempts,omitempty"`
	Conflicts      *Range `json:"conflicts,omitempty"`
	BoundConflicts *Range `json:"bound_conflicts,omitempty"`
	Defences       *Range `json:"defences,omitempty"`
	RateLimits     *Range `json:"rate_limits,omitempty"`
	Leases         *Range `json:"dhcp_leases,omitempty"`
	LeasesLost     *Range `json:"dhcp_leases_lost,omitempty"`
	Malformed      *Range `json:"malformed_frames,omitempty"`
	Echoed         *Range `json:"echoed,omitempty"`
	// Addr maps a host to the address it holds at the end ("" for none);
	// NotAddr to an address it must not hold; EverBound to an address it
	// must have bound at some time.
	Addr      map[string]string `json:"addr,omitempty"`
	NotAddr   map[string]string `json:"not_addr,omitempty"`
	EverBound map[string]string `json:"ever_bound,omitempty"`
	// Holders maps an address to the number of hosts holding it at the end.
	Holders map[string]int `json:"holders,omitempty"`
	// Quiet, if set, says whether the run must end quiet.
	Quiet *bool `json:"quiet,omitempty"`
}

// Range bounds a counter; a missing end is open.
type Range struct {
	Min *uint64 `json:"min,omitempty"`
	Max *uint64 `json:"max,omitempty"`
}

func (r *Range) check(name string, v uint64) string {
	if r == nil {
		return ""
	}
	if r.Min != nil && v < *r.Min {
		return fmt.Sprintf("%s is %d, want at least %d", name, v, *r.Min)
	}
	if r.Max != nil && v > *r.Max {
		return fmt.Sprintf("%s is %d, want at most %d", name, v, *r.Max)
	}
	return ""
}

func (e *Expect) validate(hosts int) error {
	checkHost := func(k string) error {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= hosts {
			return fmt.Errorf("%w: host key %q is not a host index 0..%d", sim.ErrInvalid, k, hosts-1)
		}
		return nil
	}
	for _, m := range []map[string]string{e.Addr, e.NotAddr, e.EverBound} {
		for k, v := range m {
			if err := checkHost(k); err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if _, err := netip.ParseAddr(v); err != nil {
				return fmt.Errorf("%w: host %s: address %q: %w", sim.ErrInvalid, k, v, err)
			}
		}
	}
	for a, n := range e.Holders {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("%w: holders: address %q: %w", sim.ErrInvalid, a, err)
		}
		if n < 0 {
			return fmt.Errorf("%w: holders of %s: %d is negative", sim.ErrInvalid, a, n)
		}
	}
	if e.Bound != nil && (*e.Bound < 0 || *e.Bound > hosts) {
		return fmt.Errorf("%w: bound %d out of range 0..%d", sim.ErrInvalid, *e.Bound, hosts)
	}
	return nil
}

// CheckExpect compares a report (with host detail) against the scenario's
// expectations and invariants, and returns one line per failure.
func (sc *Scenario) CheckExpect(r *report.Report) []string {
	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	for _, v := range r.Violations {
		failf("invariant %v", v)
	}
	e := &sc.Expect
	if e.Bound != nil && r.Bound != *e.Bound {
		failf("bound hosts: %d, want %d", r.Bound, *e.Bound)
	}
	for _, c := range []struct {
		name string
		r    *Range
		v    uint64
	}{
		{"attempts", e.Attempts, r.Attempts}, {"conflicts", e.Conflicts, r.Conflicts},
		{"bound conflicts", e.BoundConflicts, r.BoundConflicts}, {"defences", e.Defences, r.Defences},
		{"rate limits", e.RateLimits, r.RateLimits}, {"malformed frames", e.Malformed, r.Frames.Malformed},
		{"echoed frames", e.Echoed, r.Delivery.Echoed}, {"DHCP leases", e.Leases, r.Leases},
		{"DHCP leases lost", e.LeasesLost, r.LeasesLost},
	} {
		if msg := c.r.check(c.name, c.v); msg != "" {
			failf("%s", msg)
		}
	}
	host := func(k string) *report.HostReport {
		i, _ := strconv.Atoi(k)
		if i < 0 || i >= len(r.HostDetail) {
			return nil
		}
		return &r.HostDetail[i]
	}
	for _, k := range sortedKeys(e.Addr) {
		if h := host(k); h == nil || h.Addr != e.Addr[k] {
			failf("host %s holds %q, want %q", k, addrOf(h), e.Addr[k])
		}
	}
	for _, k := range sortedKeys(e.NotAddr) {
		if h := host(k); h != nil && h.Addr == e.NotAddr[k] {
			failf("host %s holds %s, which it must not", k, h.Addr)
		}
	}
	for _, k := range sortedKeys(e.EverBound) {
		h := host(k)
		found := false
		if h != nil {
			for _, a := range h.BoundAddrs {
				found = found || a == e.EverBound[k]
			}
		}
		if !found {
			var got []string
			if h != nil {
				got = h.BoundAddrs
			}
			failf("host %s never bound %s (bound %v)", k, e.EverBound[k], got)
		}
	}
	holders := map[string]int{}
	for _, h := range r.HostDetail {
		if h.Addr != "" {
			holders[h.Addr]++
		}
	}
	for _, a := range sortedKeys(e.Holders) {
		if holders[a] != e.Holders[a] {
			failf("%s is held by %d hosts, want %d", a, holders[a], e.Holders[a])
		}
	}
	if e.Quiet != nil && r.Quiet != *e.Quiet {
		failf("quiet is %v, want %v", r.Quiet, *e.Quiet)
	}
	return fails
}

func addrOf(h *report.HostReport) string {
	if h == nil {
		return "(no such host)"
	}
	return h.Addr
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return strings.Compare(keys[i], keys[j]) < 0
	})
	return keys
}
