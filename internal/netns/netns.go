// Package netns provides throw-away Linux network namespaces for tests that
// need real kernel network objects (TAPs, veths, bridges).
//
// Every namespace is created with `ip netns add`, carries a unique name that
// starts with the caller's prefix (which must start with "aip"), and is deleted
// by a t.Cleanup registered in New, so a failing test leaves nothing behind in
// the root namespace.
//
// Typical use:
//
//	netns.RequireRoot(t)
//	ns := netns.New(t, "aipfoo")
//	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
//	var dev *tap.Device
//	err := ns.Do(func() (err error) {
//		dev, err = tap.Open(tap.Config{Name: "aipt0"}) // opened inside ns
//		return err
//	})
//
// # Namespaces and OS threads
//
// A network namespace is a property of an OS thread, not of a goroutine or
// of the process. Keep these rules in mind:
//
//   - Do runs its function on a dedicated goroutine whose OS thread has been
//     switched into the namespace. Goroutines started by that function run on
//     arbitrary threads, which are in the test binary's original (root)
//     namespace.
//   - File descriptors keep the namespace they were created in: a TAP fd, an
//     AF_PACKET socket or an ioctl socket created inside Do works from any
//     thread afterwards. So create kernel-facing fds inside Do, then use them
//     anywhere.
//   - Do switches only the network namespace, not the mount namespace, so
//     /sys/class/net inside Do still lists the ORIGINAL namespace's interfaces.
//     Use ioctls or netlink sockets (net.Interfaces, net.InterfaceByName), or
//     `ip -n NAME ...` via IP, to look at the test namespace.
//   - Run and IP exec `ip` as a child process, which needs no thread games.
//   - Run and IP call t.Fatalf on failure, so call them only from the test's
//     goroutine; from other goroutines use Exec.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root (effective uid 0).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create TAP devices and network namespaces; CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (`ip`) in PATH: ", err)
	}
}

// NS is a network namespace created for one test.
type NS struct {
	name string
}

// New creates a network namespace named "<prefix>-<6 random hex digits>" with
// `ip netns add` and registers its deletion with t.Cleanup. prefix must start
// with "aip" and be at most 8 bytes, so that the name fits in 15 bytes like an
// interface name. The namespace's loopback interface is brought up.
//
// Cleanup runs `ip netns del`; interfaces that live in the namespace are
// destroyed with it once nothing holds a reference to it any more (an open
// TAP fd keeps the namespace alive, invisibly, until it is closed).
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	if !strings.HasPrefix(prefix, "aip") || len(prefix) > 8 {
		t.Fatalf("netns.New: prefix %q must start with \"aip\" and be at most 8 bytes", prefix)
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	ns := &NS{name: prefix + "-" + hex.EncodeToString(rnd[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// Name returns the namespace name, as used by `ip netns exec NAME` and `ip -n NAME`.
func (ns *NS) Name() string { return ns.name }

// Path returns the namespace's bind-mount path (/var/run/netns/NAME or
// /run/netns/NAME), which can be opened and passed to setns(2).
func (ns *NS) Path() string {
	for _, dir := range []string{"/var/run/netns", "/run/netns"} {
		p := filepath.Join(dir, ns.name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("/var/run/netns", ns.name)
}

// Exec runs `ip netns exec NAME args...` and returns its combined output. It
// does not touch t, so it may be called from any goroutine.
func (ns *NS) Exec(args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("netns %s: Exec: no command", ns.name)
	}
	full := append([]string{"netns", "exec", ns.name}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w\n%s", strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

// Command returns an unstarted `ip netns exec NAME args...`, for commands
// that run in the background (tcpdump, say); the caller starts and stops it.
func (ns *NS) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
}

// Run runs `ip netns exec NAME args...` (for example ns.Run(t, "sysctl", "-w",
// "net.ipv4.ip_forward=1")) and returns its combined output; it fails the test
// with the output if the command fails. Call it from the test goroutine only.
func (ns *NS) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// IP runs `ip -n NAME args...` (for example ns.IP(t, "link", "set", "aipt0",
// "up")) and returns its combined output; it fails the test on error. Call it
// from the test goroutine only.
func (ns *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.IPExec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// IPExec runs `ip -n NAME args...` and returns its combined output; it may be
// called from any goroutine.
func (ns *NS) IPExec(args ...string) (string, error) {
	full := append([]string{"-n", ns.name}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w\n%s", strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

// DisableIPv6 turns IPv6 off (all and default) in the namespace, which keeps
// the kernel from sending router solicitations, MLD reports and DAD probes on
// new interfaces: useful for tests that count frames.
func (ns *NS) DisableIPv6(t testing.TB) {
	t.Helper()
	ns.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	ns.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
}

// Do runs fn on a dedicated, locked OS thread that has been switched into the
// namespace with setns(2), waits for it and returns its error. The thread's
// original namespace is restored afterwards; if that fails, the thread is
// left locked so that the Go runtime destroys it instead of reusing it.
//
// Only fn's own goroutine runs in the namespace: goroutines it starts do not.
// File descriptors created in fn (TAP fds, sockets) keep the namespace and can
// be used from anywhere after Do returns.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately no deferred UnlockOSThread: see below.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: open current netns: %w", ns.name, err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: open: %w", ns.name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", ns.name, err)
			return
		}
		var ferr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					ferr = fmt.Errorf("netns %s: Do: panic: %v", ns.name, r)
				}
			}()
			ferr = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Keep the thread locked: it dies with this goroutine.
			if ferr == nil {
				ferr = fmt.Errorf("netns %s: restore original netns: %w", ns.name, err)
			}
			errc <- ferr
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
