package stack_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// claimOnTAP is the README's embedding example: a netstack of its own on a
// TAP, claiming a link-local address, and use running with it for as long
// as the address is wanted (the address is withdrawn when claimOnTAP
// returns). The TAP may be down or not there yet: nothing is probed until
// it is up, and nothing is claimed without probes on the wire. (The README
// shows the lines between the markers.)
func claimOnTAP(ctx context.Context, name string, mac tcpip.LinkAddress, use func(*stack.Stack, netip.Addr) error) error {
	// README:begin
	link, err := tap.NewLink(tap.LinkConfig{Device: tap.Config{Name: name}, MAC: mac})
	if err != nil {
		return err
	}
	defer link.Close()
	st, err := stack.New(stack.Options{Link: link.Endpoint(), AutoIP: &stack.ClientConfig{}})
	if err != nil {
		return err
	}
	defer st.Close() // withdraws the address
	// 169.254.x.y, configured on the NIC with a 169.254/16 route, once
	// the TAP is up and the address probed; ctx bounds the wait.
	addr, err := st.Client().WaitBound(ctx)
	if err != nil {
		return err
	}
	return use(st, addr) // serve, dial (st.GVisor() with gonet), ...
	// README:end
}

// Embedding on a TAP: the address is printed once the TAP ll0 exists, is
// up and the address has been claimed. (Needs CAP_NET_ADMIN; not run as a
// test here, see TestREADMEExample.)
func Example_tap() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := claimOnTAP(ctx, "ll0", tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01"), func(st *stack.Stack, addr netip.Addr) error {
		fmt.Println("claimed", addr)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
}

// TestREADMEExample runs the README's example on a TAP that is down, on one
// that does not exist, and on one that is up, with the kernel side of the
// TAP watching: no address without probes on the wire.
func TestREADMEExample(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "aipex")
	ns.DisableIPv6(t)
	mac := tcpip.LinkAddress("\x02\x00\x5e\xe0\x00\x01")
	run := func(name string, d time.Duration) (netip.Addr, error) {
		var a netip.Addr
		err := ns.Do(func() (err error) {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			return claimOnTAP(ctx, name, mac, func(st *stack.Stack, addr netip.Addr) error {
				a = addr
				if st.Client().Status().Configured != addr {
					return fmt.Errorf("%v handed to use but not configured", addr)
				}
				time.Sleep(3 * time.Second) // in use: the second announcement goes out
				return nil
			})
		})
		return a, err
	}
	t.Run("missing TAP", func(t *testing.T) {
		if a, err := run("aipexnone", 2*time.Second); err == nil || a.IsValid() {
			t.Fatalf("claimed %v (err %v) on a TAP that does not exist", a, err)
		}
	})
	ns.IP(t, "tuntap", "add", "dev", "aipex0", "mode", "tap")
	t.Run("down TAP", func(t *testing.T) {
		a, err := run("aipex0", 8*time.Second) // more than a whole claim takes
		if err == nil || a.IsValid() {
			t.Fatalf("claimed %v on a TAP that is down", a)
		}
		if !strings.Contains(err.Error(), "link-down") {
			t.Errorf("error %q does not say the link is down", err)
		}
	})
	t.Run("up TAP", func(t *testing.T) {
		ns.IP(t, "link", "set", "aipex0", "up")
		cap := startTcpdump(t, ns, "aipex0")
		a, err := run("aipex0", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		text := cap.text(t)
		probes := cap.count(t, fmt.Sprintf("Request who-has %v tell 0.0.0.0", a))
		if probes != 3 {
			t.Errorf("tcpdump on the kernel side saw %d probes for %v, want 3:\n%s", probes, a, text)
		}
		if anns := strings.Count(cap.text(t), fmt.Sprintf("Request who-has %v tell %v", a, a)); anns != 2 {
			t.Errorf("tcpdump saw %d announcements of %v while it was in use, want 2:\n%s", anns, a, cap.text(t))
		}
	})
}

// tcpdump runs tcpdump on the kernel side of a TAP.
type tcpdump struct {
	out  *os.File
	stop func()
}

func startTcpdump(t *testing.T, ns *netns.NS, dev string) *tcpdump {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "tcpdump")
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command("tcpdump", "-l", "-n", "-i", dev, "arp")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Skipf("tcpdump: %v", err)
	}
	td := &tcpdump{out: f, stop: func() { cmd.Process.Kill(); cmd.Wait() }}
	t.Cleanup(td.stop)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(td.text(t), "listening on") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return td
}

func (td *tcpdump) text(t *testing.T) string {
	b, err := os.ReadFile(td.out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// count waits a moment for tcpdump's output, then counts lines holding s.
func (td *tcpdump) count(t *testing.T, s string) int {
	time.Sleep(300 * time.Millisecond)
	td.stop()
	return strings.Count(td.text(t), s)
}

// TestREADMEShowsTheExample: the README's embedding snippet is the compiled
// example's body, so it cannot rot.
func TestREADMEShowsTheExample(t *testing.T) {
	src, err := os.ReadFile("example_tap_test.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)// README:begin\n(.*?)\t// README:end`).FindSubmatch(src)
	if m == nil {
		t.Fatal("markers not found")
	}
	var want strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(m[1]), "\n"), "\n") {
		want.WriteString(strings.TrimPrefix(l, "\t") + "\n")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), want.String()) {
		t.Fatalf("README.md does not show the example; it should contain:\n%s", want.String())
	}
}
