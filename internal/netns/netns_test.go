package netns_test

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/autoip-project/autoip/internal/netns"
)

func TestNamespaceLifecycle(t *testing.T) {
	netns.RequireRoot(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		ns := netns.New(t, "aipns")
		name = ns.Name()
		if len(name) > 15 || !strings.HasPrefix(name, "aipns-") {
			t.Fatalf("bad namespace name %q", name)
		}
		ns.IP(t, "tuntap", "add", "dev", "aipnst0", "mode", "tap")
		if out := ns.Run(t, "ip", "-br", "link", "show", "aipnst0"); !strings.Contains(out, "aipnst0") {
			t.Fatalf("ip link show in namespace: %q", out)
		}
		if _, err := net.InterfaceByName("aipnst0"); err == nil {
			t.Fatal("aipnst0 visible outside the namespace")
		}
		err := ns.Do(func() error {
			_, err := net.InterfaceByName("aipnst0")
			return err
		})
		if err != nil {
			t.Fatalf("aipnst0 not visible inside Do: %v", err)
		}
		// The calling goroutine (and later ones) are back in the original namespace.
		if _, err := net.InterfaceByName("aipnst0"); err == nil {
			t.Fatal("aipnst0 visible outside the namespace after Do")
		}
		if _, err := ns.Exec("false"); err == nil {
			t.Fatal("Exec(false) returned nil error")
		}
	})
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), name) {
		t.Fatalf("namespace %s left over after cleanup:\n%s", name, out)
	}
}

func TestDoPropagatesError(t *testing.T) {
	ns := netns.New(t, "aipns")
	want := "boom"
	err := ns.Do(func() error { return &net.AddrError{Err: want} })
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Do error = %v, want %q", err, want)
	}
}
