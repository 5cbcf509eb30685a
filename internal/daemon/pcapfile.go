package daemon

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/internal/pcapfile"
)

// openPcap opens the -pcap file for writing from its start. Unlike
// O_TRUNC, it truncates only after checking what it opened: a regular
// file (no link followed, no FIFO), owned by our user (root must not wipe
// another user's file), with no other hard link (which could be anyone's
// file), and empty or a pcap capture already (a slip like -pcap
// /etc/passwd must not wipe a system file).
func openPcap(path string) (*os.File, error) {
	f, err := openRegular(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	switch {
	case err != nil:
		err = fmt.Errorf("stat %s: %w", path, err)
	case int(st.Uid) != os.Geteuid():
		err = &UnsafeFileError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by uid %d which autoipd runs as: not overwriting it", st.Uid, os.Geteuid())}
	case st.Nlink > 1:
		err = &UnsafeFileError{Path: path, Reason: fmt.Sprintf("has %d hard links: not overwriting a file that is also elsewhere", st.Nlink)}
	case st.Size > 0 && !isPcap(f):
		err = &UnsafeFileError{Path: path, Reason: "exists and is not a pcap capture: not overwriting it (remove it, or name another file)"}
	default:
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// isPcap reports whether f starts with a pcap magic number (either byte
// order, micro- or nanosecond timestamps).
func isPcap(f *os.File) bool {
	var b [4]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	return pcapfile.IsCapture(b[:])
}
