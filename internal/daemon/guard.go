package daemon

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// guardStateDir calls repairStateDir whenever inotify reports that an
// entry of the state directory was created, removed or renamed, or the
// directory itself was removed or renamed, until stop is closed. A repair
// that fails (the directory was still being removed, say) or a directory
// that cannot be watched again is retried after 10 ms, 20 ms, ... up to
// interval; without inotify at all it runs every interval.
func (d *daemon) guardStateDir(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	w, err := newDirWatch(d.cfg.StateDir)
	if err != nil {
		d.log.Warn("cannot watch the state directory with inotify; checking it every -check-interval instead", "err", err, "interval", interval)
	} else {
		defer w.close()
	}
	var events <-chan struct{}
	if w != nil {
		events = w.C
	}
	t := time.NewTimer(interval)
	t.Stop()
	defer t.Stop()
	const firstRetry = 10 * time.Millisecond
	retry := time.Duration(0) // 0: all is well, wait for events
	for {
		var tick <-chan time.Time
		switch {
		case w == nil:
			t.Reset(interval)
			tick = t.C
		case retry > 0:
			t.Reset(retry)
			tick = t.C
		}
		select {
		case <-stop:
			return
		case <-events:
		case <-tick:
		}
		ok := d.repairStateDir()
		if w == nil {
			continue
		}
		// The directory may have been removed and made again: watch the
		// one that is there now.
		if w.rewatch() == nil && ok {
			retry = 0
		} else {
			retry = min(max(2*retry, firstRetry), interval)
		}
	}
}

// repairStateDir puts back what a running daemon keeps in its state
// directory when something removed or replaced it (a hook's rm -r, a
// cleanup script): the directory (0700), the lock, the status socket and
// the MAC file. Without them -status would find no daemon, and a second
// daemon would take the lock, find the TAP busy and write a new MAC. The
// state file comes back with the next save. It reports whether everything
// is in place.
func (d *daemon) repairStateDir() bool {
	d.repairMu.Lock()
	defer d.repairMu.Unlock()
	var restored []string
	if !d.lock.intact() {
		if _, err := prepareStateDir(d.cfg.StateDir); err != nil {
			d.repairFailed(err)
			return false
		}
		l, err := lockIface(d.lock.path, d.cfg.Iface)
		if err != nil {
			d.repairFailed(err)
			return false
		}
		d.lock.takeOver(l)
		restored = append(restored, "lock")
	}
	if d.srv != nil && !d.srv.intact() {
		if err := d.srv.relisten(); err != nil {
			d.repairFailed(err)
			return false
		}
		restored = append(restored, "status socket")
	}
	if d.cfg.MAC.IsZero() {
		path := d.cfg.path(".mac")
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			if err := storeMAC(path, d.mac); err != nil {
				d.repairFailed(err)
				return false
			}
			restored = append(restored, "MAC file")
		}
	}
	if len(restored) > 0 {
		d.repairErr = ""
		d.log.Warn("files of the state directory were removed or replaced while the daemon ran: put them back",
			"dir", d.cfg.StateDir, "restored", restored)
	}
	return true
}

// repairFailed logs err once per distinct error.
func (d *daemon) repairFailed(err error) {
	if msg := err.Error(); msg != d.repairErr {
		d.repairErr = msg
		d.log.Error("cannot restore the state directory; -status and the single-instance lock do not work until it is fixed", "err", msg)
	}
}
