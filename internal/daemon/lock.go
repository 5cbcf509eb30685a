package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockedError says another process holds an interface's lock (R25).
type LockedError struct {
	Iface string
	Path  string
	PID   int // 0 if the holder's pid could not be read
}

func (e *LockedError) Error() string {
	who := "another autoipd (pid unknown)"
	if e.PID > 0 {
		who = fmt.Sprintf("another autoipd (pid %d)", e.PID)
	}
	return fmt.Sprintf("interface %s is already managed by %s; lock %s", e.Iface, who, e.Path)
}

// ifaceLock is the held lock of one interface: an flock(LOCK_EX) on
// <state-dir>/<iface>.lock, whose content is the holder's pid.
type ifaceLock struct{ f *os.File }

// lockIface takes the lock without waiting. A held lock gives a
// *LockedError; the file is never truncated unless we hold the lock, so the
// holder's pid stays readable.
func lockIface(path, iface string) (*ifaceLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &LockedError{Iface: iface, Path: path, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: write pid: %w", path, err)
	}
	return &ifaceLock{f: f}, nil
}

// release empties the file (the pid is no longer true) and drops the lock.
func (l *ifaceLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = l.f.Close()
	l.f = nil
}
