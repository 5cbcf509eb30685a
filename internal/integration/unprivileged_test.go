package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/internal/netns"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

const (
	unprivEnv = "AIP_UNPRIV_CHILD_TAP" // set in the child: the TAP to attach to
	nobody    = "65534"
)

// TestUnprivilegedAttachToUserTAP: a TAP pre-created for an ordinary uid
// (`ip tuntap add ... user UID`) is attached to, and an address claimed, by
// a process running as that uid with no capabilities. The child runs in a
// private mount namespace in which /dev/net/tun is a 0666 node, as it is on
// a stock Debian system (this machine's is 0600); nothing outside the test's
// namespaces changes.
func TestUnprivilegedAttachToUserTAP(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "aipun")
	ns.DisableIPv6(t)
	name := tapName("aipu")
	ns.IP(t, "tuntap", "add", "dev", name, "mode", "tap", "user", nobody)
	ns.IP(t, "link", "set", name, "up")
	ns.IP(t, "addr", "add", kernLL.String()+"/16", "dev", name)

	// A copy of this test binary that uid 65534 can execute.
	dir, err := os.MkdirTemp("", "aipunpriv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "child.test")
	if err := copyFile(os.Args[0], bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`set -e
mknod %[1]s/tun c 10 200
chmod 0666 %[1]s/tun
mount --bind %[1]s/tun /dev/net/tun
exec setpriv --reuid=%[2]s --regid=%[2]s --clear-groups --inh-caps=-all %[3]s -test.run='^TestUnprivilegedChild$' -test.v`, dir, nobody, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name(), "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), unprivEnv+"="+name)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()

	var addr netip.Addr
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if a, ok := strings.CutPrefix(line, "BOUND "); ok {
			addr = netip.MustParseAddr(a)
			break
		}
	}
	if !addr.IsValid() {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child did not bind:\nstdout:\n%s\nstderr:\n%s", strings.Join(lines, "\n"), stderr.String())
	}
	out := ns.Run(t, "ping", "-c", "2", "-W", "2", "-I", name, addr.String())
	if !strings.Contains(out, "2 received") {
		t.Fatalf("ping the unprivileged child's %v: %s", addr, out)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
}

// TestUnprivilegedChild is the child of TestUnprivilegedAttachToUserTAP; it
// does nothing in a normal run.
func TestUnprivilegedChild(t *testing.T) {
	name := os.Getenv(unprivEnv)
	if name == "" {
		t.Skip("child of TestUnprivilegedAttachToUserTAP only")
	}
	if os.Geteuid() == 0 {
		t.Fatal("child runs as root; it must not")
	}
	link, err := tap.NewLink(tap.LinkConfig{Device: tap.Config{Name: name}, MAC: tcpip.LinkAddress(ourMAC[:]), CheckInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("attach as uid %d: %v", os.Geteuid(), err)
	}
	defer link.Close()
	st, err := stack.New(stack.Options{Link: link.Endpoint(), AutoIP: &stack.ClientConfig{Engine: autoip.Config{Timing: fastTiming()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := st.Client().WaitBound(ctx)
	if err != nil {
		t.Fatalf("uid %d: %v (link up %v, status %+v)", os.Geteuid(), err, link.Up(), st.Client().Status())
	}
	fmt.Printf("BOUND %v\n", a)
	io.Copy(io.Discard, os.Stdin) // serve until the parent is done
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
