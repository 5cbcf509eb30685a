//go:build linux

package tap

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/internal/netns"
)

// TestInboundThroughput measures inbound frames/s. A kernel-side AF_PACKET
// socket in the test namespace sends N broadcast ARP requests out of the TAP
// (N = $AIP_TAP_FRAMES, default 200000; 50000 under -race), and we count
//
//   - raw: frames read by a plain loop over Device.Read (no gVisor), the
//     baseline;
//   - link: frames reaching a counting stack.NetworkDispatcher attached to
//     ethernet.New(l.Endpoint()) (Link reader goroutine, MAC filter,
//     PacketBuffer, InjectInbound, Ethernet parsing).
//
// in two scenarios:
//
//   - blast: the sender sends while the receiver reads, as fast as it can.
//     The TAP's queue (txqueuelen 1000) overflows in bursts, so frames are
//     lost (the kernel counts them as TX dropped), and sender and receiver
//     share the CPUs, so this mostly measures the pair.
//   - drain: the TAP's queue is enlarged to hold all N frames, the receiver
//     is held back (the raw loop does not read yet; the Link's dispatcher
//     blocks on its first frame) until the sender is done, then released.
//     This measures receive capacity alone, without loss.
//
// The rate is frames received / time from the first to the last received
// frame (drain: from the release). Each measurement is repeated
// $AIP_TAP_REPS times (default 1), raw and link interleaved, and the median
// is reported. Numbers are noisy on a small shared machine and only
// meaningful without -race:
//
//	AIP_TAP_REPS=5 go test -run TestInboundThroughput -v ./tap/
func TestInboundThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement skipped in -short mode")
	}
	n := 200000
	if raceEnabled {
		n = 50000
	}
	if s := os.Getenv("AIP_TAP_FRAMES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("bad AIP_TAP_FRAMES=%q", s)
		}
		n = v
	}
	reps := 1
	if s := os.Getenv("AIP_TAP_REPS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("bad AIP_TAP_REPS=%q", s)
		}
		reps = v
	}
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ns.IP(t, "link", "set", "aipt0", "up")
	ps := newPacketSender(t, ns, "aipt0")
	// A large send buffer, so that the sender is not throttled by socket
	// memory accounting while its frames wait in the TAP queue.
	if err := unix.SetsockoptInt(ps.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 1<<30); err != nil {
		t.Fatalf("SO_SNDBUFFORCE: %v", err)
	}

	raw := map[string]float64{}
	link := map[string]float64{}
	for _, sc := range []struct {
		name  string
		drain bool
	}{{"blast", false}, {"drain", true}} {
		qlen := "1000"
		if sc.drain {
			qlen = strconv.Itoa(n + 1000)
		}
		// The TAP's ring is sized from txqueuelen when an fd attaches.
		ns.IP(t, "link", "set", "aipt0", "txqueuelen", qlen)
		var rawRates, linkRates []float64
		for i := 0; i < reps; i++ {
			sent, got, r := measureRaw(t, ns, ps, n, sc.drain)
			t.Logf("%s raw  #%d: sent %d, received %d (%.1f%% lost), %.0f frames/s", sc.name, i+1, sent, got, loss(sent, got), r)
			rawRates = append(rawRates, r)
			sent, got, r = measureLink(t, ns, ps, n, sc.drain)
			t.Logf("%s link #%d: sent %d, received %d (%.1f%% lost), %.0f frames/s", sc.name, i+1, sent, got, loss(sent, got), r)
			linkRates = append(linkRates, r)
		}
		raw[sc.name], link[sc.name] = median(rawRates), median(linkRates)
	}
	for _, sc := range []string{"blast", "drain"} {
		ratio := 0.0
		if raw[sc] > 0 {
			ratio = link[sc] / raw[sc]
		}
		t.Logf("RESULT %s (median of %d): raw %.0f frames/s, link %.0f frames/s, link/raw %.2f", sc, reps, raw[sc], link[sc], ratio)
	}
	t.Logf("N=%d race=%v GOMAXPROCS=%d", n, raceEnabled, runtime.GOMAXPROCS(0))
}

// measureRaw counts frames read by a plain Device.Read loop.
func measureRaw(t *testing.T, ns *netns.NS, ps *packetSender, n int, drain bool) (sent, got int64, fps float64) {
	t.Helper()
	d := openInNS(t, ns, Config{Name: "aipt0"})
	var count atomic.Int64
	var first, last time.Time
	start := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-start
		if drain {
			first = time.Now()
		}
		buf := make([]byte, readBufSize)
		for {
			if _, err := d.Read(buf); err != nil {
				return
			}
			now := time.Now()
			if count.Add(1) == 1 && !drain {
				first = now
			}
			last = now
		}
	}()
	if !drain {
		close(start)
	}
	sent = blast(t, ps, n)
	if drain {
		close(start)
	}
	waitIdle(count.Load)
	d.Close()
	<-done
	got = count.Load()
	return sent, got, rate(got, first, last, drain)
}

// measureLink counts frames reaching a dispatcher through Link and ethernet.
func measureLink(t *testing.T, ns *netns.NS, ps *packetSender, n int, drain bool) (sent, got int64, fps float64) {
	t.Helper()
	ev := newLinkEvents()
	l := newLinkInNS(t, ns, LinkConfig{Device: Config{Name: "aipt0"}, MAC: ourMAC, CheckInterval: testInterval, OnLinkChange: ev.fn})
	ev.expect(t, true, stateTimeout)
	c := &counter{}
	if drain {
		c.gate = make(chan struct{})
	}
	ethernet.New(l.Endpoint()).Attach(c)
	sent = blast(t, ps, n)
	if drain {
		c.release()
	}
	waitIdle(c.n.Load)
	got = c.n.Load()
	first := time.Unix(0, c.first.Load())
	if drain {
		first = c.released
	}
	fps = rate(got, first, time.Unix(0, c.last.Load()), drain)
	if s := l.Stats(); s.RxFrames < uint64(got) {
		t.Errorf("Link RxFrames %d < delivered %d", s.RxFrames, got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return sent, got, fps
}

// blast sends the test ARP frame n times and returns how many sends succeeded.
func blast(t *testing.T, ps *packetSender, n int) int64 {
	t.Helper()
	frame := arpFrame(header.ARPRequest, otherMAC, header.EthernetBroadcastAddress, otherMAC,
		kernIP, "\x00\x00\x00\x00\x00\x00", ourIP)
	var sent int64
	start := time.Now()
	for i := 0; i < n; i++ {
		if ps.send(frame) == nil {
			sent++
		}
	}
	d := time.Since(start)
	t.Logf("sender: %d/%d sent in %v (%.0f frames/s)", sent, n, d.Round(time.Millisecond), float64(sent)/d.Seconds())
	return sent
}

// waitIdle returns once count has not changed for 300ms.
func waitIdle(count func() int64) {
	last := count()
	for {
		time.Sleep(300 * time.Millisecond)
		c := count()
		if c == last {
			return
		}
		last = c
	}
}

// rate is frames per second between first and last. Without a release time
// (drain false) the first frame only marks the start.
func rate(n int64, first, last time.Time, fromRelease bool) float64 {
	span := last.Sub(first).Seconds()
	if !fromRelease {
		n--
	}
	if n < 1 || span <= 0 {
		return 0
	}
	return float64(n) / span
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func loss(sent, got int64) float64 {
	if sent == 0 {
		return 0
	}
	return 100 * float64(sent-got) / float64(sent)
}

// counter is a stack.NetworkDispatcher that counts ARP packets. With a gate,
// its first delivery blocks until release.
type counter struct {
	n, first, last atomic.Int64
	gate           chan struct{}
	once           sync.Once
	released       time.Time
}

func (c *counter) release() {
	c.released = time.Now()
	close(c.gate)
}

func (c *counter) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, _ *stack.PacketBuffer) {
	if proto != header.ARPProtocolNumber {
		return
	}
	if c.gate != nil {
		c.once.Do(func() { <-c.gate })
	}
	now := time.Now().UnixNano()
	if c.n.Add(1) == 1 {
		c.first.Store(now)
	}
	c.last.Store(now)
}

func (c *counter) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
