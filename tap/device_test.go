//go:build linux

package tap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "aipt0", "tap-0_x.y", strings.Repeat("x", 15)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\nb", "a\x00b", strings.Repeat("x", 16), "a\u00a0b"} {
		err := ValidateName(bad)
		if err == nil {
			t.Errorf("ValidateName(%q) = nil, want error", bad)
			continue
		}
		// Open must reject it too, without touching the kernel.
		if _, err := Open(Config{Name: bad, Create: true}); err == nil || !errors.Is(err, errInvalidName) {
			t.Errorf("Open(%q) = %v, want an invalid-name error", bad, err)
		}
	}
	if Exists("a/b") {
		t.Error("Exists(a/b) = true")
	}
}

func TestOpenMissingIsErrNotExist(t *testing.T) {
	ns := newNS(t)
	err := ns.Do(func() error {
		d, err := Open(Config{Name: "aipnone0"})
		if err == nil {
			d.Close()
			return errors.New("Open of a missing TAP succeeded")
		}
		if !errors.Is(err, ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
			return errors.New("error does not match ErrNotExist: " + err.Error())
		}
		if !strings.Contains(err.Error(), "aipnone0") {
			return errors.New("error does not name the interface: " + err.Error())
		}
		t.Logf("error: %v", err)
		if _, _, err := Flags("aipnone0"); !errors.Is(err, ErrNotExist) {
			return errors.New("Flags of a missing interface: want ErrNotExist, got " + errString(err))
		}
		if Exists("aipnone0") {
			return errors.New("Exists(aipnone0) = true")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if existsInNS(t, ns, "aipnone0") {
		t.Fatal("a failed Open created the TAP")
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestDeviceExchangeARP creates a TAP, gives the kernel side an address, sends
// it an ARP request from the Device and reads the kernel's ARP reply.
func TestDeviceExchangeARP(t *testing.T) {
	ns := newNS(t)
	d := openInNS(t, ns, Config{Name: "aipt0", Create: true})
	if !d.Created() || d.Name() != "aipt0" || d.Index() == 0 {
		t.Fatalf("Created()=%v Name()=%q Index()=%d", d.Created(), d.Name(), d.Index())
	}
	// Kernel-side view through the package's own helpers (in the namespace).
	if err := ns.Do(func() error {
		up, running, err := Flags("aipt0")
		if err != nil || up || running {
			return errors.New("fresh TAP: want down and no error, got " + errString(err))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The TAP is not visible in the root namespace.
	if Exists("aipt0") {
		t.Fatal("aipt0 exists in the root namespace")
	}
	setupKernelSide(t, ns, "aipt0")
	if err := ns.Do(func() error {
		up, running, err := Flags("aipt0")
		if err != nil || !up || !running {
			return errors.New("after link set up: want up and running")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	frames := make(chan []byte, 64)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := d.Read(buf)
			if err != nil {
				readErr <- err
				return
			}
			frames <- append([]byte(nil), buf[:n]...)
		}
	}()
	req := arpRequestFromUs()
	deadline := time.After(5 * time.Second)
	resend := time.NewTicker(500 * time.Millisecond)
	defer resend.Stop()
	if _, err := d.Write(req); err != nil {
		t.Fatalf("Write ARP request: %v", err)
	}
	for got := false; !got; {
		select {
		case f := <-frames:
			got = isKernelARPReply(f)
		case <-resend.C:
			if _, err := d.Write(req); err != nil {
				t.Fatalf("Write ARP request: %v", err)
			}
		case err := <-readErr:
			t.Fatalf("Read: %v", err)
		case <-deadline:
			t.Fatal("no ARP reply from the kernel within 5s")
		}
	}
	// The kernel learnt our MAC from the request.
	if out := ns.IP(t, "neigh", "show", "dev", "aipt0"); !strings.Contains(out, "02:00:00:00:aa:01") {
		t.Errorf("kernel neighbour table lacks our MAC:\n%s", out)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
	}
	// A TAP we created is not persistent: it is gone once closed.
	waitFor(t, 2*time.Second, "created TAP to disappear after Close", func() bool { return !existsInNS(t, ns, "aipt0") })
}

func TestAttachPersistentTAP(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	for _, create := range []bool{false, true} {
		d := openInNS(t, ns, Config{Name: "aipt0", Create: create})
		if d.Created() {
			t.Fatalf("Create=%v: Created() = true for a pre-existing TAP", create)
		}
		// With our fd attached the TAP has carrier.
		ns.IP(t, "link", "set", "aipt0", "up")
		waitFor(t, 3*time.Second, "IFF_RUNNING with the fd attached", func() bool {
			var running bool
			ns.Do(func() error { _, running, _ = Flags("aipt0"); return nil })
			return running
		})
		if err := d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		if !existsInNS(t, ns, "aipt0") {
			t.Fatalf("Create=%v: persistent TAP vanished after Close (persistence cleared)", create)
		}
		if out := ns.IP(t, "-d", "link", "show", "aipt0"); !strings.Contains(out, "persist") {
			// iproute2 prints "tun type tap pi off vnet_hdr off persist on".
			t.Logf("ip -d link show (persist flag not printed?):\n%s", out)
		}
	}
}

func TestOpenBusyAndNotATAP(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ns.IP(t, "tuntap", "add", "dev", "aiptun0", "mode", "tun")
	openInNS(t, ns, Config{Name: "aipt0"})
	err := ns.Do(func() error {
		if d, err := Open(Config{Name: "aipt0"}); err == nil {
			d.Close()
			return errors.New("second Open of a single-queue TAP succeeded")
		} else if !errors.Is(err, syscall.EBUSY) {
			return errors.New("second open: want EBUSY, got " + err.Error())
		}
		// A refused open leaves no fd behind (songgao/water leaked the
		// /dev/net/tun fd whenever TUNSETIFF failed; autoipd retries a busy
		// TAP, so that was one fd per retry).
		before := openFDs(t)
		for range 50 {
			if _, err := Open(Config{Name: "aipt0"}); !errors.Is(err, syscall.EBUSY) {
				return errors.New("repeated open: want EBUSY, got " + fmt.Sprint(err))
			}
		}
		if after := openFDs(t); after > before {
			return fmt.Errorf("50 refused opens leaked %d fds (%d -> %d)", after-before, before, after)
		}
		if d, err := Open(Config{Name: "aiptun0"}); err == nil {
			d.Close()
			return errors.New("Open of a TUN succeeded")
		} else if !errors.Is(err, syscall.EINVAL) {
			return errors.New("TUN: want EINVAL, got " + err.Error())
		} else {
			t.Logf("TUN error: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenPermission checks that lacking privileges gives os.ErrPermission,
// in two ways, each on one locked OS thread (credentials are per thread in
// Linux; raw syscalls avoid Go's all-threads setuid): with CAP_NET_ADMIN
// dropped from the effective set (open of /dev/net/tun works, TUNSETIFF
// fails with EPERM), and as uid nobody (where /dev/net/tun is 0600 the open
// itself fails with EACCES). Creating needs CAP_NET_ADMIN; attaching needs it
// only if the TAP has an owner or group that does not match: the kernel lets
// anyone attach to a TAP made by `ip tuntap add` without `user`/`group`.
func TestOpenPermission(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ns.IP(t, "tuntap", "add", "dev", "aipt1", "mode", "tap", "user", "1")
	check := func(how string, drop, restore func() error) {
		t.Helper()
		err := ns.Do(func() error {
			if err := drop(); err != nil {
				return err
			}
			d0, errCreate := Open(Config{Name: "aipperm0", Create: true})
			d1, errAttach := Open(Config{Name: "aipt1"})
			d2, errOwnerless := Open(Config{Name: "aipt0"})
			if err := restore(); err != nil {
				runtime.LockOSThread() // never unlocked: the thread dies with its goroutine
				return errors.New("could not restore privileges on the test thread: " + err.Error())
			}
			for _, d := range []*Device{d0, d1, d2} {
				if d != nil {
					d.Close()
				}
			}
			for what, err := range map[string]error{"create": errCreate, "attach to a TAP owned by uid 1": errAttach} {
				if !errors.Is(err, os.ErrPermission) {
					return errors.New(what + " " + how + ": want os.ErrPermission, got " + errString(err))
				}
				t.Logf("%s %s: %v", what, how, err)
			}
			t.Logf("attach to an ownerless TAP %s: %v", how, errString(errOwnerless))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var saved [2]unix.CapUserData
	check("without CAP_NET_ADMIN",
		func() error {
			if err := unix.Capget(&hdr, &saved[0]); err != nil {
				return err
			}
			dropped := saved
			dropped[0].Effective &^= 1 << unix.CAP_NET_ADMIN
			return unix.Capset(&hdr, &dropped[0])
		},
		func() error { return unix.Capset(&hdr, &saved[0]) })

	check("as nobody",
		func() error {
			// ruid=euid=nobody, saved uid 0 so that we can switch back.
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 65534, 65534, 0); e != 0 {
				return e
			}
			return nil
		},
		func() error {
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); e != 0 {
				return e
			}
			return nil
		})

	if existsInNS(t, ns, "aipperm0") {
		t.Fatal("unprivileged Open created a TAP")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	ns := newNS(t)
	d := openInNS(t, ns, Config{Name: "aipt0", Create: true})
	ns.IP(t, "link", "set", "aipt0", "up") // up but silent (no IPv6): Read blocks
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := d.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		t.Fatalf("Read returned before Close: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) || !strings.Contains(err.Error(), "aipt0") {
			t.Fatalf("Read after Close = %v, want os.ErrClosed naming aipt0", err)
		}
		t.Logf("Read returned %v after %v", err, time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := d.Write(make([]byte, 60)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close = %v, want os.ErrClosed", err)
	}
}

// TestDeviceReadErrorOnDelete checks what a blocked Read sees when the TAP is
// deleted under it, which is what Link relies on to notice deletion at once.
func TestDeviceReadErrorOnDelete(t *testing.T) {
	ns := newNS(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	d := openInNS(t, ns, Config{Name: "aipt0"})
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := d.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	ns.IP(t, "link", "del", "aipt0")
	select {
	case err := <-done:
		t.Logf("Read after deletion: %v", err)
		if !errors.Is(err, unix.EBADFD) {
			t.Errorf("want EBADFD, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("deleting the TAP did not fail the blocked Read")
	}
	if _, err := d.Write(arpRequestFromUs()); err == nil {
		t.Error("Write after deletion succeeded")
	} else {
		t.Logf("Write after deletion: %v", err)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
