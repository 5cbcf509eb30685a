package tap

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxIovecs is how many pieces of one frame are written with one writev; a
// gVisor packet has a few (headers, then payload views).
const maxIovecs = 8

// writePacket writes pkt's bytes, headers and payload views, with one
// writev(2) and no allocation, as gVisor's fdbased endpoint does (more than
// maxIovecs pieces, which netstack does not make: one copy). Like Write, it
// fails (EIO) while the TAP is down and (EBADFD) after it was deleted.
func (d *Device) writePacket(pkt *stack.PacketBuffer) (int, error) {
	var iovArr [maxIovecs]unix.Iovec
	iov := iovArr[:0]
	views, offset := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if offset >= len(b) {
			offset -= len(b)
			continue
		}
		b, offset = b[offset:], 0
		if len(iov) == maxIovecs {
			s := pkt.ToView() // rare
			defer s.Release()
			return d.writev(appendIovec(iovArr[:0], s.AsSlice()))
		}
		iov = appendIovec(iov, b)
	}
	return d.writev(iov)
}

func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

// writev writes the frame in iov with one raw writev(2). The TAP's write
// never blocks (the kernel queues or drops the frame).
func (d *Device) writev(iov []unix.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	r := d.rfd
	r.wmu.RLock()
	if r.closing.Load() {
		r.wmu.RUnlock()
		return 0, opErr("write", d.name, os.ErrClosed)
	}
	n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(r.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	r.wmu.RUnlock()
	if errno != 0 {
		return 0, opErr("write", d.name, errno)
	}
	return int(n), nil
}
