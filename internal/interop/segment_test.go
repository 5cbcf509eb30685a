package interop

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/netns"
)

// segment is one case's Ethernet segment: a bridge in a namespace of its
// own, recorded by tcpdump from before anything joins it. Our daemon's TAP
// and each peer's veth are ports of the bridge.
type segment struct {
	t    *testing.T
	pfx  string // prefix of the case's namespaces and interfaces: "aip" or "aips"
	id   string // 6 hex digits shared by the case's interface names
	dir  string // captures, scripts, logs (copied out on failure)
	ns   *netns.NS
	br   string
	pcap string
	tcpd *proc

	mu    sync.Mutex
	peers int // peers made so far, for unique interface names
	procs []*proc
	logs  []string
	ours  *ours
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// toolPath finds name in PATH or, as root's tools live there and CI's PATH
// may lack them, in /usr/sbin or /sbin.
func toolPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if q, qerr := exec.LookPath(filepath.Join(dir, name)); qerr == nil {
			return q, nil
		}
	}
	return "", err
}

// requireTool skips the test unless the tool is installed.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := toolPath(name)
	if err != nil {
		t.Skipf("%s not found (Debian package %s); CI installs it: %v", name, pkg, err)
	}
	return p
}

// requireBase skips unless run as root with ip, tcpdump, ping and iputils
// arping, and fails if autoipd did not build.
func requireBase(t *testing.T) {
	t.Helper()
	netns.RequireRoot(t)
	requireTool(t, "tcpdump", "tcpdump")
	requireTool(t, "ping", "iputils-ping")
	requireTool(t, "arping", "iputils-arping")
	if out, _ := exec.Command("arping", "-V").CombinedOutput(); !strings.Contains(string(out), "iputils") {
		t.Skipf("arping is not iputils' (Debian package iputils-arping): %q", out)
	}
	if daemonBin == "" {
		t.Fatalf("autoipd was not built: %v", buildErr)
	}
}

// newSegment builds the bridge and starts the capture.
func newSegment(t *testing.T) *segment {
	t.Helper()
	return newSegmentNamed(t, "aip")
}

// newSegmentNamed is newSegment with the namespaces and interfaces named
// with prefix pfx (at most 4 bytes, starting with "aip").
func newSegmentNamed(t *testing.T, pfx string) *segment {
	t.Helper()
	requireBase(t)
	s := &segment{t: t, pfx: pfx, id: randHex(3), dir: t.TempDir()}
	s.ns = netns.New(t, pfx+"ib")
	s.ns.DisableIPv6(t)
	s.br = pfx + "br" + s.id
	s.ns.IP(t, "link", "add", s.br, "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
	s.ns.IP(t, "link", "set", s.br, "up")
	t.Cleanup(s.finish)
	s.pcap = filepath.Join(s.dir, "bridge.pcap")
	// -Z root: tcpdump must not drop to its own user before opening the
	// file in our 0700 directory. --immediate-mode and -U: every packet is
	// read and written at once (else the kernel batches them, and a capture
	// stopped at the end of a case misses the last second).
	s.tcpd = startProc(t, "tcpdump", "ip", "netns", "exec", s.ns.Name(),
		"tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i", s.br, "-w", s.pcap)
	s.addProc(s.tcpd)
	if _, ok := s.tcpd.waitLine("listening on", 10*time.Second); !ok {
		t.Fatalf("tcpdump did not start on %s:\n%s", s.br, s.tcpd.transcript())
	}
	return s
}

func (s *segment) addProc(p *proc) {
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
}

func (s *segment) addLog(path string) {
	s.mu.Lock()
	s.logs = append(s.logs, path)
	s.mu.Unlock()
}

// stopCapture stops tcpdump (which flushes the file) and decodes the
// capture; it runs the checks every case shares: every ARP packet our
// daemon sent with a link-local sender IP was broadcast (R14), and the
// daemon (a race-enabled build) reported no data race and did not panic.
func (s *segment) stopCapture() *wire {
	t := s.t
	t.Helper()
	time.Sleep(200 * time.Millisecond) // let the last frames reach the file
	s.tcpd.stop(5 * time.Second)
	w, err := loadWire(s.pcap)
	if err != nil {
		t.Fatalf("bridge capture: %v", err)
	}
	if o := s.ours; o != nil {
		if bad := w.r14Violations(o.mac); len(bad) > 0 {
			t.Errorf("R14: autoipd sent %d ARP packets with a link-local sender IP that were not link-layer broadcast:\n%v", len(bad), bad)
		}
		for _, bad := range w.unheldUse(o.mac, o.events(), 20*time.Millisecond) {
			t.Errorf("R10/R18: autoipd used an address it did not hold: %s", bad)
		}
		o.checkHealthy()
	}
	return w
}

// waitWire waits until the capture so far (tcpdump writes every packet at
// once) holds a frame match accepts at or after `after`, and returns it.
func (s *segment) waitWire(timeout time.Duration, after time.Time, what string, match func(arpFrame) bool) arpFrame {
	s.t.Helper()
	var f arpFrame
	if !waitFor(timeout, func() bool {
		w, err := loadWire(s.pcap)
		if err != nil {
			return false
		}
		var ok bool
		f, ok = w.find(after, match)
		return ok
	}) {
		s.t.Fatalf("no %s on the bridge within %v after %s", what, timeout, after.Format("15:04:05.000"))
	}
	return f
}

// finish runs after the case (and after its processes were stopped): on
// failure it logs every process's output and every event log, and copies
// the case directory (captures, logs, scripts) where it survives.
func (s *segment) finish() {
	t := s.t
	s.tcpd.stop(5 * time.Second)
	keep := os.Getenv("AIP_KEEP_ARTIFACTS") != ""
	if !t.Failed() && !keep {
		return
	}
	s.mu.Lock()
	procs, logs := append([]*proc(nil), s.procs...), append([]string(nil), s.logs...)
	s.mu.Unlock()
	for _, p := range procs {
		tr := p.transcript()
		if t.Failed() {
			t.Log(tr)
		}
		_ = os.WriteFile(filepath.Join(s.dir, "proc-"+p.name+".log"), []byte(tr), 0o644)
	}
	if t.Failed() {
		for _, l := range logs {
			b, err := os.ReadFile(l)
			t.Logf("=== %s (%v):\n%s", filepath.Base(l), err, b)
		}
		if w, err := loadWire(s.pcap); err == nil {
			t.Logf("=== ARP on the bridge:\n%s", w.dump())
		}
	}
	base := os.Getenv("AIP_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "aip-interop-artifacts")
	}
	dst := filepath.Join(base, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")+"-"+s.id)
	if err := copyDir(s.dir, dst); err != nil {
		t.Logf("could not keep the artifacts: %v", err)
		return
	}
	t.Logf("artifacts kept in %s (bridge.pcap: the whole segment; autoipd.pcap: the daemon's own capture; *.log: hook, action and process logs)", dst)
}

func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeTemplate writes testdata/name into the case directory with the
// replacements made, and returns its path.
func (s *segment) writeTemplate(name string, mode os.FileMode, repl ...string) string {
	s.t.Helper()
	return s.writeTemplateAs(name, name, mode, repl...)
}

// writeTemplateAs is writeTemplate into the case directory as out.
func (s *segment) writeTemplateAs(name, out string, mode os.FileMode, repl ...string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		s.t.Fatal(err)
	}
	body := strings.NewReplacer(repl...).Replace(string(b))
	if strings.Contains(body, "@") && regexp.MustCompile(`@[A-Z]+@`).MatchString(body) {
		s.t.Fatalf("testdata/%s: placeholder left after substitution:\n%s", name, body)
	}
	path := filepath.Join(s.dir, out)
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := toolPath(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// randomLL returns a random address in 169.254.1.0-169.254.254.255 that is
// none of avoid.
func randomLL(avoid ...netip.Addr) netip.Addr {
	for {
		b := []byte(randHex(2))
		var r [2]byte
		_, _ = hex.Decode(r[:], b)
		a := netip.AddrFrom4([4]byte{169, 254, r[0], r[1]})
		if r[0] == 0 || r[0] == 255 {
			continue
		}
		ok := true
		for _, x := range avoid {
			ok = ok && x != a
		}
		if ok {
			return a
		}
	}
}

// --- our daemon ---

// ours is autoipd on a TAP that is a port of the bridge.
type ours struct {
	s       *segment
	tap     string
	mac     string
	state   string
	hook    string
	hookLog string
	pcap    string
	p       *proc
}

// newOurs creates a persistent TAP in the bridge namespace, enslaves it and
// brings it up; start runs autoipd on it (without -create: it attaches).
func (s *segment) newOurs() *ours {
	s.t.Helper()
	return s.newOursN(0)
}

// newOursN is newOurs for the n-th daemon of a case (unique TAP and file
// names); the segment's checks look at the last one made.
func (s *segment) newOursN(n int) *ours {
	t := s.t
	t.Helper()
	suffix := ""
	if n > 0 {
		suffix = fmt.Sprint(n)
	}
	o := &ours{s: s, tap: s.pfx + "t" + s.id + suffix}
	o.mac = "02:a1:" + strings.Join(splitPairs(randHex(4)), ":")
	s.ns.IP(t, "tuntap", "add", "dev", o.tap, "mode", "tap")
	s.ns.IP(t, "link", "set", o.tap, "master", s.br)
	s.ns.IP(t, "link", "set", o.tap, "up")
	// A short state directory: it holds the status socket (108-byte limit).
	state, err := os.MkdirTemp("", "aipi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	o.state = state
	o.hookLog = filepath.Join(s.dir, "autoipd"+suffix+"-hook.log")
	o.hook = s.writeTemplateAs("autoipd-hook.sh", "autoipd"+suffix+"-hook.sh", 0o755, "@LOG@", o.hookLog, "@DATE@", lookPath(t, "date"))
	o.pcap = filepath.Join(s.dir, "autoipd"+suffix+".pcap")
	s.addLog(o.hookLog)
	s.ours = o
	return o
}

func splitPairs(h string) []string {
	var out []string
	for i := 0; i+2 <= len(h); i += 2 {
		out = append(out, h[i:i+2])
	}
	return out
}

// fast is our quick timing: probes 50..100 ms apart, the first within
// 50 ms; one second of ANNOUNCE_WAIT and ANNOUNCE_INTERVAL.
var fast = []string{"-o", "delay=100", "-w", "1"}

// start runs autoipd with args after the common ones.
func (o *ours) start(args ...string) {
	o.s.t.Helper()
	full := []string{"ip", "netns", "exec", o.s.ns.Name(), daemonBin,
		"-i", o.tap, "-mac", o.mac, "-state-dir", o.state, "-hook", o.hook, "-pcap", o.pcap,
		"-check-interval", "100ms"}
	o.p = startProc(o.s.t, "autoipd", append(full, args...)...)
	o.s.addProc(o.p)
}

func (o *ours) events() []event { return readEvents(o.hookLog) }

// current is the address the hook log says autoipd holds.
func (o *ours) current() netip.Addr { return heldAfter(o.events()) }

// waitBound waits until autoipd holds an address other than not (which may
// be the zero Addr) and returns it.
func (o *ours) waitBound(timeout time.Duration, not netip.Addr) netip.Addr {
	o.s.t.Helper()
	var a netip.Addr
	if !waitFor(timeout, func() bool {
		a = o.current()
		return a.IsValid() && a != not
	}) {
		o.s.t.Fatalf("autoipd holds no address (other than %v) after %v; hook events: %v", not, timeout, o.events())
	}
	return a
}

// waitEvent waits for a hook event ev for addr (any address if invalid)
// and returns it.
func (o *ours) waitEvent(timeout time.Duration, ev string, addr netip.Addr) event {
	o.s.t.Helper()
	var e event
	if !waitFor(timeout, func() bool {
		var ok bool
		e, ok = firstEvent(o.events(), ev, addr)
		return ok
	}) {
		o.s.t.Fatalf("no %s %v hook event after %v; hook events: %v", ev, addr, timeout, o.events())
	}
	return e
}

// waitCarrier waits until autoipd has opened its TAP (the bridge port has
// carrier).
func (o *ours) waitCarrier() {
	o.s.t.Helper()
	if !waitFor(10*time.Second, func() bool {
		out, err := o.s.ns.IPExec("link", "show", o.tap)
		return err == nil && !strings.Contains(out, "NO-CARRIER")
	}) {
		o.s.t.Fatalf("autoipd did not attach to %s", o.tap)
	}
}

// checkHealthy fails the case if the daemon reported a data race, panicked
// or exited on its own.
func (o *ours) checkHealthy() {
	if o.p == nil {
		return
	}
	for _, bad := range []string{"DATA RACE", "panic:", "fatal error:"} {
		if o.p.contains(bad) {
			o.s.t.Errorf("autoipd printed %q:\n%s", bad, o.p.transcript())
		}
	}
	if !o.p.running() {
		o.s.t.Errorf("autoipd exited during the case: %v", o.p.err)
	}
}

// --- peers ---

// peerHost is one peer: a namespace on a veth into the bridge, running
// avahi-autoipd, dhcpcd or nothing (kernel: a static address).
type peerHost struct {
	s       *segment
	kind    string // "avahi", "dhcpcd", "kernel"
	ns      *netns.NS
	ifname  string // in the peer namespace
	brport  string // the bridge's end
	mac     string
	evLog   string
	p       *proc
	started time.Time
}

// newPeer creates the peer's namespace and veth. Unless attached, the
// bridge's end is up but not a port of the bridge: the peer has carrier but
// is cut off from the segment until attach (a partition).
func (s *segment) newPeer(kind string, attached bool) *peerHost {
	t := s.t
	t.Helper()
	s.mu.Lock()
	n := s.peers
	s.peers++
	s.mu.Unlock()
	suffix := s.id
	if n > 0 {
		suffix += fmt.Sprint(n) // a second peer on the segment
	}
	ph := &peerHost{s: s, kind: kind, ifname: s.pfx + "v" + suffix, brport: s.pfx + "b" + suffix}
	ph.mac = "02:a2:" + strings.Join(splitPairs(randHex(4)), ":")
	ph.ns = netns.New(t, s.pfx+"ip")
	ph.ns.DisableIPv6(t)
	s.ns.IP(t, "link", "add", ph.brport, "type", "veth", "peer", "name", ph.ifname, "netns", ph.ns.Name())
	ph.ns.IP(t, "link", "set", ph.ifname, "address", ph.mac)
	ph.ns.IP(t, "link", "set", ph.ifname, "up")
	if attached {
		s.ns.IP(t, "link", "set", ph.brport, "master", s.br)
	}
	s.ns.IP(t, "link", "set", ph.brport, "up")
	ph.evLog = filepath.Join(s.dir, kind+suffix[len(s.id):]+"-events.log")
	s.addLog(ph.evLog)
	return ph
}

// attach makes the peer's veth a port of the bridge (heals the partition).
func (ph *peerHost) attach() {
	ph.s.ns.IP(ph.s.t, "link", "set", ph.brport, "master", ph.s.br)
}

func (ph *peerHost) hwaddr() net.HardwareAddr {
	m, err := net.ParseMAC(ph.mac)
	if err != nil {
		panic(err)
	}
	return m
}

// firstChoice is the address the peer will try first: dhcpcd's MAC-derived
// pick, or a random one for the others (avahi gets it with --start, the
// kernel as its static address).
func (ph *peerHost) firstChoice() netip.Addr {
	if ph.kind == "dhcpcd" {
		return dhcpcdPicks(ph.hwaddr(), 1)[0]
	}
	return randomLL()
}

// start starts the peer on first (dhcpcd: first must be its own pick).
func (ph *peerHost) start(first netip.Addr) {
	t := ph.s.t
	t.Helper()
	ph.started = time.Now()
	switch ph.kind {
	case "avahi":
		ph.startAvahi(first)
	case "dhcpcd":
		if want := dhcpcdPicks(ph.hwaddr(), 1)[0]; first != want {
			t.Fatalf("dhcpcd on %s starts on %v, not %v", ph.mac, want, first)
		}
		ph.startDhcpcd()
	case "kernel":
		ph.ns.IP(t, "addr", "add", first.String()+"/16", "dev", ph.ifname)
	default:
		t.Fatalf("unknown peer %q", ph.kind)
	}
}

func (ph *peerHost) startAvahi(first netip.Addr) {
	t := ph.s.t
	t.Helper()
	script := ph.s.writeTemplate("avahi-action.sh", 0o755, "@LOG@", ph.evLog, "@DATE@", lookPath(t, "date"), "@IP@", lookPath(t, "ip"))
	// avahi-autoipd keeps its pid file in /run and, once it has claimed an
	// address, the address in /var/lib/avahi-autoipd/MAC. Both names are
	// ours alone (unique interface name and MAC); remove them afterwards.
	// Registered before the process, so it runs after the process stopped.
	t.Cleanup(func() {
		for _, f := range []string{"/run/avahi-autoipd." + ph.ifname + ".pid", "/var/run/avahi-autoipd." + ph.ifname + ".pid",
			"/var/lib/avahi-autoipd/" + ph.mac} {
			_ = os.Remove(f)
		}
	})
	// Foreground, no privilege drop, no chroot. No --force-bind: the peer
	// has no routable address anyway, and with it avahi-autoipd ignores
	// SIGHUP (re-announce), which the merge cases use.
	ph.p = startProc(t, "avahi-autoipd", "ip", "netns", "exec", ph.ns.Name(),
		lookPath(t, "avahi-autoipd"), "--no-drop-root", "--no-chroot", "--no-proc-title", "--debug",
		"-t", script, "--start="+first.String(), ph.ifname)
	ph.s.addProc(ph.p)
}

func (ph *peerHost) startDhcpcd() {
	t := ph.s.t
	t.Helper()
	script := ph.s.writeTemplate("dhcpcd-script.sh", 0o755, "@LOG@", ph.evLog, "@DATE@", lookPath(t, "date"))
	conf := ph.s.writeTemplate("dhcpcd.conf", 0o644, "@SCRIPT@", script)
	// dhcpcd leaves its control sockets (and pid file) in /run/dhcpcd named
	// after the interface, whose name is ours alone; remove them afterwards.
	t.Cleanup(func() {
		for _, pat := range []string{ph.ifname + "-*", ph.ifname + ".*"} {
			m, _ := filepath.Glob(filepath.Join("/run/dhcpcd", pat))
			for _, f := range m {
				_ = os.Remove(f)
			}
		}
	})
	// -B foreground, -d debug log to stderr, -f our configuration.
	ph.p = startProc(t, "dhcpcd", "ip", "netns", "exec", ph.ns.Name(),
		lookPath(t, "dhcpcd"), "-B", "-d", "-f", conf, ph.ifname)
	ph.s.addProc(ph.p)
}

var inetRE = regexp.MustCompile(`inet (169\.254\.[0-9]+\.[0-9]+)/`)

// held returns the link-local addresses on the peer's interface.
func (ph *peerHost) held() []netip.Addr {
	out, err := ph.ns.IPExec("-4", "-o", "addr", "show", "dev", ph.ifname)
	if err != nil {
		return nil
	}
	var as []netip.Addr
	for _, m := range inetRE.FindAllStringSubmatch(out, -1) {
		if a, err := netip.ParseAddr(m[1]); err == nil {
			as = append(as, a)
		}
	}
	return as
}

// holding returns the peer's only link-local address (invalid if it holds
// none or several).
func (ph *peerHost) holding() netip.Addr {
	if h := ph.held(); len(h) == 1 {
		return h[0]
	}
	return netip.Addr{}
}

// waitHolds waits until the peer holds exactly one link-local address that
// is not `not` and returns it.
func (ph *peerHost) waitHolds(timeout time.Duration, not netip.Addr) netip.Addr {
	ph.s.t.Helper()
	var a netip.Addr
	if !waitFor(timeout, func() bool {
		a = ph.holding()
		return a.IsValid() && a != not
	}) {
		ph.s.t.Fatalf("%s holds %v after %v, want one link-local address other than %v", ph.kind, ph.held(), timeout, not)
	}
	return a
}

func (ph *peerHost) events() []event { return readEvents(ph.evLog) }

// ping pings addr n times from the peer's namespace and fails the case
// unless every echo is answered.
func (ph *peerHost) ping(addr netip.Addr, n int) {
	ph.s.t.Helper()
	out, err := ph.ns.Exec("ping", "-n", "-c", fmt.Sprint(n), "-i", "0.2", "-W", "2", "-I", ph.ifname, addr.String())
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		ph.s.t.Errorf("R23: ping %v from the %s peer: %v\n%s", addr, ph.kind, err, out)
	}
}

// arping runs iputils arping in the peer's namespace and returns its exit
// code and output.
func (ph *peerHost) arping(args ...string) (int, string) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ph.ns.Name(), "arping", "-I", ph.ifname}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return -1, string(out) + err.Error()
	}
	return 0, string(out)
}
