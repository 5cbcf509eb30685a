package daemon

// Exit codes of Run (and of the autoipd command).
const (
	ExitOK          = 0 // success; or stopped by SIGINT/SIGTERM after withdrawing the address
	ExitFailure     = 1 // runtime failure (TAP, state directory, status socket, ...), or state not saved at stop
	ExitUsage       = 2 // bad command line: the message names the value and the accepted range
	ExitLocked      = 3 // another autoipd already manages the interface, or another process holds its TAP (the pid is in the message)
	ExitWaitTimeout = 4 // -wait: no address within -wait-timeout (the daemon keeps trying)
)

// Usage is autoipd's help text (-h).
const Usage = `usage: autoipd [-dfv] [-a num] -i iface [-p num] [-s ip] [-t timeout] [-w num]
               [-o option,option,...] [long flags]
       autoipd -status -i iface [-state-dir dir]
       autoipd -alias CIDR -i iface | autoipd -delete ADDR -i iface

Claims an IPv4 link-local address (169.254.1.0-169.254.254.255, RFC 3927 and
RFC 5227) for a userspace gVisor netstack on a TAP interface, and holds and
defends it until stopped.

QNX autoipd flags (single letters may be combined: -dfv, -dvi tap0, -a3):
  -a num      ARP announcements after claiming (ANNOUNCE_NUM), 1..100; default 2
  -d          do not defend: give the address up at the first conflict
  -f          claim a link-local address even while a routable one exists
              (default: yield to a routable address on the interface)
  -i iface    the TAP interface (required, unless -o if= is given)
  -p num      ARP probes before claiming (PROBE_NUM), 1..100; default 3
  -s ip       initial address to try first, 169.254.1.0..169.254.254.255
  -t timeout  seconds to wait after the link comes up before starting, 0..3600;
              default 0
  -v          verbose: log every ARP frame (log level debug)
  -w num      seconds of ANNOUNCE_WAIT and ANNOUNCE_INTERVAL, 1..60; default 2

lsm-autoip.so option string (mount -T io-pkt -o ... lsm-autoip.so):
  -o if=IFACE,ip=ADDR,debug,delay=MS,abandon,force,old,route,dhcp
      if=IFACE   the interface; default en0
      ip=ADDR    initial address (as -s)
      debug      verbose (as -v)
      delay=MS   probe delay 1..8000 ms, default 2000: probes are spaced
                 MS/2..MS apart, and the first waits 0..MS/2
      abandon    give the address up at the first conflict (as -d)
      old        remove the link-local address while a routable one exists
      force      with old: keep it anyway (force without old is ignored)
      route      route 169.254.0.0/16 via the routable address when there is one
      dhcp       run a DHCP client first, link-local as its fallback (as -dhcp)
  With -o the default is to coexist with routable addresses (as with -f).
  -o values apply; flags given alongside override them (-s over ip=, -f over
  old, -d=false over abandon); -i and if= must name the same interface.
  -o may be repeated; an option given twice must keep its value, and an
  empty -o is refused.

Every other flag takes one value: giving it twice with different values is
refused (-i a -i b is an error, not interface b).

Long flags:
  -create            create the TAP if it is missing (default: attach to an
                     existing TAP, waiting for it to appear)
  -mac MAC           the netstack's MAC address (default: a locally
                     administered one generated once and kept in
                     STATE-DIR/IFACE.mac; never the kernel TAP's MAC; an
                     unusable IFACE.mac stops start-up rather than change
                     the host's identity)
  -state-dir DIR     state, lock, MAC and status socket; default /var/lib/autoipd;
                     created 0700 if missing, refused if another user owns
                     it or can write to it; its files are 0600, and links,
                     FIFOs and devices in their place are refused
  -hook PATH         run PATH EVENT IFACE ADDRESS on BIND, CONFLICT, UNBIND and
                     STOP (details in AUTOIPD_* environment variables); for
                     -addr/-alias addresses on ADDR_BOUND, ADDR_CONFLICT,
                     ADDR_DEFEND, ADDR_REMOVED; with -dhcp on LEASE_BOUND,
                     LEASE_RENEWED, LEASE_LOST, LEASE_DECLINED and
                     AUTOCONFIGURE (AUTOIPD_LEASE_* give the lease); it runs
                     with autoipd's rights, so it is refused (at start, and
                     skipped at each event) if another user owns it or can
                     write to it or to a directory above it (sticky ones
                     such as /tmp excepted); a bare name is looked up in PATH
  -hook-timeout D    kill a hook still running after D (1ms..1h); default 10s
  -log-format F      text or json; default text
  -wait              start the daemon in the background, wait until it holds
                     an address, print the address and exit 0
  -wait-timeout D    with -wait: give up waiting after D (0 = no limit,
                     else 1ms..24h); default 0; the daemon keeps trying
  -pcap FILE         write every frame of the interface to FILE (pcap); an
                     existing FILE must be an earlier capture: a regular
                     file of ours with one link
  -status            print the running daemon's state as JSON and exit
  -seed N            candidate sequence seed, 1..2^64-1 (default: from the MAC)
  -check-interval D  how often the TAP's state and the state directory are
                     checked where the kernel cannot tell autoipd of changes
                     (no rtnetlink or inotify; normally it does, and autoipd
                     polls nothing) (10ms..1m); default 1s
  -addr CIDR         add a static routable address to the netstack NIC, like
                     "ifconfig en0 alias 10.0.0.1" (repeatable); it is probed
                     first (RFC 5227), configured only if no other host
                     answers, then defended for as long as it is configured;
                     a conflict is logged as an error and runs ADDR_CONFLICT
  -alias CIDR        ask the running daemon for IFACE to add CIDR the same
                     way ("ifconfig en0 alias", at run time); root or the
                     daemon's user only; exit 0 once it is being probed
  -delete ADDR       ask the running daemon to remove ADDR, added with
                     -addr or -alias ("ifconfig en0 delete")
  -dhcp              ask a DHCP server for an address first (RFC 2131), with
                     link-local as the fallback (QNX dhcp.client -a beside
                     lsm-autoip): the lease's address is probed before it is
                     configured (declined if in use), its mask and router
                     become routes, DNS is reported in -status and hooks;
                     link-local starts after -dhcp-fallback without a lease
                     and comes back when the lease is lost; with the flag
                     form (no -f) or -o old it gives way to the lease; a
                     server that says "do not auto-configure" (RFC 2563)
                     holds it back
  -dhcp-fallback D   with -dhcp: how long link-local waits for a lease
                     (0 = at once, else up to 1h); default 10s
  -dhcp-keep-lease   with -dhcp: keep the lease at stop (no DHCPRELEASE; it
                     is asked for again at the next start)
  -dhcp-hostname H   with -dhcp: send H as the host name (option 12)
  -dhcp-init-delay D with -dhcp: the first DHCPDISCOVER waits a random time
                     up to D (1ms..10s, default 1s); RFC 2131 §4.4.1 asks
                     for one to ten seconds to spread a network booting at
                     once, at that price on every start: 10s gives it

Signals: SIGINT and SIGTERM withdraw the address, save state, run the STOP
hook and exit 0; while a hook runs the log says which one it waits for,
and a second SIGINT or SIGTERM kills it (with its process group) and exits
at once. Both are honoured during start-up too. SIGHUP adds the address
back if it was removed and announces it again.

With -create, autoipd brings up the TAP it created; a TAP it did not create
is waited for while it is missing or down, and the log and -status
("reason") say so, as they say why the daemon stays "suspended".

Exit codes:
  0  success (or stopped by SIGINT/SIGTERM)
  1  runtime failure; also at stop when the state could not be saved (the
     log says what was lost)
  2  bad command line
  3  another autoipd already manages this interface, or another process
     holds its TAP (the message names the pid)
  4  -wait timed out (the daemon keeps running and trying)

Errors are written once, in the -log-format (a JSON object with json).
`
