package daemon

import (
	crand "crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/autoip-project/autoip/stack"
)

// addrHookEvent maps an AddressEvent to the hook's event name, or "" for
// events that run no hook (the start of probing).
func addrHookEvent(ev stack.AddressEvent) string {
	if ev.Kind == stack.AddressProbe {
		return ""
	}
	return ev.Kind.String()
}

// addrHookEnv is the environment of a hook for ev: the address, where it
// came from, the other host on conflicts, and the lease's details.
func addrHookEnv(event, iface, mac string, ev stack.AddressEvent) []string {
	env := []string{
		"AUTOIPD_EVENT=" + event,
		"AUTOIPD_IFACE=" + iface,
		"AUTOIPD_ADDRESS=" + prefixAddr(ev),
		"AUTOIPD_PREFIX=" + prefixString(ev),
		"AUTOIPD_SOURCE=" + ev.Source.String(),
		"AUTOIPD_MAC=" + mac,
		"AUTOIPD_PID=" + strconv.Itoa(os.Getpid()),
		"AUTOIPD_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
	}
	switch ev.Kind {
	case stack.AddressConflict, stack.AddressDefended:
		env = append(env, "AUTOIPD_CONFLICT_MAC="+ev.From.String(), "AUTOIPD_PHASE="+ev.Phase.String())
	case stack.AutoConfigure:
		env = append(env, "AUTOIPD_LINKLOCAL_ALLOWED="+strconv.FormatBool(ev.Allowed))
	}
	if ev.Reason != "" {
		env = append(env, "AUTOIPD_REASON="+ev.Reason)
	}
	if l := ev.Lease; !l.IsZero() {
		env = append(env,
			"AUTOIPD_LEASE_SERVER="+addrString(l.Server),
			"AUTOIPD_LEASE_SECONDS="+strconv.FormatInt(int64(l.Duration/time.Second), 10),
			"AUTOIPD_LEASE_ROUTERS="+joinAddrs(l.Routers),
			"AUTOIPD_LEASE_DNS="+joinAddrs(l.DNS),
			"AUTOIPD_LEASE_DOMAIN="+l.Domain,
		)
		if e := l.Expiry(); !e.IsZero() {
			env = append(env, "AUTOIPD_LEASE_EXPIRES="+e.UTC().Format(time.RFC3339))
		}
	}
	return env
}

func prefixAddr(ev stack.AddressEvent) string {
	if !ev.Prefix.IsValid() {
		return ""
	}
	return ev.Prefix.Addr().String()
}

func prefixString(ev stack.AddressEvent) string {
	if !ev.Prefix.IsValid() {
		return ""
	}
	return ev.Prefix.String()
}

func joinAddrs[T interface{ String() string }](as []T) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// onAddrEvent is the client's OnAddressEvent: it queues the hook.
func (d *daemon) onAddrEvent(ev stack.AddressEvent) {
	name := addrHookEvent(ev)
	if name == "" || d.hooks == nil {
		return
	}
	call := hookCall{event: name, addr: prefixAddr(ev), env: addrHookEnv(name, d.cfg.Iface, d.mac.String(), ev)}
	d.gate.whenOpen(func() { d.hooks.enqueue(call) })
}

// dhcpConfig is the client's DHCP configuration, nil without -dhcp.
func (d *daemon) dhcpConfig() *stack.DHCPConfig {
	cfg := d.cfg
	if !cfg.DHCP {
		return nil
	}
	return &stack.DHCPConfig{
		InitDelay:       cfg.DHCPInitDelay,
		Rand:            dhcpRand(cfg.Seed),
		Hostname:        cfg.DHCPHostname,
		LinkLocalAfter:  cfg.DHCPFallback,
		LinkLocalAtOnce: cfg.DHCPFallback == 0,
		KeepLease:       cfg.DHCPKeepLease,
		Store:           &gatedLeases{gate: d.gate, inner: &leaseFile{path: cfg.path(".lease.json"), log: d.log}, log: d.log},
	}
}

// dhcpRand draws the DHCP client's transaction IDs and delays. RFC 2131
// wants the xid "a random number chosen by the client", and §4.1 a
// different one at each restart, which a generator seeded from the MAC
// (the library's default, for reproducible simulations) is not: it would
// repeat across restarts and be predictable from the MAC on the wire. So
// autoipd seeds it from the system's random source, unless -seed asks for
// a reproducible run.
func dhcpRand(seed uint64) *mrand.Rand {
	if seed != 0 {
		return mrand.New(mrand.NewPCG(seed, seed^0x64686370)) // "dhcp"
	}
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails on Linux (Go 1.24+: it panics instead)
	return mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])))
}
