package daemon

import (
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

// suspendedReason says why the engine yields: in the daemon only -addr
// puts routable addresses on the NIC.
func (d *daemon) suspendedReason() string {
	var addrs []string
	for _, p := range d.cfg.Addrs {
		addrs = append(addrs, p.String())
	}
	if d.cfg.OForm {
		return fmt.Sprintf("a routable address (%s) is on the interface, and -o old yields to it: "+
			"drop old, or add force, to keep a link-local address next to it", strings.Join(addrs, ", "))
	}
	return fmt.Sprintf("a routable address (%s) is on the interface, and the autoipd flag form yields to it as QNX autoipd does "+
		"without -f: give -f, or use the -o form (which coexists), to claim a link-local address anyway", strings.Join(addrs, ", "))
}
