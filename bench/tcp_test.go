//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// BenchmarkTCPThroughput measures one TCP connection's throughput between a
// gVisor netstack and a kernel peer across a TAP (MTU 1500 everywhere), in
// both directions, over three paths measured in the same run:
//
//   - tap: what an embedder gets from stack.New on a tap.Link (NIC -> shim
//     -> Ethernet -> tap.Endpoint), with a static address;
//   - fdbased: the same gVisor stack (same protocols and options) on gVisor's
//     own fdbased endpoint over the same kind of TAP (its default readv
//     dispatcher: a TAP is not a socket, so no recvmmsg);
//   - veth: kernel to kernel across a veth pair between two namespaces, the
//     ceiling.
//
// "send" is netstack -> kernel (for veth: one namespace to the other),
// "recv" is kernel -> netstack. The writer writes 64 KiB chunks for
// AIP_TCP_SECONDS (default 3) and closes; MB/s is bytes / (first write ->
// the reader's EOF), 1 MB = 10^6 bytes. The tap/fdbased ratio is what the
// tap.Link endpoint costs against gVisor's.
//
//	go test -run '^$' -bench TCPThroughput -benchtime 1x ./bench/
func BenchmarkTCPThroughput(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create TAP devices, veths and network namespaces")
	}
	secs := 3.0
	if v, err := strconv.ParseFloat(os.Getenv("AIP_TCP_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	dur := time.Duration(secs * float64(time.Second))
	for _, path := range []string{"tap", "fdbased", "veth"} {
		for _, dir := range []string{"send", "recv"} {
			b.Run(path+"/"+dir, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					var ln net.Listener
					var dial func() (net.Conn, error)
					var ns *netns.NS
					switch path {
					case "veth":
						ln, dial = setupVeth(b)
					default:
						ln, dial, ns = setupTAPStack(b, path == "fdbased")
					}
					var in0, out0 uint64
					if ns != nil {
						in0, out0 = kernelSegments(b, ns)
					}
					mbs := transfer(b, ln, dial, dir == "send", dur)
					b.ReportMetric(mbs, "MB/s")
					if ns != nil && dir == "send" {
						// How many data segments the kernel took per segment it
						// sent back (its ACKs): every ACK is work for netstack.
						in1, out1 := kernelSegments(b, ns)
						b.ReportMetric(float64(in1-in0)/float64(max(out1-out0, 1)), "segs/ack")
					}
				}
			})
		}
	}
}

var (
	kernAddr  = netip.MustParseAddr("10.201.0.1")
	stackAddr = netip.MustParsePrefix("10.201.0.2/24")
	stackMAC  = tcpip.LinkAddress("\x02\x00\x5e\xb7\x00\x02")
)

// setupTAPStack makes a namespace with a TAP whose kernel side holds
// kernAddr and a netstack on it holding stackAddr; it returns a kernel
// listener in the namespace, a dialer from the netstack to it and the
// namespace.
func setupTAPStack(b *testing.B, useFdbased bool) (net.Listener, func() (net.Conn, error), *netns.NS) {
	ns := netns.New(b, "aipbt")
	ns.DisableIPv6(b)
	name := fmt.Sprintf("aipbt%d", os.Getpid()%100000)
	ns.IP(b, "tuntap", "add", "dev", name, "mode", "tap")
	ns.IP(b, "addr", "add", kernAddr.String()+"/24", "dev", name)
	ns.IP(b, "link", "set", name, "up")

	var gv *gvstack.Stack
	var ln net.Listener
	if useFdbased {
		var fd int
		err := ns.Do(func() (err error) {
			if fd, err = openTAPFd(name); err != nil {
				return err
			}
			ln, err = net.Listen("tcp4", kernAddr.String()+":0")
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500, EthernetHeader: true, Address: stackMAC})
		if err != nil {
			unix.Close(fd)
			b.Fatal(err)
		}
		// The options of stack.New.
		gv = gvstack.New(gvstack.Options{
			NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
			TransportProtocols: []gvstack.TransportProtocolFactory{icmp.NewProtocol4, udp.NewProtocol, tcp.NewProtocol},
		})
		if err := gv.CreateNICWithOptions(1, ep, gvstack.NICOptions{Name: name}); err != nil {
			b.Fatal(err)
		}
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(stackAddr.Addr().As4()), PrefixLen: stackAddr.Bits()}}
		if err := gv.AddProtocolAddress(1, pa, gvstack.AddressProperties{}); err != nil {
			b.Fatal(err)
		}
		gv.AddRoute(tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1})
		b.Cleanup(func() {
			gv.Destroy() // closes the endpoint and waits for its goroutines
			unix.Close(fd)
		})
	} else {
		var link *tap.Link
		err := ns.Do(func() (err error) {
			if link, err = tap.NewLink(tap.LinkConfig{Device: tap.Config{Name: name}, MAC: stackMAC}); err != nil {
				return err
			}
			ln, err = net.Listen("tcp4", kernAddr.String()+":0")
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		st, err := stack.New(stack.Options{Link: link.Endpoint(), NICName: name})
		if err != nil {
			link.Close()
			b.Fatal(err)
		}
		if err := st.AddAddress(stackAddr); err != nil {
			b.Fatal(err)
		}
		gv = st.GVisor()
		b.Cleanup(func() {
			st.Close()
			link.Close()
		})
	}
	b.Cleanup(func() { ln.Close() })
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	dial := func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return gonet.DialContextTCP(ctx, gv, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(kernAddr.As4()), Port: port}, ipv4.ProtocolNumber)
	}
	return ln, dial, ns
}

// kernelSegments returns the namespace's TCP InSegs and OutSegs
// (/proc/net/snmp).
func kernelSegments(b *testing.B, ns *netns.NS) (in, out uint64) {
	snmp, err := ns.Exec("cat", "/proc/net/snmp")
	if err != nil {
		b.Fatalf("read /proc/net/snmp in %s: %v", ns.Name(), err)
	}
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			switch names[i] {
			case "InSegs":
				in = v
			case "OutSegs":
				out = v
			}
		}
	}
	if names == nil {
		b.Fatalf("no Tcp: lines in /proc/net/snmp of %s", ns.Name())
	}
	return in, out
}

// openTAPFd attaches to the TAP name with a plain TUNSETIFF (no packet
// info), as an fdbased user would.
func openTAPFd(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return fd, nil
}

// setupVeth makes two namespaces joined by a veth pair and returns a
// listener in the second and a dialer from the first.
func setupVeth(b *testing.B) (net.Listener, func() (net.Conn, error)) {
	a := netns.New(b, "aipbv")
	z := netns.New(b, "aipbv")
	a.DisableIPv6(b)
	z.DisableIPv6(b)
	a.IP(b, "link", "add", "aipbv0", "type", "veth", "peer", "name", "aipbv1", "netns", z.Name())
	a.IP(b, "addr", "add", "10.202.0.2/24", "dev", "aipbv0")
	z.IP(b, "addr", "add", "10.202.0.1/24", "dev", "aipbv1")
	a.IP(b, "link", "set", "aipbv0", "up")
	z.IP(b, "link", "set", "aipbv1", "up")
	var ln net.Listener
	if err := z.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.202.0.1:0"); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	addr := ln.Addr().String()
	dial := func() (net.Conn, error) {
		var c net.Conn
		err := a.Do(func() (err error) { c, err = net.DialTimeout("tcp4", addr, 10*time.Second); return err })
		return c, err
	}
	return ln, dial
}

// transfer connects, writes for dur in one direction and returns MB/s as
// the reader saw it.
func transfer(b *testing.B, ln net.Listener, dial func() (net.Conn, error), netstackSends bool, dur time.Duration) float64 {
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	c, err := dial()
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	var k net.Conn
	select {
	case k = <-accepted:
	case err := <-acceptErr:
		c.Close()
		b.Fatalf("accept: %v", err)
	case <-time.After(10 * time.Second):
		c.Close()
		b.Fatal("accept: timed out")
	}
	defer c.Close()
	defer k.Close()
	w, r := k, c // kernel -> netstack
	if netstackSends {
		w, r = c, k
	}
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		end := start.Add(dur)
		var err error
		for time.Now().Before(end) {
			if _, err = w.Write(buf); err != nil {
				break
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		werr <- err
	}()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatalf("read after %d bytes: %v", n, err)
		}
	}
	el := time.Since(start)
	if err := <-werr; err != nil {
		b.Fatalf("write: %v", err)
	}
	return float64(n) / el.Seconds() / 1e6
}
