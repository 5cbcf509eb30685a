// Package segment is a virtual Ethernet segment for gVisor netstacks: a
// switch, on one deterministic clock (stack.DetClock), to which the link
// endpoints of any number of stacks are attached, built by the simulator or
// by an embedder however they like, with a seeded fault model and a pcap
// recording in virtual time. The same seed and inputs give the same frames
// at the same virtual times, byte for byte.
//
// # Attaching stacks
//
// A port carries the frames of one NIC. The NIC's link, at the bottom of
// whatever the embedder stacks on it (the autoip Shim, gVisor's Ethernet
// layer, a sniffer, endpoints of their own), is a gVisor channel endpoint:
//
//	clk := stack.NewDetClock(start)
//	seg, _ := segment.New(clk, segment.Config{Seed: 1})
//	port, _ := seg.Attach(channel.New(64, 1514, mac), segment.PortConfig{})
//	shim, _ := stack.NewShim(port.Link())        // or ethernet.New(port.Link()), ...
//	s := gvstack.New(gvstack.Options{Clock: clk, ...})  // the stack uses the segment's clock
//	s.CreateNIC(1, shim)
//	client, _ := stack.Attach(s, 1, shim, stack.ClientConfig{})
//
// Port.Link reports the port's link state, so a stack.Client built on it
// follows SetLink. Function ports (AttachFunc) are devices that are not
// stacks: scripted hosts, monitors, bridges.
//
// # One goroutine
//
// The segment, the clock's timers and the stacks' work all run on the
// goroutine that drives the segment (Step, RunUntil, RunRealTime):
//
//	for {
//		progress := pump()              // frames written and events due now
//		for clk.RunOneDue() {           // stack timers due now
//			progress = true
//		}
//		if !progress {
//			advance the clock to the next timer or event, or stop
//		}
//	}
//
// pump takes the frames the stacks wrote (a channel.Notification queues a
// port the moment its stack writes, so idle ports cost nothing), puts them
// on the segment in that order and runs the events due: deliveries delayed
// by the link model, duplicates, echoes and functions scheduled with At.
// Events sit in one (time, insertion sequence) heap, so ties never depend
// on map or goroutine order. Delivery injects the frame into the receiving
// endpoint, which runs that stack synchronously; what it writes in reply is
// taken right after. A stack.Client performs its outputs outside its lock,
// so this re-entrant delivery is safe, and callbacks (OnEvent) may call the
// segment back (SetLink, SetGroup, At).
//
// gVisor's TCP processes segments on processor goroutines of its own
// (netstack.md, section 5): the frames they write reach the port from
// another goroutine, at a real time no virtual clock controls. Ports accept
// such writes, and Config.Settle makes the segment wait for them before it
// moves virtual time; a stack with TCP is then reproducible in what it
// does, though not guaranteed byte-identical. Without TCP (stack.Options
// NoTCP) a run is a pure function of its seeds.
//
// # Faults
//
// A frame put on the segment reaches every port of its sender's partition
// at the same time, after LinkModel.Latency plus a jitter drawn per frame;
// Reorder holds a frame back so later ones overtake it, Dup delivers it
// twice, Echo delivers it back to its sender (repeaters, some Wi-Fi and USB
// links); Loss drops it per receiver. A frame never reaches its sender
// otherwise. Unicast frames reach only the ports plugged with that MAC (the
// NIC's address filter); function ports see everything of their partition.
// Port.SetGroup splits the segment into partitions and Merge joins it;
// Port.SetLink takes a port's link down and up. Every fault decision is a
// hash of (seed, frame number, receiver).
//
// # Filtered delivery
//
// A broadcast must not cost O(ports) when thousands of stacks share the
// segment. A filtered port (PortConfig.Filtered) receives a broadcast ARP
// frame only if its sender or target IP is the address the port is
// concerned with (SetConcern: the address its stack probes or holds) or
// 0.0.0.0, unless that address is not a usable link-local one (broadcast,
// reserved, routable), in which case everyone gets it. It is the filter
// real ACD daemons install in the kernel (the BPF programs of sd-ipv4acd
// and n-acd). Unicast and non-ARP frames are never filtered. A stack that
// sends IP traffic needs the replies and gratuitous ARP for the addresses
// it resolves: leave its port unfiltered.
//
// # Real time
//
// RunRealTime lets virtual time follow the wall clock, and Bridge connects
// a real frame device, a TAP, to the segment: the segment's stacks then
// share a real Ethernet segment with real hosts (autoip-sim -tap).
package segment
