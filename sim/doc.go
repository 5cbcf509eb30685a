// Package sim simulates many real AutoIP hosts on one Ethernet segment,
// deterministically, with faults, and checks that they end up with
// distinct link-local addresses by the rules of RFC 3927 and RFC 5227.
//
// # Hosts are the real thing
//
// Each host is a gVisor netstack built by stack.New on a channel link
// endpoint (channel.New(n, 1514, mac)), with the project's Shim and AutoIP
// Client, and without TCP (whose processor goroutines no clock controls).
// A static incumbent is the same netstack with a fixed 169.254 address
// added by Stack.AddAddress and no AutoIP: its netstack answers ARP for the
// address. Actors (ActorKind) are scripted devices that are not netstacks:
// a proxy-ARP responder, a rogue that answers every probe, a rogue that
// announces other hosts' addresses, a source of malformed frames.
//
// # Determinism
//
// All hosts share one stack.DetClock; nothing runs on another goroutine.
// The loop is
//
//	for {
//		progress := pump()              // hub work due now
//		for clk.RunOneDue() {           // netstack and client timers due now
//			progress = true
//		}
//		if !progress {
//			advance the clock to min(next timer, next hub event), or stop
//		}
//	}
//
// pump reads the frames the hosts wrote (a channel.Notification queues a
// host the moment it writes, so pump never scans idle hosts), puts them on
// the segment in that order, and runs the hub events due: deliveries
// delayed by the link model, host boots, scheduled operations, actor
// timers. Hub events sit in a heap keyed by (time, insertion sequence), so
// ties never depend on map order; netstack's map-ordered outputs
// (AllAddresses, Neighbors) are sorted before they are reported. A host's
// link queue is drained right after each of its steps, so it never holds
// more than one step's frames (Report.Delivery.QueueFull and NoBufferSpace
// confirm it).
//
// Config.Seed is the only entropy. Host i draws its engine seed (its
// candidate sequence), the engine's random delays, netstack's RandSource
// and SecureRNG and its random arrival time from streams keyed by (seed,
// i, purpose), so adding a host changes nobody else's draws. Link faults
// are hashes of (seed, frame number, receiver). The same seed and scenario
// give byte-identical pcap files, traces, reports and pictures.
//
// # The segment
//
// A frame on the segment reaches every host of the sender's partition at
// the same time, after Latency plus a jitter drawn per frame; Reorder holds
// a frame back so later ones overtake it, Dup delivers it twice, Echo
// delivers it back to its sender (repeaters, some Wi-Fi and USB links);
// Loss drops it per receiver. A frame is never delivered to its sender
// otherwise. Unicast frames reach only the hosts with that MAC (the NIC's
// address filter). Partitions split the segment; Merge joins it again.
// Link flaps (Client.SetLink), moves between partitions and restarts with
// a new MAC are scheduled operations.
//
// # Delivery filtering
//
// A broadcast must not cost O(hosts). By default (Config.Unfiltered
// false) the hub delivers a broadcast ARP frame only to the hosts it
// concerns: those that probe or hold its sender IP (spa) or its target IP
// (tpa). The hub keeps its own index from addresses to hosts, refreshed
// from Client.Status().Addr whenever the candidate can change: on every
// engine event (PROBE, BIND, CONFLICT, which starts the next candidate,
// RATELIMIT, UNBIND, STOP) and after the operations that change it without
// an event (boot, SetLink, restart). Frames that do not decode as
// Ethernet/IPv4 ARP, and ARP whose spa or tpa is neither 0.0.0.0 nor a
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
//     broadcast address, which the filter sends to everyone), and learns
//     from a request only when it answers it. It uses a reply only to
//     confirm a neighbour entry it already has for spa; in a simulation
//     without traffic, a host's only entries are Stale ones made by requests
//     for its own address, never used, whose confirmation sends nothing and
//     starts no timer. A host that sent traffic would also need the replies
//     and gratuitous ARP for the addresses it resolves: such simulations
//     must use Unfiltered (or extend the index), exactly as a daemon's BPF
//     filter never stands between the kernel's own ARP and the wire.
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
// A Scenario is a JSON document (see Scenario for every field). The
// library in testdata/scenarios reproduces the bug classes other
// implementations have had, each with asserted outcomes. For example:
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
// Report (summary table or JSON), a pcap of the segment (Config.PCAP;
// nanosecond timestamps in virtual time, Ethernet link type, readable by
// Wireshark and tcpdump; the same bytes gopacket's pcapgo.NewWriterNanos
// writes, produced without pcapgo because it would pull golang.org/x/net
// into the module), a per-host text trace (Config.Trace), a progress line
// (Config.Progress) and an SVG timeline of the run (WriteSVG). The command
// autoip-sim drives all of it.
//
// # Scale
//
// BenchmarkBootStorm boots 1,000 and 10,000 hosts at once. A host costs
// about 78 KiB of heap, nearly all of it gVisor's (its neighbour cache map
// alone is presized to 512 entries); the simulator's own share is the host
// record, the filter index and the frame and event logs. The netstack
// randomness is a 24-byte generator instead of gVisor's 5 KiB default.
package sim
