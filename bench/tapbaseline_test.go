//go:build linux

package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/floodsend"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/tap"
)

// BenchmarkTAPRawFlood is the baseline of BenchmarkTAPFloodConflictDetection
// (internal/integration): the same sender (an AF_PACKET socket on the
// kernel side of a TAP whose queue holds the whole flood, the same
// AIP_FLOOD_FRAMES ARP requests, a tagged conflicting announcement every
// 1,000th frame, the same back-off on a full socket buffer), but the TAP is
// read by a bare loop over tap.Device.Read: no gVisor, no engine. It reports
// the same metrics: frames/s read (frames / time from the first send to the
// last read), sent-frames/s, received/sent, and the "detection" latency of
// the tagged frames (send -> read) p50/p99. The ratio of the two benchmarks'
// frames/s is what the netstack path costs.
//
// Two sub-benchmarks: "blast" reads while the sender sends (as the flood
// benchmark does); "drain" holds the reader back until every frame is
// queued and then times the reads alone (frames / time from the release to
// the last read; no latency): the TAP's raw receive capacity, without the
// sender competing for the CPU or waking the reader for every frame. Drain
// also reports cpu-frames/s: frames / the process's CPU time over the same
// span, the capacity on a core of its own (robust against other tenants).
//
// AIP_FLOOD_RATE paces the sender (frames/s) as it paces the flood
// benchmark.
//
//	go test -run '^$' -bench TAPRawFlood -benchtime 1x ./bench/
func BenchmarkTAPRawFlood(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create TAP devices and network namespaces")
	}
	frames := 200_000
	if v, err := strconv.Atoi(os.Getenv("AIP_FLOOD_FRAMES")); err == nil && v > 0 {
		frames = v
	}
	rate := 0 // AIP_FLOOD_RATE: offered frames/s, paced as the flood benchmark paces; 0: as fast as possible
	if v, err := strconv.Atoi(os.Getenv("AIP_FLOOD_RATE")); err == nil && v > 0 {
		rate = v
	}
	for _, drain := range []bool{false, true} {
		name := "blast"
		if drain {
			name = "drain"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rawFloodOnce(b, frames, 1000, rate, drain)
			}
		})
	}
}

var (
	peerMAC = acd.MAC{0x02, 0x00, 0x5e, 0xbe, 0xef, 0x02}
	ours    = netip.MustParseAddr("169.254.50.50")
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func rawFloodOnce(b *testing.B, frames, every, rate int, drain bool) {
	ns := netns.New(b, "aipbr")
	ns.DisableIPv6(b)
	name := fmt.Sprintf("aipbr%d", os.Getpid()%100000)
	ns.IP(b, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(b, "link", "set", name, "txqueuelen", strconv.Itoa(frames+1000), "up")

	var dev *tap.Device
	var fd, ifindex int
	err := ns.Do(func() (err error) {
		if dev, err = tap.Open(tap.Config{Name: name}); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		// The same socket as the integration test's wire.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)

	conflicts := frames / every
	sent := make([]time.Time, conflicts)
	got := make([]time.Time, conflicts)
	var count atomic.Int64
	var last atomic.Int64
	var cpuEnd atomic.Int64 // process CPU time when the last frame was read
	done := make(chan struct{})
	gate := make(chan struct{})
	if !drain {
		close(gate)
	}
	go func() {
		defer close(done)
		<-gate
		buf := make([]byte, 65536+14)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n >= 42 && string(buf[6:12]) == string(peerMAC[:]) {
				if k := int(binary.BigEndian.Uint32(buf[14+20:])); k < conflicts {
					got[k] = now
				}
			}
			if count.Add(1) == int64(frames) {
				cpuEnd.Store(int64(cpuTime()))
			}
			last.Store(now.UnixNano())
		}
	}()

	other := acd.MAC{0x02, 0x00, 0x5e, 0x77, 0, 0}
	unrelated := make([][]byte, 256)
	for i := range unrelated {
		src := other
		src[5] = byte(i)
		p := acd.Packet{Op: acd.OpRequest, SenderHW: src, SenderIP: netip.AddrFrom4([4]byte{169, 254, 200, byte(i)}), TargetIP: netip.AddrFrom4([4]byte{169, 254, 201, byte(i)})}
		unrelated[i] = acd.Frame{Dst: acd.BroadcastMAC, Src: src, Packet: p}.AppendBinary(nil)
	}
	if err := floodsend.Prepare(fd); err != nil {
		b.Fatal(err)
	}
	isConflict := func(i int) bool { return i%every == every-1 && i/every < conflicts }
	frame := func(i int) []byte {
		if !isConflict(i) {
			return unrelated[i%len(unrelated)]
		}
		p := acd.Announcement(peerMAC, ours)
		binary.BigEndian.PutUint32(p.TargetHW[2:], uint32(i/every))
		return acd.Frame{Dst: acd.BroadcastMAC, Src: peerMAC, Packet: p}.AppendBinary(nil)
	}
	start := time.Now()
	if err := floodsend.Run(fd, frames, rate, frame, func(i int, t time.Time) {
		if isConflict(i) {
			sent[i/every] = t
		}
	}); err != nil {
		b.Fatal(err)
	}
	sendDur := time.Since(start)
	var cpu0 time.Duration
	if drain {
		start = time.Now()
		cpu0 = cpuTime()
		close(gate)
	}
	// Wait until the reader has drained the queue (500 ms without a frame).
	deadline := time.Now().Add(30 * time.Second)
	for prev := int64(-1); time.Now().Before(deadline); {
		c := count.Load()
		if c >= int64(frames) || c == prev {
			break
		}
		prev = c
		time.Sleep(500 * time.Millisecond)
	}
	if err := dev.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		b.Logf("close: %v", err)
	}
	<-done
	n := count.Load()
	cpu := time.Duration(cpuEnd.Load())
	if cpu == 0 {
		cpu = cpuTime()
	}
	cpu -= cpu0
	var lat []time.Duration
	for i := range got {
		if !got[i].IsZero() && !sent[i].IsZero() {
			lat = append(lat, got[i].Sub(sent[i]))
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	handled := time.Unix(0, last.Load()).Sub(start)
	b.ReportMetric(float64(n)/handled.Seconds(), "frames/s")
	b.ReportMetric(float64(frames)/sendDur.Seconds(), "sent-frames/s")
	b.ReportMetric(float64(n)/float64(frames), "received/sent")
	b.ReportMetric(float64(len(lat))/float64(conflicts), "conflicts-detected")
	if !drain {
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	} else {
		b.ReportMetric(float64(n)/cpu.Seconds(), "cpu-frames/s")
	}
}

// cpuTime is the CPU time (user + system) this process has used. In the
// drain runs nothing but the reader works while the queue is drained, so
// frames / CPU time is the reader's capacity on a core of its own, which
// other tenants of the machine do not disturb as they disturb the wall
// clock.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
