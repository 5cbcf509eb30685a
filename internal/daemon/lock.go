package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockedError says another process holds an interface's lock (R25).
type LockedError struct {
	Iface string
	Path  string
	PID   int // 0 if the holder's pid could not be found
}

func (e *LockedError) Error() string {
	who := "another autoipd (pid unknown)"
	if e.PID > 0 {
		who = fmt.Sprintf("another autoipd (pid %d)", e.PID)
	}
	return fmt.Sprintf("interface %s is already managed by %s; lock %s", e.Iface, who, e.Path)
}

// ifaceLock is the held lock of one interface: an flock(LOCK_EX) on
// <state-dir>/<iface>.lock, a 0600 file whose content is the holder's pid.
type ifaceLock struct {
	f    *os.File
	path string
	// displaced is the process of another user that held an old,
	// world-readable lock file we replaced (see lockIface); pid 0: none.
	displaced lockHolder
}

// lockIface takes the lock without waiting. A held lock gives a
// *LockedError; the file is never truncated unless we hold the lock, so the
// holder's pid stays readable.
//
// A lock file that other users can open (0644, as older autoipd made it) is
// replaced by a fresh 0600 one once we hold it: anyone who opened the old
// one could flock it later and keep the next daemon out. If such a file is
// held by a process of another user, that process cannot be an autoipd of
// ours (the state directory is ours alone), so the file is replaced too and
// the holder reported.
func lockIface(path, iface string) (*ifaceLock, error) {
	f, err := openRegular(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := flockNB(f); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder := findLockHolder(f)
		if holder.pid > 0 && holder.uid >= 0 && holder.uid != os.Geteuid() {
			l, err := replaceLock(path)
			if err != nil {
				return nil, err
			}
			l.displaced = holder
			return l, nil
		}
		pid := pidIn(f)
		if pid == 0 {
			pid = holder.pid
		}
		return nil, &LockedError{Iface: iface, Path: path, PID: pid}
	}
	if othersCanOpen(f) {
		l, err := replaceLock(path)
		f.Close() // after the rename: someone opening the path meanwhile met a held lock
		return l, err
	}
	l := &ifaceLock{f: f, path: path}
	if err := l.writePID(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// replaceLock puts a fresh, locked 0600 lock file in place of path.
func replaceLock(path string) (*ifaceLock, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // 0600, O_EXCL
	if err != nil {
		return nil, fmt.Errorf("replace lock file %s: %w", path, err)
	}
	l := &ifaceLock{f: tmp, path: path}
	err = flockNB(tmp)
	if err == nil {
		err = l.writePID()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("replace lock file %s: %w", path, err)
	}
	return l, nil
}

func flockNB(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// othersCanOpen reports whether f is accessible to other users or owned by
// another one.
func othersCanOpen(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return true
	}
	return int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0
}

func (l *ifaceLock) writePID() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("lock %s: write pid: %w", l.path, err)
	}
	return nil
}

// pidIn reads the holder's pid from an open lock file (0: none).
func pidIn(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	return max(pid, 0)
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

// intact reports whether the lock file at the path is still the one we
// hold.
func (l *ifaceLock) intact() bool {
	fi, err := os.Lstat(l.path)
	if err != nil {
		return false
	}
	mine, err := l.f.Stat()
	return err == nil && os.SameFile(fi, mine)
}

// takeOver replaces the held file by n's (a lock taken anew at the same
// path after the old file was removed).
func (l *ifaceLock) takeOver(n *ifaceLock) {
	l.f.Close()
	l.f = n.f
}
