//go:build linux

package tap

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// threadNetnsPath is the netns file of the calling OS thread (works on
// kernels without /proc/thread-self).
func threadNetnsPath() string {
	return fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
}

// netnsHandle pins the network namespace a Link was created in, so that
// re-opens from the Link's goroutines (which run on arbitrary OS threads)
// resolve the TAP name in that namespace.
type netnsHandle struct {
	fd       int
	dev, ino uint64
}

// captureNetns returns a handle on the calling thread's network namespace;
// the caller must have locked its OS thread. It returns nil (meaning: never
// switch) if /proc is unavailable.
func captureNetns() *netnsHandle {
	fd, err := unix.Open(threadNetnsPath(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil
	}
	return &netnsHandle{fd: fd, dev: st.Dev, ino: st.Ino}
}

func (h *netnsHandle) close() {
	if h != nil {
		unix.Close(h.fd)
	}
}

// do runs fn on an OS thread that is in h's namespace. If the current
// thread already is (the normal case), fn runs right here with the thread
// locked; otherwise it runs on a fresh locked goroutine that setns(2)es into
// h (needs CAP_SYS_ADMIN) and back. If switching back fails, that thread is
// left locked so that the runtime discards it.
func (h *netnsHandle) do(fn func() error) error {
	if h == nil {
		return fn()
	}
	runtime.LockOSThread()
	var st unix.Stat_t
	if err := unix.Stat(threadNetnsPath(), &st); err == nil && st.Dev == h.dev && st.Ino == h.ino {
		defer runtime.UnlockOSThread()
		return fn()
	}
	runtime.UnlockOSThread()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(threadNetnsPath(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(h.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- os.NewSyscallError("setns to the link's netns", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread is destroyed when this goroutine exits.
			errc <- ferr
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
