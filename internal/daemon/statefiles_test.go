package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 11 items 2, 4 and 8: what is found in place of the daemon's files
// (links, FIFOs, devices, huge or corrupt files) is reported by path and
// handled, never followed, never blocks start-up and never reaches the log.

const secret = "SECRET-TOKEN-7f3a"

// writeSecret makes a root-only file whose content must never be logged
// or changed, and returns its path.
func writeSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkSecretIntact(t *testing.T, path string) {
	t.Helper()
	if b, err := os.ReadFile(path); err != nil || string(b) != secret+"\n" {
		t.Errorf("%s was changed through a link: %q, %v", path, b, err)
	}
}

// TestLinksInPlaceOfDaemonFilesAreRefused: a symbolic link in place of the
// lock file, the MAC file or the -pcap file stops start-up with exit 1 and
// a message naming the path; the link's target is neither written nor
// truncated, and its content never reaches the log.
func TestLinksInPlaceOfDaemonFilesAreRefused(t *testing.T) {
	ns := newNS(t)
	for _, suffix := range []string{".lock", ".mac", ".pcap"} {
		t.Run(suffix, func(t *testing.T) {
			state := privateStateDir(t)
			target := writeSecret(t)
			link := filepath.Join(state, "aiphu0"+suffix)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			var args []string
			if suffix == ".pcap" {
				args = []string{"-pcap", link}
			}
			r := startRun(t, ns, state, args...)
			if code := r.wait(10 * time.Second); code != ExitFailure {
				t.Errorf("exit %d, want %d", code, ExitFailure)
			}
			msg := r.stderr.String()
			if !strings.Contains(msg, link) || !strings.Contains(msg, "symbolic link") {
				t.Errorf("message does not name %s as a symbolic link:\n%s", link, msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("the link target's content reached the log:\n%s", msg)
			}
			checkSecretIntact(t, target)
		})
	}
}

// TestBadMACFileRefusedNeverReplaced: a MAC file that is corrupt, holds a
// multicast MAC, is a FIFO or is huge stops start-up with exit 1, naming
// the file and what is wrong, without its content: a new MAC would
// silently change the host's identity and address. The file is left as
// it was.
func TestBadMACFileRefusedNeverReplaced(t *testing.T) {
	ns := newNS(t)
	cases := []struct {
		name string
		make func(path string) error
		want string
	}{
		{"corrupt", func(p string) error { return os.WriteFile(p, []byte(secret+"\n"), 0o600) }, "not a MAC address"},
		{"multicast", func(p string) error { return os.WriteFile(p, []byte("01:00:5e:00:00:01\n"), 0o600) }, "not a unicast MAC"},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }, "is a FIFO"},
		{"huge", func(p string) error { return os.WriteFile(p, make([]byte, 1<<20), 0o600) }, "1048576 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := privateStateDir(t)
			mac := filepath.Join(state, "aiphu0.mac")
			if err := c.make(mac); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(mac)
			r := startRun(t, ns, state)
			defer unblockFIFO(mac)
			if code := r.wait(10 * time.Second); code != ExitFailure {
				t.Errorf("exit %d, want %d", code, ExitFailure)
			}
			msg := r.stderr.String()
			for _, w := range []string{mac, c.want, "-mac"} {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("the MAC file's content reached the log:\n%s", msg)
			}
			after, err := os.Lstat(mac)
			if err != nil || !os.SameFile(before, after) || after.Size() != before.Size() {
				t.Errorf("the MAC file was replaced or changed")
			}
		})
	}
}

// unblockFIFO opens path for writing without blocking, releasing a reader
// stuck in open(2) on it (code before the fix blocked there for ever).
func unblockFIFO(path string) {
	if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		unix.Close(fd)
	}
}

// TestBadStateFileWarnsAndStartsAfresh: a saved-state file that is a FIFO,
// a link to /dev/zero, huge, corrupt or of another format version is
// reported at WARN with its path and the reason (never its content); the
// daemon starts afresh, answers status, stops at SIGTERM with exit 0 and
// saves a good state file in its place.
func TestBadStateFileWarnsAndStartsAfresh(t *testing.T) {
	ns := newNS(t)
	cases := []struct {
		name string
		make func(path string) error
		want string
	}{
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }, "is a FIFO"},
		{"link to /dev/zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "symbolic link"},
		{"huge", func(p string) error { return os.WriteFile(p, make([]byte, 2<<20), 0o600) }, "2097152 bytes"},
		{"corrupt", func(p string) error {
			return os.WriteFile(p, []byte(`{"version":1,"address":"`+secret+`","conflicts":0}`), 0o600)
		}, "not saved state"},
		{"other version", func(p string) error { return os.WriteFile(p, []byte(`{"version":7}`), 0o600) }, "format version 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := privateStateDir(t)
			path := filepath.Join(state, "aiphu0.state.json")
			if err := c.make(path); err != nil {
				t.Fatal(err)
			}
			r := startRun(t, ns, state)
			defer unblockFIFO(path)
			r.waitLog("autoipd starting")
			r.waitServing()
			if code := r.stop(); code != ExitOK {
				t.Errorf("exit %d after cancel, want 0", code)
			}
			var warn string
			for _, line := range strings.Split(r.stderr.String(), "\n") {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, path) {
					warn = line
				}
			}
			if !strings.Contains(warn, c.want) {
				t.Errorf("no WARN line naming %s with %q:\n%s", path, c.want, r.stderr.String())
			}
			if strings.Contains(r.stderr.String(), secret) {
				t.Errorf("the state file's content reached the log")
			}
			if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() > 4096 {
				t.Errorf("after stop the state file is %v (%v), want a small regular file", fi, err)
			}
		})
	}
}

// TestPcapFileChecks: -pcap refuses a FIFO, a file another user owns
// (truncating it would destroy their data) and a file of ours that is not
// a capture (a slip like -pcap /etc/passwd), and rewrites an old capture.
func TestPcapFileChecks(t *testing.T) {
	ns := newNS(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pcap")
	unix.Mkfifo(fifo, 0o600)
	foreign := filepath.Join(dir, "foreign.pcap")
	os.WriteFile(foreign, []byte(secret), 0o644)
	os.Chown(foreign, 65534, 65534)
	notPcap := filepath.Join(dir, "passwd")
	os.WriteFile(notPcap, []byte(secret), 0o644)
	for _, c := range []struct{ path, want string }{{fifo, "is a FIFO"}, {foreign, "owned by uid 65534"}, {notPcap, "not a pcap capture"}} {
		r := startRun(t, ns, privateStateDir(t), "-pcap", c.path)
		if code := r.wait(10 * time.Second); code != ExitFailure || !strings.Contains(r.stderr.String(), c.want) {
			t.Errorf("-pcap %s: exit %d, want 1 and %q:\n%s", c.path, code, c.want, r.stderr.String())
		}
	}
	for _, p := range []string{foreign, notPcap} {
		if b, _ := os.ReadFile(p); string(b) != secret {
			t.Errorf("%s was truncated", p)
		}
	}
	own := filepath.Join(dir, "own.pcap")
	old := make([]byte, 100000)
	copy(old, []byte{0xd4, 0xc3, 0xb2, 0xa1}) // an earlier capture
	os.WriteFile(own, old, 0o644)
	r := startRun(t, ns, privateStateDir(t), "-pcap", own)
	r.waitServing()
	r.stop()
	if fi, err := os.Stat(own); err != nil || fi.Size() >= 100000 || fi.Size() < 24 {
		t.Errorf("own pcap not rewritten: %v %v", fi, err)
	}
}
