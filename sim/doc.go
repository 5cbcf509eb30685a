// Package sim simulates many real AutoIP hosts on one Ethernet segment,
// deterministically, with faults, and checks that they end up with
// distinct link-local addresses by the rules of RFC 3927 and RFC 5227.
//
// # Hosts are the real thing
//
// Each host is a gVisor netstack with the project's Shim and AutoIP Client
// on a port of a segment (package segment), a channel endpoint
// (channel.New(n, 1514, mac)) under gVisor's Ethernet layer, without TCP
// (whose processor goroutines no clock controls). A static incumbent is the
// same netstack with a fixed 169.254 address and no AutoIP: its netstack
// answers ARP for the address. How the netstacks are built, and what a
// boot storm of 50,000 of them shares, is in stacks.go (see Scale).
// Actors (ActorKind) are scripted devices that are not netstacks, function
// ports of the segment: a proxy-ARP responder, a rogue that answers every
// probe, a rogue that announces other hosts' addresses, a source of
// malformed frames.
//
// # Determinism
//
// The segment runs everything on one goroutine and one stack.DetClock: its
// loop takes the frames the hosts wrote, puts them on the segment, runs the
// events due (deliveries delayed by the link model, host boots, scheduled
// operations, actor timers, all in one (time, insertion sequence) heap) and
// then the netstack and client timers due, before it moves virtual time.
// netstack's map-ordered outputs (AllAddresses, Neighbors) are sorted
// before they are reported. A host's link queue is drained right after each
// of its steps, so it never holds more than one step's frames
// (Report.Delivery.QueueFull and NoBufferSpace confirm it).
//
// Config.Seed is the only entropy. Host i draws its engine seed (its
// candidate sequence), the engine's random delays, netstack's RandSource
// and SecureRNG and its random arrival time from streams keyed by (seed,
// i, purpose), so adding a host changes nobody else's draws. Link faults
// are the segment's hashes of (seed, frame number, receiver). The same seed
// and scenario give byte-identical pcap files, traces, reports and
// pictures.
//
// The segment's fault model, partitions, link flaps and capture are the
// simulation's (see package segment); a host's port reports its link state
// to the host's client. Link flaps, moves between partitions and restarts
// with a new MAC are scheduled operations.
//
// # Delivery filtering
//
// A broadcast must not cost O(hosts). By default (Config.Unfiltered
// false) every host's port is filtered: the segment delivers a broadcast
// ARP frame only to the hosts it concerns, those that probe or hold its
// sender IP (spa) or its target IP (tpa). Each host's port is listed under
// the address from Client.Status().Addr whenever the candidate can change:
// on every engine event (PROBE, BIND, CONFLICT, which starts the next
// candidate, RATELIMIT, UNBIND, STOP) and after the operations that change
// it without an event (boot, SetLink, restart). Frames that do not decode
// as Ethernet/IPv4 ARP, and ARP whose spa or tpa is neither 0.0.0.0 nor a
// usable link-local address (169.254.255.255, 255.255.255.255, routable
// addresses), go to every host. This is the filtering real daemons install
// in the kernel (the BPF programs of systemd-networkd's sd-ipv4acd and of
// n-acd pass only ARP whose spa or tpa is the address being checked).
//
// Filtering does not change the outcome, because a host ignores every ARP
// frame whose spa and tpa are both outside what it probes or holds:
//
//   - The engine classifies a frame with acd.Classify against its candidate
//     or bound address. Unless spa or tpa equals that address, the verdict
//     is Unrelated, Own or BadSender: counters change, state does not.
//     The candidate counts from the moment it is chosen, before its first
//     probe (state Waiting), which is why the index is refreshed from
//     Status rather than from PROBE events. Probes for a candidate carry it
//     in tpa; announcements and conflicting requests and replies carry it
//     in spa; netstack's answer to a probe carries it in spa: all reach
//     the prober.
//   - netstack answers a request only if tpa is one of its addresses (or a
//     broadcast address, which the filter sends to everyone). Hosts are
//     built without link resolution (Scale), so they keep no neighbour
//     entries; with Config.FullStacks they do, but in a simulation without
//     traffic a host's only entries are Stale ones made by requests for its
//     own address, never used, whose confirmation sends nothing and starts
//     no timer. A host that sent traffic would also need the replies and
//     gratuitous ARP for the addresses it resolves: such simulations must
//     use Unfiltered, exactly as a daemon's BPF filter never stands between
//     the kernel's own ARP and the wire.
//   - No randomness is drawn for a frame a host ignores, and no timer is
//     created (the client re-arms only when its deadline changes), so the
//     DetClock's tie-breaking sequence is the same in both modes; fault
//     decisions are per-(frame, receiver) hashes.
//   - Which hosts a frame concerns is decided when it arrives, not when it
//     is sent, so a host that adopts a candidate while a frame about it is
//     in flight still receives it.
//
// TestFilteredEqualsUnfiltered runs every library scenario, faults and
// rogues included, in both modes and requires identical pcap files, event
// logs and reports; only the counts of deliveries and of deliveries lost
// differ, since those count work the filter saves. For 1,000 hosts booting
// at once the filter turns about five million deliveries into seven.
//
// # Invariants
//
// Report runs Check at the end of a run: no two hosts of a partition hold
// the same address; addresses in range; each NIC holds exactly what its
// client says; optionally, every live host bound; and the RFC timing,
// measured on the frame log: first probe within [begin+delay,
// begin+delay+PROBE_WAIT], probe gaps in [PROBE_MIN, PROBE_MAX],
// ANNOUNCE_WAIT before claiming, announcements at least ANNOUNCE_INTERVAL
// apart, first probes of consecutive attempts at least RATE_LIMIT_INTERVAL
// apart once MAX_CONFLICTS is reached, at most one defence per
// DEFEND_INTERVAL. The tests sweep these over many seeds.
//
// # Scenario files
//
// Package scenario reads scenarios: JSON documents (see scenario.Scenario
// for every field). The library in testdata/scenarios reproduces the bug
// classes other implementations have had, each with asserted outcomes. For
// example:
//
//	{
//	  "name": "partition-merge",
//	  "seed": 1,
//	  "duration": "2m",
//	  "hosts": [
//	    {"count": 2, "initial": "169.254.77.77"},
//	    {"count": 4}
//	  ],
//	  "events": [
//	    {"at": "0s",  "op": "partition", "groups": [[0, 2, 3], [1, 4, 5]]},
//	    {"at": "30s", "op": "merge"},
//	    {"at": "30s", "op": "flap", "hosts": [1], "for": "1s"}
//	  ],
//	  "expect": {
//	    "ever_bound": {"0": "169.254.77.77", "1": "169.254.77.77"},
//	    "holders": {"169.254.77.77": 1}
//	  }
//	}
//
// Hosts are numbered in the order of the host groups. Durations are Go
// duration strings. Omitting expect.bound requires every host to be bound.
//
// # Outputs
//
// A pcap of the segment (Config.PCAP; nanosecond timestamps in virtual
// time, Ethernet link type, readable by Wireshark and tcpdump), a per-host
// text trace (Config.Trace) and a progress line (Config.Progress) are
// written while the simulation runs; package report makes the summary
// (table or JSON) and the SVG timeline of a finished run. The command
// autoip-sim drives all of it.
//
// # Real time
//
// Bridge connects the segment to a real frame device (a TAP on a Linux
// bridge) and RunRealTime runs it with virtual time following the wall
// clock: the simulated hosts then share a real Ethernet segment with real
// link-local implementations (autoip-sim -tap).
//
// # Scale
//
// BenchmarkBootStorm and autoip-sim -perf boot 1,000 to 50,000 hosts at
// once. gVisor's stack.New costs about 78 KiB of heap per stack, nearly
// half of it the neighbour cache (a map presized to 512 entries) and a
// third per-stack IPv4 and iptables tables. A simulated host carries ARP
// only, so it is built without the neighbour cache and shares the IPv4
// factory and the empty iptables with every other host (stacks.go
// explains why each is safe): about 24 KiB, a fifth of the build time, and
// the same frames. The netstack randomness is a 24-byte generator instead
// of gVisor's 5 KiB default.
package sim
