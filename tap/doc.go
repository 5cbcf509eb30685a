// Package tap opens Linux TAP devices with songgao/water and provides a gVisor
// link endpoint over one that survives the TAP going down, disappearing and
// coming back, with no netlink.
//
// # Device
//
// Open attaches to (or, with Config.Create, creates) a TAP device by name and
// returns a Device: one Ethernet frame per Read or Write, no packet-info
// header. The fd is non-blocking and driven by Go's poller, so Close unblocks
// a Read in progress. Exists and Flags query the kernel with ioctls on a
// datagram socket, so they see the network namespace of the calling OS
// thread.
//
// # Link
//
// NewLink wraps a Device in a gVisor channel endpoint (Link.Endpoint) that
// stays attached to the netstack NIC for the Link's whole life, while the TAP
// file descriptor underneath may be closed and re-opened:
//
//	l, err := tap.NewLink(tap.LinkConfig{Device: tap.Config{Name: "tap0"}, MAC: mac})
//	s.CreateNIC(1, ethernet.New(l.Endpoint()))
//
// A Link runs three goroutines: a reader (TAP -> destination-MAC filter ->
// InjectInbound), a writer (channel queue -> TAP) and a monitor, which checks
// the TAP's state every LinkConfig.CheckInterval with a single SIOCGIFFLAGS
// ioctl (that is the only periodic work) and also whenever the reader or the
// writer hits an error. The monitor reports transitions through
// LinkConfig.OnLinkChange, drops the fd when the TAP is deleted and re-opens
// the TAP by name when it exists again (re-creating it if Create is set).
//
// # Network namespaces
//
// A TAP name is resolved in the network namespace of the OS thread that opens
// /dev/net/tun. NewLink records the namespace of the calling thread and
// performs every later re-open (and every state check) in that namespace, even
// though its goroutines run on arbitrary threads; switching namespaces for a
// re-open needs CAP_SYS_ADMIN, and is skipped when the thread is already in
// the right namespace (always the case for an ordinary process, or one started
// by `ip netns exec`).
package tap
