package daemon

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// dirWatch reports changes to the entries of one directory and to the
// directory itself (removed, renamed) through inotify: it wakes the daemon
// only when something happens there, never periodically. Reading blocks in
// Go's poller, so an idle watch costs no wake-ups.
type dirWatch struct {
	path string
	f    *os.File
	// C receives a value (coalesced) after each batch of events.
	C chan struct{}

	mu   sync.Mutex
	wd   int  // current watch descriptor; -1 when none
	lost bool // the watch is gone (the directory was removed) and could not be re-added
	done chan struct{}
}

// dirMask: entries created, removed or renamed in the directory, and the
// directory itself removed or renamed. Our own writes (state saves are a
// create and a rename) show up too; a repair that finds nothing to do is a
// few lstat calls.
const dirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

func newDirWatch(path string) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	w := &dirWatch{path: path, f: os.NewFile(uintptr(fd), "inotify"), C: make(chan struct{}, 1), wd: -1, done: make(chan struct{})}
	if err := w.rewatch(); err != nil {
		w.f.Close()
		return nil, err
	}
	go w.read()
	return w, nil
}

// rewatch (re-)adds the watch on the path, which may now be another
// directory than before (removed and made again). It reports whether the
// directory is watched.
func (w *dirWatch) rewatch() error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var wd int
	var werr error
	if err := rc.Control(func(fd uintptr) { wd, werr = unix.InotifyAddWatch(int(fd), w.path, dirMask) }); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if werr != nil {
		w.lost = true
		return os.NewSyscallError("inotify_add_watch "+w.path, werr)
	}
	w.wd, w.lost = wd, false
	return nil
}

// watching reports whether the directory is watched now.
func (w *dirWatch) watching() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.lost
}

func (w *dirWatch) read() {
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			// Unexpected: say something changed, so that the daemon looks.
			w.signal()
			return
		}
		if n > 0 {
			w.signal()
		}
	}
}

func (w *dirWatch) signal() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

func (w *dirWatch) close() {
	w.f.Close()
	<-w.done
}
