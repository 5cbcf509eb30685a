// Package tap opens Linux TAP devices and provides a gVisor link endpoint
// over one that survives the TAP going down, disappearing and coming back.
// Nothing is configured through netlink; the Link only listens to the
// kernel's link notifications.
//
// # Device
//
// Open attaches to (or, with Config.Create, creates) a TAP device by name
// (one TUNSETIFF on /dev/net/tun, opened close-on-exec; an existing TAP's
// persistence is left as it is) and returns a Device: one Ethernet frame
// per Read or Write, no packet-info header. The fd is non-blocking and driven by Go's poller, so Close unblocks
// a Read in progress. Exists and Flags query the kernel with ioctls on a
// datagram socket, so they see the network namespace of the calling OS
// thread.
//
// # Link
//
// NewLink wraps a Device in a gVisor link endpoint (Link.Endpoint) that
// stays attached to the netstack NIC for the Link's whole life, while the TAP
// file descriptor underneath may be closed and re-opened:
//
//	l, err := tap.NewLink(tap.LinkConfig{Device: tap.Config{Name: "tap0"}, MAC: mac})
//	s.CreateNIC(1, ethernet.New(l.Endpoint()))
//
// A Link runs a reader (TAP -> destination-MAC filter -> the endpoint's
// inbound hook, if one is set -> the attached dispatcher, all on the
// reader's goroutine), a monitor and a listener for the kernel's link
// notifications; outbound frames are written on the caller's goroutine.
// The listener is an rtnetlink socket bound to RTMGRP_LINK in the TAP's
// namespace (it listens only; it configures nothing): whenever the kernel
// reports a link of the TAP's name or index created, changed or deleted,
// and whenever a read or write fails, the monitor checks the TAP with a
// single SIOCGIFFLAGS ioctl. An idle Link therefore does no periodic work
// and wakes nobody up; where no such socket can be had, the monitor polls
// every LinkConfig.CheckInterval instead. The monitor reports transitions
// through LinkConfig.OnLinkChange and Endpoint.WatchLinkState, drops the fd
// when the TAP is deleted and re-opens the TAP by name when it exists again
// (re-creating it if Create is set).
//
// A TAP becomes running (IFF_RUNNING) a few milliseconds after a reader
// attaches: the kernel's notification of it reports the link up then. With
// LinkConfig.DeferOpen the first open waits for Open, so that a program can
// build everything else first and start working the moment the link is
// really up.
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
