package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// errHookMissing: the hook does not exist (yet). It is tried at each event
// anyway, as before; only a hook that exists and others could change is
// refused.
var errHookMissing = errors.New("no such executable")

// checkHook resolves the hook (a bare name through $PATH) and says why the
// daemon must not run it: it runs the hook with its own rights (root, as a
// rule), so a hook that another user owns or can write to, or that sits in
// a directory another user could replace it in, would give that user those
// rights. The rules are sshd's StrictModes, as for the state directory:
// the file and every directory above it (the link and where it leads)
// belong to root or the daemon's user and are writable by no one else,
// except sticky directories such as /tmp.
func checkHook(path string) (string, error) {
	full, err := exec.LookPath(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			return path, fmt.Errorf("hook %s: %w", path, errHookMissing)
		}
		return path, fmt.Errorf("hook %s: %w", path, err)
	}
	abs, err := filepath.Abs(full)
	if err != nil {
		return path, fmt.Errorf("hook %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return abs, fmt.Errorf("hook %s: %w", abs, err)
	}
	euid := os.Geteuid()
	mode, uid, err := statOwner(real)
	if err != nil {
		return abs, fmt.Errorf("hook %s: %w", real, err)
	}
	if !mode.IsRegular() {
		return abs, fmt.Errorf("hook %s is %s, not a regular file", real, fileKind(mode))
	}
	if uid != 0 && uid != euid || mode&0o022 != 0 {
		return abs, fmt.Errorf("hook %s is mode %04o and owned by %s: autoipd runs it as %s, so it must be owned by root or %s "+
			"and writable by no one else, or another user could run code with those rights (as sshd's StrictModes); fix it with chown %d %s && chmod go-w %s",
			real, octalMode(mode), describeUID(uid), describeUID(euid), describeUID(euid), euid, real, real)
	}
	harm := "replace the hook autoipd runs as " + describeUID(euid)
	if err := checkDirsAbove(real, "hook", harm); err != nil {
		return abs, err
	}
	if real != abs {
		if err := checkDirsAbove(abs, "hook", harm); err != nil {
			return abs, err
		}
	}
	return abs, nil
}
