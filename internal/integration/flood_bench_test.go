package integration

import (
	"encoding/binary"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/floodsend"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkTAPFloodConflictDetection floods a bound netstack through its
// TAP with ARP requests between other hosts (AIP_FLOOD_FRAMES, default
// 200,000), a conflicting announcement of our address hidden every
// 1,000th frame, sent by a kernel-side AF_PACKET socket (internal/floodsend:
// batches of 32 by sendmmsg, qdisc bypassed). It reports the
// ARP frames/s the whole path (TAP -> tap.Link -> gVisor NIC -> shim ->
// engine) handled, the fraction of conflicts detected, and the detection
// latency (send -> engine event) p50/p99. BenchmarkTAPRawFlood (package
// bench) is its baseline: the same sender and frames, read by a bare
// tap.Device.Read loop; bench/run.sh runs the two interleaved.
//
// Two sub-benchmarks, as in the baseline: "blast" handles the frames while
// the sender sends them; "drain" holds the path back until every frame is
// queued in the TAP and then times the path alone (frames / time from the
// release to the last frame the shim saw; no latency): the path's
// capacity; it also reports cpu-frames/s, frames / the process's CPU time
// over the drain (see BenchmarkTAPRawFlood). The hold is the engine's first event: a gate conflict is sent
// first, and the event hook, which runs on the Link's reader goroutine,
// blocks until the sender is done.
//
// The stack runs with the ARP fast path on (stack.Options.ARPFastPath), as
// autoipd runs it; AIP_ARP_FASTPATH=0 turns it off.
//
// AIP_FLOOD_RATE paces the sender (frames/s): above what the receiver
// drains, the latency is only the backlog in the TAP's queue; below it, it
// is the time one conflicting frame takes through TAP, netstack and engine.
//
// Run: go test -run '^$' -bench TAPFlood -benchtime 1x ./internal/integration/
func BenchmarkTAPFloodConflictDetection(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create TAP devices and network namespaces; CI runs as root")
	}
	frames := envInt("AIP_FLOOD_FRAMES", 200_000)
	rate := envInt("AIP_FLOOD_RATE", 0) // offered frames/s; 0: as fast as the sender can
	every := 1000
	for _, drain := range []bool{false, true} {
		name := "blast"
		if drain {
			name = "drain"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				floodOnce(b, frames, every, rate, drain)
			}
		})
	}
}

func floodOnce(b *testing.B, frames, every, rate int, drain bool) {
	bt := b
	ours := netip.MustParseAddr("169.254.50.50")
	tm := fastTiming()
	tm.DefendInterval = time.Nanosecond // defend-once forgets each defence at once: every conflict is defended, so each one is an event with a time
	// The TAP's ring is sized from txqueuelen when the fd attaches, so the
	// TAP is made first with a queue that holds the whole flood: the
	// figure is then about the netstack side, not kernel drops.
	ns := netns.New(bt, "aipfl")
	ns.DisableIPv6(bt)
	name := tapName("aipf")
	ns.IP(bt, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(bt, "link", "set", name, "txqueuelen", strconv.Itoa(frames+1000), "up")
	fast := os.Getenv("AIP_ARP_FASTPATH") != "0"
	h := newHost(bt, ns, name, hostOpts{fastARP: fast, cfg: stack.ClientConfig{Engine: autoip.Config{Initial: ours, Defend: acd.DefendOnce, Timing: tm}}})
	w := h.kernelSide()
	if a := h.waitBound(10 * time.Second); a != ours {
		b.Fatalf("bound %v", a)
	}
	w.stopCapture() // the sender needs the CPU

	conflicts := frames / every
	sent := make([]time.Time, conflicts)
	var mu sync.Mutex
	detected := map[int]time.Duration{}
	base := h.eventCount()

	other := acd.MAC{0x02, 0x00, 0x5e, 0x77, 0, 0}
	unrelated := make([][]byte, 256)
	for i := range unrelated {
		src := other
		src[5] = byte(i)
		p := acd.Packet{Op: acd.OpRequest, SenderHW: src, SenderIP: netip.AddrFrom4([4]byte{169, 254, 200, byte(i)}), TargetIP: netip.AddrFrom4([4]byte{169, 254, 201, byte(i)})}
		unrelated[i] = acd.Frame{Dst: acd.BroadcastMAC, Src: src, Packet: p}.AppendBinary(nil)
	}
	var release chan struct{}
	if drain {
		// Hold the reader: the gate conflict's DEFEND event blocks the
		// Link's reader goroutine (it performs the engine's outputs) until
		// every frame is queued.
		release = make(chan struct{})
		held := make(chan struct{})
		var once sync.Once
		h.setOnEvent(func(ev autoip.Event) {
			if ev.Kind == autoip.EventDefend && binary.BigEndian.Uint32(ev.Frame.Packet.TargetHW[2:]) == gateTag {
				once.Do(func() { close(held); <-release })
			}
		})
		defer h.setOnEvent(nil)
		p := acd.Announcement(peerMAC, ours)
		binary.BigEndian.PutUint32(p.TargetHW[2:], gateTag)
		if err := w.send(acd.Frame{Dst: acd.BroadcastMAC, Src: peerMAC, Packet: p}.AppendBinary(nil)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			close(release)
			b.Fatal("the gate conflict was not detected")
		}
	}
	arpIn0 := h.st.Shim().Stats().ARPIn
	if err := floodsend.Prepare(w.fd); err != nil {
		b.Fatal(err)
	}
	isConflict := func(i int) bool { return i%every == every-1 && i/every < conflicts }
	frame := func(i int) []byte {
		if !isConflict(i) {
			return unrelated[i%len(unrelated)]
		}
		p := acd.Announcement(peerMAC, ours)
		binary.BigEndian.PutUint32(p.TargetHW[2:], uint32(i/every)) // tag: which conflict
		return acd.Frame{Dst: acd.BroadcastMAC, Src: peerMAC, Packet: p}.AppendBinary(nil)
	}
	start := time.Now()
	if err := floodsend.Run(w.fd, frames, rate, frame, func(i int, t time.Time) {
		if isConflict(i) {
			sent[i/every] = t
		}
	}); err != nil {
		b.Fatal(err)
	}
	sendDur := time.Since(start)
	var cpu0, cpu1 time.Duration
	if drain {
		start = time.Now()
		cpu0 = cpuTime()
		close(release)
	}
	// Wait until the netstack has drained what the kernel queued.
	deadline := time.Now().Add(30 * time.Second)
	var arpIn uint64
	last, lastChange := uint64(0), time.Now()
	for time.Now().Before(deadline) {
		arpIn = h.st.Shim().Stats().ARPIn - arpIn0 // atomics only: Status would take the client's lock, which the reader takes per frame
		if arpIn != last {
			last, lastChange = arpIn, time.Now()
		}
		if arpIn >= uint64(frames) || time.Since(lastChange) > 500*time.Millisecond {
			cpu1 = cpuTime()
			break
		}
		time.Sleep(time.Millisecond)
	}
	handled := lastChange.Sub(start)
	// The shim counts a frame before the engine's event for it is
	// recorded: give the last conflicts a moment to arrive.
	for wait := time.Now().Add(time.Second); time.Now().Before(wait); time.Sleep(time.Millisecond) {
		n := 0
		for _, ev := range h.eventsSince(base) {
			if ev.Kind == autoip.EventDefend {
				n++
			}
		}
		if n >= conflicts+map[bool]int{true: 1}[drain] {
			break
		}
	}
	for _, ev := range h.eventsSince(base) {
		if ev.Kind != autoip.EventDefend {
			continue
		}
		idx := int(binary.BigEndian.Uint32(ev.Frame.Packet.TargetHW[2:]))
		if idx < conflicts && !sent[idx].IsZero() {
			mu.Lock()
			detected[idx] = ev.Time.Sub(sent[idx])
			mu.Unlock()
		}
	}
	lat := make([]time.Duration, 0, len(detected))
	for _, d := range detected {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(arpIn)/handled.Seconds(), "frames/s")
	b.ReportMetric(float64(frames)/sendDur.Seconds(), "sent-frames/s")
	b.ReportMetric(float64(arpIn)/float64(frames), "received/sent")
	b.ReportMetric(float64(len(detected))/float64(conflicts), "conflicts-detected")
	b.Logf("fast path %v; shim %+v; link %+v", fast, h.client().Status().Shim, h.link.Stats())
	if !drain {
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	} else if cpu1 > cpu0 {
		b.ReportMetric(float64(arpIn)/(cpu1-cpu0).Seconds(), "cpu-frames/s")
	}
}

// cpuTime is the CPU time (user + system) this process has used: see
// BenchmarkTAPRawFlood (package bench) for cpu-frames/s.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gateTag marks the drain mode's gate conflict (the conflicts of the flood
// are tagged 0, 1, 2, ...).
const gateTag = 0xffffffff
