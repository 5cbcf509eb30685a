package daemon

import (
	"github.com/autoip-project/autoip/stack"

	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// explainLink runs right after the TAP is opened: a TAP the daemon created
// is brought up (it is ours, and nobody else knows to); a TAP someone else
// left down (or that is missing) is waited for, and the log says what would
// end the wait.
func (d *daemon) explainLink(created bool) {
	name := d.cfg.Iface
	if created {
		if err := d.ifctl.bringUp(name); err != nil {
			d.log.Warn("could not bring up the TAP autoipd created; waiting for someone to", "err", err, "hint", "ip link set "+name+" up")
			return
		}
		d.log.Info("brought up the TAP autoipd created", "tap", name)
		return
	}
	f, exists, err := d.ifctl.flags(name)
	if err == nil && exists && f&unix.IFF_UP != 0 {
		// Up: the carrier is our open fd, and the kernel marks the TAP
		// running a few ms after the open; the link-state report follows.
		return
	}
	if why := d.ifctl.linkReason(name); why != "" {
		d.log.Warn("waiting for the link: " + why)
	}
}

// suspendedReason says why the engine yields, from the client's addresses
// (static, alias, DHCP) and its DHCP hold; st is nil where the client
// cannot be asked (its own callbacks during Attach): the start-up
// configuration says it then.
func (d *daemon) suspendedReason(st *stack.Status, as []stack.AddressStatus) string {
	if st != nil && st.Held != "" {
		return "link-local held back: " + st.Held
	}
	if st == nil && d.cfg.DHCP {
		return "link-local held back: waiting for a DHCP lease (-dhcp-fallback)"
	}
	var addrs []string
	if st == nil {
		for _, p := range d.cfg.Addrs {
			addrs = append(addrs, p.String()+" (static, to be probed)")
		}
	}
	for _, a := range as {
		switch a.State {
		case stack.AddrConfigured:
			addrs = append(addrs, a.Prefix.String()+" ("+a.Source.String()+")")
		case stack.AddrProbing, stack.AddrLinkDown:
			addrs = append(addrs, a.Prefix.String()+" ("+a.Source.String()+", being probed: link-local waits for its outcome)")
		}
	}
	if d.cfg.OForm {
		return fmt.Sprintf("a routable address (%s) is on the interface, and -o old yields to it: "+
			"drop old, or add force, to keep a link-local address next to it", strings.Join(addrs, ", "))
	}
	return fmt.Sprintf("a routable address (%s) is on the interface, and the autoipd flag form yields to it as QNX autoipd does "+
		"without -f: give -f, or use the -o form (which coexists), to claim a link-local address anyway", strings.Join(addrs, ", "))
}
