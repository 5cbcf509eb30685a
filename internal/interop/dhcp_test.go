package interop

import (
	"fmt"
	"net/netip"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/dhcp"
)

// DHCP on our userspace stack against real servers: dnsmasq and ISC Kea,
// each started by the test in a namespace of its own on the segment's
// bridge, serving 10.9.0.100-10.9.0.110 with the bridge peer's 10.9.0.1 as
// router. What we check is what the servers and kernel hosts see: leases
// in the server's log, pings to the leased address, DHCPDECLINE on the
// wire; the hook log only says when.

const (
	dhcpNet    = "10.9.0.0/24"
	dhcpServer = "10.9.0.1"
	poolFirst  = "10.9.0.100"
	poolSecond = "10.9.0.101"
)

// dhcpServerPeer is a DHCP server on a kernel peer.
type dhcpServerPeer struct {
	kind  string
	ph    *peerHost
	dir   string
	lease time.Duration
	p     *proc
}

// newDHCPServer makes a kernel peer with 10.9.0.1/24 (and a link-local
// address, so that link-local hosts can reach it) and starts kind on it.
func (s *segment) newDHCPServer(kind string, lease time.Duration) *dhcpServerPeer {
	t := s.t
	t.Helper()
	bin := map[string]string{"dnsmasq": "dnsmasq", "kea": "kea-dhcp4"}[kind]
	requireTool(t, bin, map[string]string{"dnsmasq": "dnsmasq-base", "kea": "kea-dhcp4-server"}[kind])
	ph := s.newPeer("kernel", true)
	ph.ns.IP(t, "addr", "add", dhcpServer+"/24", "dev", ph.ifname)
	ph.ns.IP(t, "addr", "add", "169.254.99.1/16", "dev", ph.ifname)
	d := &dhcpServerPeer{kind: kind, ph: ph, dir: filepath.Join(s.dir, kind), lease: lease}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.start()
	return d
}

func (d *dhcpServerPeer) start() {
	s := d.ph.s
	t := s.t
	t.Helper()
	switch d.kind {
	case "dnsmasq":
		// --no-ping and sequential allocation: the first address offered
		// is the first of the range, whoever holds it (the decline case
		// depends on it; ping checks are dnsmasq's own, optional, ACD).
		d.p = startProc(t, "dnsmasq", "ip", "netns", "exec", d.ph.ns.Name(), lookPath(t, "dnsmasq"),
			"--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root", "--group=root",
			"--interface="+d.ph.ifname, "--bind-interfaces", "--no-ping", "--dhcp-sequential-ip", "--dhcp-authoritative",
			fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.0,%ds", poolFirst, "10.9.0.110", int(d.lease/time.Second)),
			"--dhcp-option=3,"+dhcpServer, "--dhcp-option=6,"+dhcpServer,
			"--dhcp-leasefile="+filepath.Join(d.dir, "leases"), "--pid-file="+filepath.Join(d.dir, "pid"),
			"--log-dhcp", "--log-facility=-")
		if _, ok := d.p.waitLine("DHCP, IP range", 10*time.Second); !ok {
			t.Fatalf("dnsmasq did not start:\n%s", d.p.transcript())
		}
	case "kea":
		conf := filepath.Join(d.dir, "kea.json")
		cfg := fmt.Sprintf(`{"Dhcp4": {"interfaces-config": {"interfaces": [%q], "dhcp-socket-type": "raw"},
 "lease-database": {"type": "memfile", "persist": false},
 "valid-lifetime": %d, "renew-timer": %d, "rebind-timer": %d,
 "subnet4": [{"id": 1, "subnet": %q, "pools": [{"pool": "%s - 10.9.0.110"}],
   "option-data": [{"name": "routers", "data": %q}, {"name": "domain-name-servers", "data": %q}]}],
 "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "DEBUG", "debuglevel": 15}]}}`,
			d.ph.ifname, int(d.lease/time.Second), int(d.lease/2/time.Second), int(d.lease*7/8/time.Second),
			dhcpNet, poolFirst, dhcpServer, dhcpServer)
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		d.p = startProc(t, "kea-dhcp4", "env", "KEA_PIDFILE_DIR="+d.dir, "KEA_LOCKFILE_DIR="+d.dir,
			"ip", "netns", "exec", d.ph.ns.Name(), lookPath(t, "kea-dhcp4"), "-c", conf)
		if _, ok := d.p.waitLine("DHCP4_STARTED", 10*time.Second); !ok {
			t.Fatalf("kea did not start:\n%s", d.p.transcript())
		}
	}
	s.addProc(d.p)
}

func (d *dhcpServerPeer) stop() { d.p.stop(5 * time.Second) }

// leasedBy reports whether the server's log shows it acknowledged addr.
func (d *dhcpServerPeer) acked(addr netip.Addr) bool {
	switch d.kind {
	case "dnsmasq":
		return d.p.contains("DHCPACK(" + d.ph.ifname + ") " + addr.String())
	default:
		return d.p.contains("DHCP4_LEASE_ALLOC") && d.p.contains(addr.String())
	}
}

// dhcpOnWire returns the DHCP messages on the bridge from hardware address
// mac (client to server), decoded by our codec.
func dhcpOnWire(w *wire, mac string) []dhcp.Message {
	var out []dhcp.Message
	for _, f := range w.ips {
		if f.ethSrc != mac || f.sport != 68 || f.dport != 67 {
			continue
		}
		if m, err := dhcp.Decode(f.udp); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// dhcpArgs are our daemon's options for these cases: quick RFC 5227 timing,
// DHCP on, link-local after 30 s without a lease (beyond any case's lease
// wait, so that link-local appears only where a case makes it).
var dhcpArgs = []string{"-o", "delay=100,dhcp", "-w", "1", "-dhcp-fallback", "30s"}

func TestDHCPInterop(t *testing.T) {
	t.Parallel()
	requireBase(t)
	for _, kind := range []string{"dnsmasq", "kea"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct {
				name string
				run  func(t *testing.T, kind string)
			}{
				{"R32_LeasePingableFromKernelHost", caseLeasePingable},
				{"R32_OfferedAddressInUseDeclined", caseDeclineInUse},
			} {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, kind)
				})
			}
		})
	}
	t.Run("kea/RenewRebindExpireFallbackHandoff", func(t *testing.T) {
		t.Parallel()
		caseRenewExpireFallback(t)
	})
	t.Run("R31_StaticAddressInUseNotConfigured", func(t *testing.T) {
		t.Parallel()
		caseStaticInUse(t)
	})
	for _, form := range []string{"flag", "o"} {
		t.Run("R21_AliasDeleteAtRunTime_"+form, func(t *testing.T) {
			t.Parallel()
			caseAliasDelete(t, form)
		})
	}
}

// caseLeasePingable: the lease is obtained, ACD runs first (three probes on
// the wire before the address is used), the server's log shows the lease,
// the kernel peer pings it, and link-local stays off while a lease came in
// time.
func caseLeasePingable(t *testing.T, kind string) {
	s := newSegment(t)
	srv := s.newDHCPServer(kind, 2*time.Minute)
	o := s.newOurs()
	o.start(dhcpArgs...)
	ev := o.waitEvent(20*time.Second, "LEASE_BOUND", netip.Addr{})
	if !strings.HasPrefix(ev.addr.String(), "10.9.0.") || !srv.acked(ev.addr) {
		t.Fatalf("LEASE_BOUND %v; server log:\n%s", ev.addr, srv.p.transcript())
	}
	srv.ph.ping(ev.addr, 3)
	w := s.stopCapture()
	if n := w.count(time.Time{}, ev.at, probeBy(o.mac, ev.addr)); n < 3 {
		t.Errorf("R32: %d probes for %v before LEASE_BOUND, want at least 3", n, ev.addr)
	}
	msgs := dhcpOnWire(w, o.mac)
	if len(msgs) < 2 || msgs[0].Type != dhcp.Discover {
		t.Errorf("DHCP messages from us: %v", msgs)
	}
	if countEvents(o.events(), "BIND", netip.Addr{}) != 0 {
		t.Errorf("link-local bound although a lease came in time: %v", o.events())
	}
}

// caseDeclineInUse: a kernel host holds the first address of the pool; the
// server offers it; our probe finds it; DHCPDECLINE goes out; the next
// address is leased and that one never is the taken one.
func caseDeclineInUse(t *testing.T, kind string) {
	s := newSegment(t)
	holder := s.newPeer("kernel", true)
	holder.ns.IP(t, "addr", "add", poolFirst+"/24", "dev", holder.ifname)
	srv := s.newDHCPServer(kind, 2*time.Minute)
	o := s.newOurs()
	o.start(dhcpArgs...)
	ev := o.waitEvent(60*time.Second, "LEASE_BOUND", netip.Addr{})
	if ev.addr.String() == poolFirst {
		t.Fatalf("leased %v, which a kernel host holds", ev.addr)
	}
	o.waitEvent(time.Second, "LEASE_DECLINED", netip.MustParseAddr(poolFirst))
	holder.ping(ev.addr, 2)
	w := s.stopCapture()
	declined := false
	for _, m := range dhcpOnWire(w, o.mac) {
		if a, _ := m.Addr4(dhcp.OptRequestedIP); m.Type == dhcp.Decline && a.String() == poolFirst {
			declined = true
		}
	}
	if !declined {
		t.Errorf("R32: no DHCPDECLINE for %s on the wire; server log:\n%s", poolFirst, srv.p.transcript())
	}
}

// caseRenewExpireFallback (Kea, 20 s leases): renewals at T1; the server
// stops; the lease runs out (rebinding in between) and link-local comes
// back at once; the server returns and a lease is handed over again, next
// to link-local (the -o form coexists).
func caseRenewExpireFallback(t *testing.T) {
	s := newSegment(t)
	srv := s.newDHCPServer("kea", 20*time.Second)
	o := s.newOurs()
	o.start(dhcpArgs...)
	bound := o.waitEvent(20*time.Second, "LEASE_BOUND", netip.Addr{})
	o.waitEvent(20*time.Second, "LEASE_RENEWED", bound.addr)
	srv.stop()
	lost := o.waitEvent(40*time.Second, "LEASE_LOST", bound.addr)
	ll := o.waitBound(15*time.Second, netip.Addr{})
	if b, _ := firstEvent(o.events(), "BIND", ll); b.at.Sub(lost.at) > 10*time.Second {
		t.Errorf("link-local bound %v after the lease was lost, want at once (one claim)", b.at.Sub(lost.at))
	}
	srv.start()
	if !waitFor(90*time.Second, func() bool {
		for _, e := range o.events() {
			if e.ev == "LEASE_BOUND" && e.at.After(lost.at) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no new lease after the server came back: %v", o.events())
	}
	if o.current() != ll {
		t.Errorf("link-local %v gone after the lease came back; the -o form coexists", ll)
	}
	w := s.stopCapture()
	var rebind bool
	for _, m := range dhcpOnWire(w, o.mac) {
		rebind = rebind || (m.Type == dhcp.Request && m.CIAddr == bound.addr)
	}
	if !rebind {
		t.Error("no renewing/rebinding DHCPREQUEST (ciaddr set) on the wire")
	}
}

// caseStaticInUse: -addr with an address a kernel host holds: it is never
// configured (the kernel host sees no announcement of it from us and its
// pings to it are not answered by us), ADDR_CONFLICT runs, and -status says
// conflict.
func caseStaticInUse(t *testing.T) {
	s := newSegment(t)
	holder := s.newPeer("kernel", true)
	taken := netip.MustParseAddr("10.9.0.77")
	holder.ns.IP(t, "addr", "add", taken.String()+"/24", "dev", holder.ifname)
	o := s.newOurs()
	o.start("-o", "delay=100", "-w", "1", "-addr", taken.String()+"/24")
	o.waitEvent(10*time.Second, "ADDR_CONFLICT", taken)
	out, err := runCmd(daemonBin, "-status", "-i", o.tap, "-state-dir", o.state)
	if err != nil || !strings.Contains(out, `"state": "conflict"`) || !strings.Contains(out, `"source": "static"`) {
		t.Errorf("-status: %v\n%s", err, out)
	}
	w := s.stopCapture()
	if n := w.count(time.Time{}, time.Now(), announceBy(o.mac, taken)); n != 0 {
		t.Errorf("R31: %d announcements of %v, which a kernel host holds", n, taken)
	}
}

// caseAliasDelete: -alias and -delete reach the running daemon. In the
// flag form (no -f) link-local gives way to the alias and comes back when
// it is deleted; in the -o form they coexist.
func caseAliasDelete(t *testing.T, form string) {
	s := newSegment(t)
	peer := s.newPeer("kernel", true)
	peer.ns.IP(t, "addr", "add", "10.9.0.2/24", "dev", peer.ifname)
	o := s.newOurs()
	if form == "flag" {
		o.start("-p", "2", "-w", "1")
	} else {
		o.start(fast...)
	}
	ll := o.waitBound(20*time.Second, netip.Addr{})
	alias := netip.MustParseAddr("10.9.0.50")
	out, err := runCmd(daemonBin, "-alias", alias.String()+"/24", "-i", o.tap, "-state-dir", o.state)
	if err != nil {
		t.Fatalf("-alias: %v\n%s", err, out)
	}
	o.waitEvent(20*time.Second, "ADDR_BOUND", alias)
	peer.ping(alias, 2)
	if form == "flag" {
		o.waitEvent(5*time.Second, "UNBIND", ll)
	} else if o.current() != ll {
		t.Errorf("-o form: link-local %v gone next to the alias", ll)
	}
	out, err = runCmd(daemonBin, "-delete", alias.String(), "-i", o.tap, "-state-dir", o.state)
	if err != nil {
		t.Fatalf("-delete: %v\n%s", err, out)
	}
	o.waitEvent(5*time.Second, "ADDR_REMOVED", alias)
	if form == "flag" {
		if back := o.waitBound(20*time.Second, netip.Addr{}); back != ll {
			t.Errorf("after -delete link-local came back as %v, want %v (last address first)", back, ll)
		}
	}
	if out, err := runCmd(daemonBin, "-delete", alias.String(), "-i", o.tap, "-state-dir", o.state); err == nil || !strings.Contains(out, "not managed") {
		t.Errorf("second -delete: %v\n%s", err, out)
	}
	s.stopCapture()
}

// runCmd runs a command and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).CombinedOutput()
	return string(out), err
}
