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
	var n uintptr
	var errno syscall.Errno
	// The TAP's write never blocks (the kernel queues or drops the frame),
	// so a raw syscall, without the scheduler's hand-off, is enough; Write
	// on the RawConn keeps the fd open for its duration.
	err := d.raw.Write(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return int(n), opErr("write", d.name, err)
	}
	return int(n), nil
}

// readRaw reads one frame with a raw read(2), waiting in the poller while
// none is queued.
func (d *Device) readRaw(b []byte) (int, error) {
	var n uintptr
	var errno syscall.Errno
	err := d.raw.Read(func(fd uintptr) bool {
		n, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, opErr("read", d.name, err)
	}
	return int(n), nil
}
