package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"syscall"
)

// prepareStateDir makes sure dir can hold the daemon's lock, MAC, state,
// log and status socket: it creates it 0700 (parents 0755) when it is
// missing, whatever the umask, and refuses it, as sshd's StrictModes does,
// when another user owns it or could write to it or replace it. Anyone who
// can write there could plant links and FIFOs in place of our files, or
// take the lock. It returns the directory to use: dir made absolute, or,
// if that is a link, where it leads (which must pass the same checks; the
// directory watch does not follow links).
func prepareStateDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("state directory %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return "", fmt.Errorf("create the parent of state directory %s: %w", abs, err)
		}
		if err := os.Mkdir(abs, 0o700); err != nil {
			return "", fmt.Errorf("create state directory %s: %w", abs, err)
		}
		// The umask may have taken bits from 0700; it cannot add any.
		if err := os.Chmod(abs, 0o700); err != nil {
			return "", fmt.Errorf("chmod 0700 %s: %w", abs, err)
		}
	case err != nil:
		return "", fmt.Errorf("state directory %s: %w", abs, err)
	case !fi.IsDir():
		return "", fmt.Errorf("state directory %s is %s, not a directory", abs, fileKind(fi.Mode()))
	}
	if err := checkStrictModes(abs); err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("state directory %s: %w", abs, err)
	}
	if real != abs {
		if err := checkStrictModes(real); err != nil {
			return "", fmt.Errorf("state directory %s leads to %s: %w", abs, real, err)
		}
	}
	return real, nil
}

// checkStrictModes checks the state directory abs (followed if it is a
// link) and every directory above it.
func checkStrictModes(abs string) error {
	euid := os.Geteuid()
	mode, uid, err := statOwner(abs)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", abs, err)
	}
	if uid != euid || mode&0o022 != 0 {
		return fmt.Errorf("state directory %s is mode %04o and owned by %s: it must be owned by %s and writable by no one else, "+
			"or other users could plant links and files in it (as sshd's StrictModes); fix it with chown %d %s && chmod 700 %s",
			abs, octalMode(mode), describeUID(uid), describeUID(euid), euid, abs, abs)
	}
	return checkDirsAbove(abs, "state directory", "replace the state directory")
}

// checkDirsAbove checks every directory above path, a what, as sshd's
// StrictModes does: owned by root or the daemon's user, and writable by no
// one else unless sticky (like /tmp); else another user could do harm.
func checkDirsAbove(path, what, harm string) error {
	euid := os.Geteuid()
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		mode, uid, err := statOwner(p)
		if err != nil {
			return fmt.Errorf("%s, above %s %s: %w", p, what, path, err)
		}
		if uid != 0 && uid != euid || mode&0o022 != 0 && mode&fs.ModeSticky == 0 {
			return fmt.Errorf("%s, above %s %s, is mode %04o and owned by %s: it must be owned by root or %s and "+
				"not writable by others unless sticky (like /tmp), or another user could %s",
				p, what, path, octalMode(mode), describeUID(uid), describeUID(euid), harm)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// octalMode is mode as chmod takes it: permissions with the setuid,
// setgid and sticky bits (a 1777 directory is not a 0777 one).
func octalMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// statOwner returns path's mode and owner, following links.
func statOwner(path string) (fs.FileMode, int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("no owner information for %s", path)
	}
	return fi.Mode(), int(st.Uid), nil
}

// describeUID returns "uid N (name)", or "uid N" when N has no name.
func describeUID(uid int) string {
	if u, err := user.LookupId(fmt.Sprint(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}
