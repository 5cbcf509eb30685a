// Package daemon is autoipd: the command that claims an IPv4 link-local
// address for a gVisor netstack on a TAP interface and holds it, as QNX's
// autoipd utility and lsm-autoip.so module do. Run is the whole program
// (cmd/autoipd only calls it), so that it can be tested without exec.
//
// # Command line
//
// Usage (the -h text) lists every flag with its default and range. The QNX
// flags -a, -d, -f, -i, -p, -s, -t, -v, -w keep their meaning and may be
// combined getopt-style (-dfv, -dvi tap0, -a3); the lsm-autoip option string
// is accepted as -o if=,ip=,debug,delay=,abandon,force,old,route; Go-style
// long flags add what a Linux daemon needs (-create, -mac, -state-dir,
// -hook, -wait, -pcap, -status, ...).
//
// The two forms differ in one default, as on QNX: autoipd without -f yields
// to a routable address on the interface (Engine.YieldToRoutable), while
// lsm-autoip coexists unless "old" is given ("old,force" coexists again,
// "force" alone is ignored with a notice). When -o is present its values
// apply and its defaults (if=en0, coexist) are used; flags given alongside
// override the option string (-s over ip=, -f over old, -d=false over
// abandon; a differing override is logged), except -i and if=, which must
// name the same interface or the command line is refused. Every value is
// validated; a bad one exits 2 with a message naming the value and the
// accepted range.
//
// # Running
//
// The daemon takes an flock on STATE-DIR/IFACE.lock (holding its pid)
// before it opens the TAP, so a second daemon for the same interface exits
// 3 naming the holder's pid and never touches the TAP (R25). The engine's
// saved state is STATE-DIR/IFACE.state.json, the netstack's MAC (generated
// once, locally administered, never the kernel TAP's) STATE-DIR/IFACE.mac,
// and STATE-DIR/IFACE.sock answers every connection with the JSON status
// (autoipd -status). SIGINT and SIGTERM withdraw the address, save state
// and report STOP, then exit 0 (R26), or 1 if the state could not be saved
// (the log says what is lost); SIGHUP re-adds and re-announces the
// address. Signals are honoured from the first start-up stage on. If the
// state directory's lock, socket or MAC file disappear while the daemon
// runs, it puts them back as soon as inotify reports it (every
// -check-interval where inotify cannot watch the directory). The TAP's
// state is learnt from the kernel's link notifications (an rtnetlink
// socket that only listens), so a bound, idle daemon polls nothing; where
// no such socket can be had, the TAP is checked every -check-interval.
// The TAP is opened last, once the netstack is built, so that probing
// starts within moments of the kernel marking the TAP running. A TAP held by another
// process exits 3 naming it. With -create the TAP autoipd made is brought
// up; while the link is missing or down, or the engine yields to a routable
// address, the log (WARN) and -status ("reason") say why and what to do.
// Fatal errors are written once, in the -log-format.
//
// # Files
//
// The state directory is created 0700 when missing and refused, as sshd's
// StrictModes does, when another user owns it or can write to it (or to a
// directory above it that is not sticky). Every file in it is 0600 and
// opened without following links and without blocking; anything but a
// regular file of sensible size is refused by path, never read into the
// log. A bad MAC file stops start-up (a new MAC would change the host's
// identity and address: fix or remove it, or give -mac); a bad state file
// is reported at WARN and the daemon starts afresh. The status socket is
// bound in a private directory, made 0600 and renamed into place, so it
// is never reachable by others, whatever the umask.
//
// # Hooks
//
// With -hook PATH, BIND, CONFLICT (a bound address lost to a conflict),
// UNBIND (withdrawn for link down or a routable address) and STOP run
// "PATH EVENT IFACE ADDRESS" directly (no shell), with AUTOIPD_EVENT,
// AUTOIPD_IFACE, AUTOIPD_ADDRESS, AUTOIPD_MAC, AUTOIPD_PID, AUTOIPD_TIME
// and, for CONFLICT, AUTOIPD_CONFLICT_MAC, AUTOIPD_PACKET_KIND and
// AUTOIPD_PHASE (UNBIND: AUTOIPD_REASON) in the environment. Hooks run one
// at a time, in order, on their own goroutine fed by a queue, so the engine
// never waits for one. Each runs in a process group of its own, which is
// killed when the hook exits (whatever it left running in the background
// dies with it: a hook that means to start a service must detach it with
// setsid), after -hook-timeout, and when a second SIGINT/SIGTERM cuts the
// shutdown short; while shutdown waits for a hook it says so every two
// seconds. The first 64 KiB of a hook's stdout and of its stderr are logged
// line by line; the rest is read, discarded and counted in a "truncated"
// line. A failing or missing hook is logged, never fatal.
package daemon
