package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// The daemon's files are opened so that nothing planted in their place can
// be turned against it: a symbolic link is never followed (O_NOFOLLOW), the
// open never blocks (O_NONBLOCK: a FIFO or a device cannot hang start-up),
// and anything but a regular file is refused. Error messages name the path
// and what is wrong with it, never the file's content.

// UnsafeFileError says a file the daemon uses is not what it must be.
type UnsafeFileError struct {
	Path   string
	Reason string // "is a symbolic link, which autoipd does not follow", ...
}

func (e *UnsafeFileError) Error() string { return e.Path + " " + e.Reason }

// fileKind names the type of a non-regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}

// notRegular is the UnsafeFileError for a file of mode m.
func notRegular(path string, m fs.FileMode) error {
	if m&fs.ModeSymlink != 0 {
		return &UnsafeFileError{Path: path, Reason: "is a symbolic link, which autoipd does not follow"}
	}
	return &UnsafeFileError{Path: path, Reason: "is " + fileKind(m) + ", not a regular file"}
}

// openRegular opens path with flag (plus O_NOFOLLOW, O_NONBLOCK and
// O_CLOEXEC; perm applies when O_CREATE makes the file) and makes sure it is
// a regular file.
func openRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err != nil {
		// ELOOP (a symlink), ENXIO (a FIFO without reader, opened for
		// writing), EISDIR...: say what is there rather than the errno.
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, notRegular(path, fi.Mode())
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

// readRegular reads path, a regular file of at most limit bytes, through
// openRegular. A missing file gives an error matching fs.ErrNotExist.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path, limit)
}

// readLimited reads all of f, refusing more than limit bytes.
func readLimited(f *os.File, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		size := "more than " + fmt.Sprint(limit)
		if fi, err := f.Stat(); err == nil {
			size = fmt.Sprint(fi.Size())
		}
		return nil, &UnsafeFileError{Path: path, Reason: fmt.Sprintf("is %s bytes, more than the %d such a file can need", size, limit)}
	}
	return b, nil
}

// makePrivate makes f, a file the daemon keeps in its state directory,
// readable by its owner only, and refuses it if another user owns it.
func makePrivate(f *os.File, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if int(st.Uid) != os.Geteuid() {
		return &UnsafeFileError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by uid %d which autoipd runs as", st.Uid, os.Geteuid())}
	}
	if st.Mode&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("chmod 0600 %s: %w", path, err)
		}
	}
	return nil
}

// isUnsafe reports whether err is an UnsafeFileError.
func isUnsafe(err error) bool {
	var u *UnsafeFileError
	return errors.As(err, &u)
}
