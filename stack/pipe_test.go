package stack_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/stack"
)

// These tests wire two stacks the way an embedder may: with gVisor's own
// synchronous link/pipe, where a frame written by one stack is delivered to
// the other on the same goroutine, and the other's answer comes straight
// back, re-entering the first client while it is still sending.

var (
	pipeMACA = tcpip.LinkAddress("\x02\x00\x00\x00\xaa\x01")
	pipeMACB = tcpip.LinkAddress("\x02\x00\x00\x00\xbb\x02")
)

// quickTiming makes a claim take tens of milliseconds of real time.
func quickTiming() acd.Timing {
	return acd.Timing{
		ProbeWait: 10 * time.Millisecond, ProbeMin: 10 * time.Millisecond, ProbeMax: 20 * time.Millisecond,
		AnnounceWait: 20 * time.Millisecond, AnnounceInterval: 20 * time.Millisecond,
	}
}

// newPipeStack builds a stack with TCP on one end of a pipe.
func newPipeStack(t *testing.T, link *pipe.Endpoint, clk tcpip.Clock, noTCP bool) *stack.Stack {
	t.Helper()
	s, err := stack.New(stack.Options{Link: link, Clock: clk, NoTCP: noTCP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func attach(t *testing.T, s *stack.Stack, cfg stack.ClientConfig) *stack.Client {
	t.Helper()
	c, err := stack.Attach(s.GVisor(), s.NIC(), s.Shim(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitBound waits for c's address and fails with every goroutine's stack if
// it does not come: a deadlock shows there.
func waitBound(t *testing.T, c *stack.Client, within time.Duration) netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	a, err := c.WaitBound(ctx)
	if err != nil {
		buf := make([]byte, 1<<20)
		t.Fatalf("%v\ngoroutines:\n%s", err, buf[:runtime.Stack(buf, true)])
	}
	return a
}

// TestPipeConflictOnBoundAddress: host B holds an address; host A starts
// with that address as its initial one. A's probe makes B's netstack answer
// synchronously into A's client; before the fix both clients hung for ever.
// Both directions, then TCP between the two claimed addresses.
func TestPipeConflictOnBoundAddress(t *testing.T) {
	for _, dir := range []string{"A probes B's address", "B probes A's address"} {
		t.Run(dir, func(t *testing.T) {
			epA, epB := pipe.New(pipeMACA, pipeMACB, 1514)
			sa, sb := newPipeStack(t, epA, nil, false), newPipeStack(t, epB, nil, false)
			first, second := sb, sa
			if dir != "A probes B's address" {
				first, second = sa, sb
			}
			held := attach(t, first, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming()}})
			x := waitBound(t, held, 10*time.Second)
			var events []autoip.Event
			done := make(chan struct{}, 8)
			late := attach(t, second, stack.ClientConfig{
				Engine:  autoip.Config{Timing: quickTiming(), Initial: x},
				OnEvent: func(ev autoip.Event) { events = append(events, ev); done <- struct{}{} },
			})
			y := waitBound(t, late, 10*time.Second)
			if y == x {
				t.Fatalf("both hold %v", x)
			}
			if a, _ := held.WaitBound(context.Background()); a != x {
				t.Fatalf("the holder lost %v (now %v)", x, a)
			}
			if st := late.Status(); st.Stats.ProbeConflicts == 0 {
				t.Errorf("no probe conflict on %v recorded: %+v", x, st.Stats)
			}
			tcpEcho(t, first, x, second, y)
		})
	}
}

// tcpEcho connects from (c, ca) to a listener on (s, sa) and echoes a
// message back.
func tcpEcho(t *testing.T, s *stack.Stack, sa netip.Addr, c *stack.Stack, ca netip.Addr) {
	t.Helper()
	l, err := gonet.ListenTCP(s.GVisor(), tcpip.FullAddress{NIC: s.NIC(), Addr: tcpip.AddrFrom4(sa.As4()), Port: 7}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.Copy(conn, conn)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := gonet.DialTCPWithBind(ctx, c.GVisor(),
		tcpip.FullAddress{NIC: c.NIC(), Addr: tcpip.AddrFrom4(ca.As4())},
		tcpip.FullAddress{NIC: c.NIC(), Addr: tcpip.AddrFrom4(sa.As4()), Port: 7}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial %v from %v: %v", sa, ca, err)
	}
	defer conn.Close()
	msg := fmt.Sprintf("hello from %v to %v", ca, sa)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v; want %q", got, err, msg)
	}
}

// TestPipeConflictDetClock: the same collision on a deterministic clock
// with synchronous delivery: everything runs on the test's goroutine, so a
// lock held while sending would deadlock at once. Two runs give the same
// event sequence.
func TestPipeConflictDetClock(t *testing.T) {
	run := func() string {
		clk := stack.NewDetClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		epA, epB := pipe.New(pipeMACA, pipeMACB, 1514)
		sa, sb := newPipeStack(t, epA, clk, true), newPipeStack(t, epB, clk, true)
		var log []string
		rec := func(who string) func(autoip.Event) {
			return func(ev autoip.Event) {
				log = append(log, fmt.Sprintf("%d %s %v %v", ev.Time.UnixNano(), who, ev.Kind, ev.Addr))
			}
		}
		b := attach(t, sb, stack.ClientConfig{OnEvent: rec("B")})
		clk.RunUntil(clk.Now().Add(time.Minute))
		x := b.Status().Configured
		if !x.IsValid() {
			t.Fatalf("B not bound: %+v", b.Status())
		}
		a := attach(t, sa, stack.ClientConfig{Engine: autoip.Config{Initial: x}, OnEvent: rec("A")})
		clk.RunUntil(clk.Now().Add(time.Minute))
		y := a.Status().Configured
		if !y.IsValid() || y == x || b.Status().Configured != x {
			t.Fatalf("A %v, B %v; want distinct addresses, B keeping %v", y, b.Status().Configured, x)
		}
		return fmt.Sprint(log)
	}
	if r1, r2 := run(), run(); r1 != r2 {
		t.Fatalf("runs differ:\n%s\n%s", r1, r2)
	}
}

// TestR30_ConnectionsResetWhenAddressGivenUp: a TCP connection to our
// address is reset (the peer gets a RST) when a conflict makes us give the
// address up (RFC 3927 §2.5: "hosts SHOULD actively attempt to reset any
// existing connections using that address"); KeepConnections leaves it.
func TestR30_ConnectionsResetWhenAddressGivenUp(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepConnections=%v", keep), func(t *testing.T) {
			epA, epB := pipe.New(pipeMACA, pipeMACB, 1514)
			sa, sb := newPipeStack(t, epA, nil, false), newPipeStack(t, epB, nil, false)
			ca := attach(t, sa, stack.ClientConfig{KeepConnections: keep, Engine: autoip.Config{Timing: quickTiming(), Defend: acd.Abandon}})
			cb := attach(t, sb, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming()}})
			x, y := waitBound(t, ca, 10*time.Second), waitBound(t, cb, 10*time.Second)

			l, err := gonet.ListenTCP(sa.GVisor(), tcpip.FullAddress{NIC: sa.NIC(), Addr: tcpip.AddrFrom4(x.As4()), Port: 80}, ipv4.ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := l.Accept(); err == nil {
					accepted <- c
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := gonet.DialTCPWithBind(ctx, sb.GVisor(),
				tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(y.As4())},
				tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(x.As4()), Port: 80}, ipv4.ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			srv := <-accepted
			defer srv.Close()

			// A rogue (its frame injected beside B) announces x: A abandons it.
			rogue := acd.MAC{0x02, 0x66, 0, 0, 0, 1}
			if err := sb.Shim().InjectOutbound(acd.BroadcastFrame(acd.Announcement(rogue, x)).AppendBinary(nil)); err != nil {
				t.Fatal(err)
			}
			if st := ca.Status(); st.Configured == x || st.Stats.BoundConflicts != 1 {
				t.Fatalf("A after the conflict: %+v", st)
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			reset := err != nil && strings.Contains(err.Error(), "reset")
			if reset == keep {
				t.Fatalf("read on B's connection: %v; want reset=%v", err, !keep)
			}
			if n := ca.Status().ConnectionsReset; n != map[bool]uint64{false: 1, true: 0}[keep] {
				t.Errorf("ConnectionsReset %d", n)
			}
		})
	}
}

// TestR30_ConnectionInHandshakeReset: a conflict right after the peer's
// Dial returned, before netstack has made the accepted endpoint, still
// ends in a RST for the peer (from the given-up address, briefly), never a
// hang.
func TestR30_ConnectionInHandshakeReset(t *testing.T) {
	for i := range 5 {
		epA, epB := pipe.New(pipeMACA, pipeMACB, 1514)
		sa, sb := newPipeStack(t, epA, nil, false), newPipeStack(t, epB, nil, false)
		ca := attach(t, sa, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming(), Defend: acd.Abandon}})
		cb := attach(t, sb, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming()}})
		x, y := waitBound(t, ca, 10*time.Second), waitBound(t, cb, 10*time.Second)
		l, err := gonet.ListenTCP(sa.GVisor(), tcpip.FullAddress{NIC: sa.NIC(), Addr: tcpip.AddrFrom4(x.As4()), Port: 80}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := gonet.DialTCPWithBind(ctx, sb.GVisor(),
			tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(y.As4())},
			tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(x.As4()), Port: 80}, ipv4.ProtocolNumber)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rogue := acd.MAC{0x02, 0x66, 0, 0, 0, 1}
		if err := sb.Shim().InjectOutbound(acd.BroadcastFrame(acd.Announcement(rogue, x)).AppendBinary(nil)); err != nil {
			t.Fatal(err)
		}
		// The peer sends, then reads. (A peer that only reads, with its
		// handshake's last ACK still in netstack's queue when the address
		// goes, is not reached: netstack cannot send from an address it
		// no longer has, and we do not know the sequence numbers.)
		time.Sleep(20 * time.Millisecond)
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, werr := conn.Write([]byte("after the conflict"))
		_, rerr := conn.Read(make([]byte, 1))
		if !isReset(werr) && !isReset(rerr) {
			t.Fatalf("run %d: write %v, read %v: want the connection reset; A resets %d, shim %+v", i, werr, rerr, ca.Status().ConnectionsReset, sa.Shim().Stats())
		}
		conn.Close()
		l.Close()
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// TestR18_GivenUpAddressOpensNothingNew: once an address is given up, a new
// connection attempt to it (a SYN still sent to our MAC) is not answered:
// RFC 3927 §2.5 (b), "the host MUST immediately cease using this address",
// and the address may already be another host's. Only segments of
// connections that existed (they carry an ACK) are answered with a RST for
// a short while (R30). The SYN used to be refused with a RST from the old
// address, seen on the wire 8 s after the address was given up.
func TestR18_GivenUpAddressOpensNothingNew(t *testing.T) {
	epA, epB := pipe.New(pipeMACA, pipeMACB, 1514)
	sa, sb := newPipeStack(t, epA, nil, false), newPipeStack(t, epB, nil, false)
	ca := attach(t, sa, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming(), Defend: acd.Abandon}})
	cb := attach(t, sb, stack.ClientConfig{Engine: autoip.Config{Timing: quickTiming()}})
	x, y := waitBound(t, ca, 10*time.Second), waitBound(t, cb, 10*time.Second)
	// B keeps sending to A's old MAC: its neighbour entry for x stays.
	if err := sb.GVisor().AddStaticNeighbor(sb.NIC(), ipv4.ProtocolNumber, tcpip.AddrFrom4(x.As4()), pipeMACA); err != nil {
		t.Fatal(err)
	}
	rogue := acd.MAC{0x02, 0x66, 0, 0, 0, 2}
	if err := sb.Shim().InjectOutbound(acd.BroadcastFrame(acd.Announcement(rogue, x)).AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ca.Status().Configured == x && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if ca.Status().Configured == x {
		t.Fatalf("%v was not given up", x)
	}
	before := sa.Shim().Stats().Resets
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	conn, err := gonet.DialTCPWithBind(ctx, sb.GVisor(),
		tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(y.As4())},
		tcpip.FullAddress{NIC: sb.NIC(), Addr: tcpip.AddrFrom4(x.As4()), Port: 80}, ipv4.ProtocolNumber)
	if err == nil {
		conn.Close()
		t.Fatalf("a connection to the given-up address %v was opened", x)
	}
	if after := sa.Shim().Stats().Resets; after != before || isReset(err) || strings.Contains(err.Error(), "refused") {
		t.Errorf("a SYN to the given-up address was answered: dial %v, shim resets %d -> %d; want no answer (a timeout)", err, before, after)
	}
}
