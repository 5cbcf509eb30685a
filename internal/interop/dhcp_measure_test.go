package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestDHCPStartToUsable measures, against the same dnsmasq on one bridge
// in one run, how long our daemon and dhcpcd take from start until the
// leased address is configured (both probe it first). It logs the figures
// and asserts only that both got a lease: timing is not a test.
func TestDHCPStartToUsable(t *testing.T) {
	t.Parallel()
	requireBase(t)
	requireTool(t, "dhcpcd", "dhcpcd-base")
	s := newSegment(t)
	s.newDHCPServer("dnsmasq", 10*time.Minute)
	const runs = 3
	var ours, theirs []time.Duration
	for i := range runs {
		o := s.newOursN(i)
		o.start("-dhcp", "-f", "-dhcp-fallback", "30s")
		ev := o.waitEvent(30*time.Second, "LEASE_BOUND", noAddr)
		ours = append(ours, ev.at.Sub(o.p.start))
		o.p.stop(5 * time.Second) // releases the lease

		ph := s.newPeer("dhcpcd", true)
		script := s.writeTemplateAs("dhcpcd-script.sh", fmt.Sprintf("dhcpcd%d-script.sh", i), 0o755, "@LOG@", ph.evLog, "@DATE@", lookPath(t, "date"))
		conf := s.writeTemplateAs("dhcpcd-dhcp.conf", fmt.Sprintf("dhcpcd%d.conf", i), 0o644, "@SCRIPT@", script)
		t.Cleanup(func() {
			for _, pat := range []string{ph.ifname + "-*", ph.ifname + ".*"} {
				m, _ := filepath.Glob(filepath.Join("/run/dhcpcd", pat))
				for _, f := range m {
					_ = os.Remove(f)
				}
			}
		})
		ph.p = startProc(t, "dhcpcd", "ip", "netns", "exec", ph.ns.Name(), lookPath(t, "dhcpcd"), "-B", "-d", "-f", conf, ph.ifname)
		s.addProc(ph.p)
		var bound event
		if !waitFor(30*time.Second, func() bool {
			var ok bool
			bound, ok = firstEvent(ph.events(), "BOUND", noAddr)
			return ok
		}) {
			t.Fatalf("dhcpcd got no lease:\n%s", ph.p.transcript())
		}
		theirs = append(theirs, bound.at.Sub(ph.p.start))
		ph.p.stop(5 * time.Second)
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	t.Logf("start -> leased address configured, against dnsmasq, %d runs each (median, min..max):", runs)
	t.Logf("  autoipd -dhcp: %v (%v..%v)", ours[runs/2], ours[0], ours[runs-1])
	t.Logf("  dhcpcd:        %v (%v..%v)", theirs[runs/2], theirs[0], theirs[runs-1])
}

var noAddr netip.Addr
