package tap

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// rawFD is the TAP descriptor as the Link's data path uses it: raw
// syscalls on the fd number, with no os.File or RawConn in between. The
// RawConn's callback is an interface call, and its closure and results
// escaped to the heap: three allocations per frame, on a path a bulk TCP
// sender takes a few hundred thousand times a second. The locks stand in
// for the os.File's reference count: each raw call holds one for reading,
// and close takes both for writing before the fd is closed, so a number is
// never used after it was closed (and perhaps reused). Readers and writers
// have a lock each, on separate cache lines, so that they do not contend.
type rawFD struct {
	fd   int
	stop int // eventfd, readable once close began: wakes a waiting read

	rmu sync.RWMutex
	_   [64]byte
	wmu sync.RWMutex
	_   [64]byte

	closing atomic.Bool
}

func newRawFD(f *os.File) (*rawFD, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &rawFD{fd: -1}
	// Control, not f.Fd: Fd would put the descriptor in blocking mode.
	if err := raw.Control(func(fd uintptr) { r.fd = int(fd) }); err != nil {
		return nil, err
	}
	if r.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return r, nil
}

// beginClose wakes a waiting read and waits until no raw call is in
// progress; later ones fail with os.ErrClosed. The caller then closes the
// file, and then calls endClose.
func (r *rawFD) beginClose() {
	r.closing.Store(true)
	one := [8]byte{1}
	_, _ = unix.Write(r.stop, one[:])
	r.wmu.Lock()
	r.rmu.Lock()
}

func (r *rawFD) endClose() {
	unix.Close(r.stop)
	r.rmu.Unlock()
	r.wmu.Unlock()
}
