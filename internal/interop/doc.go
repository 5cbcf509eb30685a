// Package interop proves autoipd against real IPv4 link-local
// implementations sharing one Ethernet segment with it: avahi-autoipd,
// dhcpcd (IPv4LL only) and a kernel host holding a static 169.254 address,
// probed and attacked with arping (iputils).
//
// Each case builds its own topology in throw-away network namespaces named
// aip*: a bridge in a namespace of its own, autoipd's TAP attached to it,
// and each peer in its own namespace on a veth into the bridge. tcpdump
// records the bridge; claim and move-off times are measured from that one
// capture and printed as a table (go test -v). On failure the captures and
// every process's log are kept under $AIP_ARTIFACTS, or
// $TMPDIR/aip-interop-artifacts, and the path is printed; with
// AIP_KEEP_ARTIFACTS=1 they are kept for passing cases too.
//
// TestSimulatorOnRealSegment puts 50 simulated hosts (autoip-sim -tap) on
// such a bridge with all three peers at once, forced onto one address,
// and judges from the capture and ARP queries that all end up distinct;
// its namespaces and interfaces are named aips*.
//
// The tests need root and skip with a message without it, or when a peer's
// binary is missing. CI installs the peers (Debian packages avahi-autoipd,
// dhcpcd-base, iputils-arping, iputils-ping, tcpdump, iproute2).
package interop
