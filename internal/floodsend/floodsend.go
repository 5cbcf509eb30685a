//go:build linux

// Package floodsend is the sender of the TAP flood benchmarks
// (internal/integration's BenchmarkTAPFloodConflictDetection and its
// baseline, bench's BenchmarkTAPRawFlood): frames go out of an AF_PACKET
// socket bound to the TAP's kernel side in batches (sendmmsg(2), the
// kernel's qdisc bypassed), so that the sender, which shares the machine
// with the reader it measures, needs as little CPU as it can.
package floodsend

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch is the most frames one sendmmsg(2) carries; it is also the pacing
// granularity.
const Batch = 32

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Prepare sets up fd, an AF_PACKET SOCK_RAW socket bound to the interface
// the frames go out of, for Run: the qdisc is bypassed (frames go straight
// to the device, for a TAP into the queue its reader reads) and the send
// buffer enlarged.
func Prepare(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	return nil
}

// Run sends frame(0) ... frame(n-1) on fd (prepared and bound to the
// interface), at rate frames/s if rate > 0 (each batch waits for its
// place in the schedule), else as fast as it can. sent(i, t) is called for
// every frame with the time taken just before the batch holding it is
// handed to the kernel. A full socket buffer is waited out (50 µs at a
// time, up to 10,000 times per batch).
func Run(fd, n, rate int, frame func(i int) []byte, sent func(i int, t time.Time)) error {
	var msgs [Batch]mmsghdr
	var iovs [Batch]unix.Iovec
	bufs := make([][]byte, Batch)
	start := time.Now()
	for i := 0; i < n; i += Batch {
		m := min(Batch, n-i)
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		for j := 0; j < m; j++ {
			bufs[j] = frame(i + j)
			iovs[j] = unix.Iovec{Base: &bufs[j][0]}
			iovs[j].SetLen(len(bufs[j]))
			msgs[j] = mmsghdr{}
			msgs[j].hdr.Iov = &iovs[j]
			msgs[j].hdr.SetIovlen(1)
		}
		t := time.Now()
		for j := 0; j < m; j++ {
			sent(i+j, t)
		}
		done := 0
		for tries := 0; done < m; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[done])), uintptr(m-done), 0, 0, 0)
			if errno == 0 {
				done += int(r)
				continue
			}
			if !errors.Is(errno, unix.EAGAIN) && !errors.Is(errno, unix.ENOBUFS) && !errors.Is(errno, unix.EINTR) {
				return fmt.Errorf("frame %d: sendmmsg: %w", i+done, errno)
			}
			if tries++; tries > 10000 {
				return fmt.Errorf("frame %d: sendmmsg keeps failing: %w", i+done, errno)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
}
