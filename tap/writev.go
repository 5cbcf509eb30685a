package tap

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxIovecs is how many pieces of one frame WriteSlices gathers from the
// stack; a gVisor packet has a few (headers, then payload views).
const maxIovecs = 8

// WriteSlices writes one Ethernet frame given in pieces (a gVisor packet's
// AsSlices), without first copying it into one buffer: one writev(2), as
// gVisor's fdbased endpoint does. Like Write, it fails (EIO) while the TAP
// is down and (EBADFD) after it was deleted; it does not block.
func (d *Device) WriteSlices(bufs [][]byte) (int, error) {
	if len(bufs) > maxIovecs {
		// Rare: gather into one buffer instead.
		var b []byte
		for _, s := range bufs {
			b = append(b, s...)
		}
		return d.Write(b)
	}
	var iovArr [maxIovecs]unix.Iovec
	iov := iovArr[:0]
	for _, s := range bufs {
		if len(s) == 0 {
			continue
		}
		v := unix.Iovec{Base: &s[0]}
		v.SetLen(len(s))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	// The TAP's write never blocks (the kernel queues or drops the frame).
	return d.rawIO(d.raw.Write, "write", unix.SYS_WRITEV, unsafe.Pointer(&iov[0]), len(iov))
}

// readRaw reads one frame with a raw read(2), waiting in the poller while
// none is queued.
func (d *Device) readRaw(b []byte) (int, error) {
	return d.rawIO(d.raw.Read, "read", unix.SYS_READ, unsafe.Pointer(&b[0]), len(b))
}

// rawIO makes syscall trap(fd, p, n) through the RawConn's Read or Write,
// which keeps the fd open for the call and waits in the poller on EAGAIN.
// The syscall is raw, without the scheduler's hand-off, as gVisor's
// fdbased endpoint makes it: a TAP's reads and writes do not block.
func (d *Device) rawIO(via func(func(uintptr) bool) error, op string, trap uintptr, p unsafe.Pointer, n int) (int, error) {
	var r uintptr
	var errno syscall.Errno
	err := via(func(fd uintptr) bool {
		r, _, errno = unix.RawSyscall(trap, fd, uintptr(p), uintptr(n))
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, opErr(op, d.name, err)
	}
	return int(r), nil
}
