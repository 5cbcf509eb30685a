package daemon

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// guardStateDir calls repairStateDir every interval until stop is closed.
func (d *daemon) guardStateDir(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.repairStateDir()
		}
	}
}

// repairStateDir puts back what a running daemon keeps in its state
// directory when something removed or replaced it (a hook's rm -r, a
// cleanup script): the directory (0700), the lock, the status socket and
// the MAC file. Without them -status would find no daemon, and a second
// daemon would take the lock, find the TAP busy and write a new MAC. The
// state file comes back with the next save.
func (d *daemon) repairStateDir() {
	d.repairMu.Lock()
	defer d.repairMu.Unlock()
	var restored []string
	if !d.lock.intact() {
		if err := prepareStateDir(d.cfg.StateDir); err != nil {
			d.repairFailed(err)
			return
		}
		l, err := lockIface(d.lock.path, d.cfg.Iface)
		if err != nil {
			d.repairFailed(err)
			return
		}
		d.lock.takeOver(l)
		restored = append(restored, "lock")
	}
	if d.srv != nil && !d.srv.intact() {
		if err := d.srv.relisten(); err != nil {
			d.repairFailed(err)
			return
		}
		restored = append(restored, "status socket")
	}
	if d.cfg.MAC.IsZero() {
		path := d.cfg.path(".mac")
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			if err := storeMAC(path, d.mac); err != nil {
				d.repairFailed(err)
				return
			}
			restored = append(restored, "MAC file")
		}
	}
	if len(restored) > 0 {
		d.repairErr = ""
		d.log.Warn("files of the state directory were removed or replaced while the daemon ran: put them back",
			"dir", d.cfg.StateDir, "restored", restored)
	}
}

// repairFailed logs err once per distinct error.
func (d *daemon) repairFailed(err error) {
	if msg := err.Error(); msg != d.repairErr {
		d.repairErr = msg
		d.log.Error("cannot restore the state directory; -status and the single-instance lock do not work until it is fixed", "err", msg)
	}
}
