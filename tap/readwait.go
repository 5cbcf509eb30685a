package tap

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readWait reads one frame into b. While none is queued it waits in a
// ppoll(2) of its own, on the TAP fd and the stop eventfd, on this
// goroutine's OS thread, as gVisor's fdbased dispatcher does; not in Go's
// poller. Why: a netstack sending bulk TCP gets an ACK from the kernel for
// every 3-4 segments when each ACK wakes the reader through the poller and
// the scheduler; with a reader waiting in the kernel the kernel's receiver
// coalesces more and sends one ACK for about 15 segments, as with fdbased:
// a quarter of the ACKs for netstack to handle (bench/tcp_test.go reports
// it as segs/ack). An idle TAP costs no wake-ups either way. Close wakes it
// (the error then matches os.ErrClosed); a deleted TAP fails the read
// (EBADFD).
func (d *Device) readWait(b []byte) (int, error) {
	r := d.rfd
	r.rmu.RLock()
	defer r.rmu.RUnlock()
	hangup := false
	for {
		if r.closing.Load() {
			return 0, opErr("read", d.name, os.ErrClosed)
		}
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(r.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch {
		case errno == 0:
			return int(n), nil
		case errno != unix.EAGAIN:
			return 0, opErr("read", d.name, errno)
		case hangup:
			// The poll said error or hang-up and still nothing can be read:
			// do not spin on it.
			return 0, opErr("read", d.name, unix.EIO)
		}
		pfd := [2]unix.PollFd{
			{Fd: int32(r.stop), Events: unix.POLLIN},
			{Fd: int32(r.fd), Events: unix.POLLIN},
		}
		// A blocking syscall (not Raw): the runtime hands this thread's P
		// to other goroutines while it waits.
		_, _, errno = unix.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), uintptr(len(pfd)), 0, 0, 0, 0)
		if errno != 0 && errno != unix.EINTR {
			return 0, opErr("read", d.name, os.NewSyscallError("ppoll", errno))
		}
		hangup = pfd[1].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
	}
}
