package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 11 items 2, 3 and 5: the state directory and what the daemon keeps
// in it are the daemon's alone.

// TestStateDirOthersCanWriteIsRefused: like sshd's StrictModes, a state
// directory that someone else owns or can write to (or that sits in a
// directory others can write to without the sticky bit) is refused before
// anything is read or created in it, naming the path, its mode and owner.
func TestStateDirOthersCanWriteIsRefused(t *testing.T) {
	ns := newNS(t)
	cases := []struct {
		name  string
		setup func(dir string) string // returns the -state-dir
		want  []string
	}{
		{"world-writable", func(dir string) string {
			os.Chmod(dir, 0o777)
			return dir
		}, []string{"mode 0777", "owned by uid 0", "writable"}},
		{"world-writable and sticky", func(dir string) string {
			os.Chmod(dir, 0o777|os.ModeSticky)
			return dir
		}, []string{"mode 1777", "writable"}},
		{"group-writable", func(dir string) string {
			os.Chmod(dir, 0o770)
			return dir
		}, []string{"mode 0770"}},
		{"owned by another user", func(dir string) string {
			os.Chown(dir, 65534, 65534)
			return dir
		}, []string{"mode 0700", "owned by uid 65534"}},
		{"in a world-writable parent", func(dir string) string {
			os.Chmod(dir, 0o777)
			sub := filepath.Join(dir, "state")
			os.Mkdir(sub, 0o700)
			return sub
		}, []string{"mode 0777", "sticky"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(privateStateDir(t))
			r := startRun(t, ns, dir)
			if code := r.wait(10 * time.Second); code != ExitFailure {
				t.Fatalf("exit %d, want %d", code, ExitFailure)
			}
			msg := r.stderr.String()
			bad := dir
			if c.name == "in a world-writable parent" {
				bad = filepath.Dir(dir)
			}
			for _, w := range append(c.want, bad) {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("the refused directory was written to: %v", entries)
			}
		})
	}
}

// TestStateDirCreatedPrivateUnderUmask000: under umask 000 a missing state
// directory is created 0700, and the lock, MAC file, status socket and
// saved state are 0600: no other user can read the MAC, address or pid,
// or lock the daemon out.
func TestStateDirCreatedPrivateUnderUmask000(t *testing.T) {
	ns := newNS(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	state := filepath.Join(privateStateDir(t), "new", "state")
	r := startRun(t, ns, state)
	r.waitServing()
	if got := permOf(t, state); got != 0o700 {
		t.Errorf("state directory created %#o, want 0700", got)
	}
	for _, suffix := range []string{".lock", ".mac", ".sock"} {
		if got := permOf(t, r.path(suffix)); got != 0o600 {
			t.Errorf("%s is %#o, want 0600", r.path(suffix), got)
		}
	}
	if code := r.stop(); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if got := permOf(t, r.path(".state.json")); got != 0o600 {
		t.Errorf("saved state is %#o, want 0600", got)
	}
}

// TestLockCannotBeHeldByAnotherUser: in a state directory others may enter
// (0755, as older autoipd made /var/lib/autoipd), an old 0644 lock file
// that user 65534 holds with flock does not keep the daemon out: the
// holder is named, the file is replaced by a 0600 one, and the other user
// can open none of the daemon's files afterwards.
func TestLockCannotBeHeldByAnotherUser(t *testing.T) {
	ns := newNS(t)
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("needs flock(1) (util-linux)")
	}
	state := privateStateDir(t)
	os.Chmod(state, 0o755)
	lock := filepath.Join(state, "aiphu0.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(lock, 0o644)
	holder := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "flock", "-x", lock, "sleep", "1000")
	if err := holder.Start(); err != nil {
		t.Skip("needs setpriv and flock (util-linux): ", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	// The holder has the lock once a non-blocking attempt fails.
	deadline := time.Now().Add(5 * time.Second)
	for exec.Command("flock", "-n", lock, "true").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatal("user 65534 never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}

	r := startRun(t, ns, state)
	r.waitServing()
	msg := r.stderr.String()
	// flock(1) runs sleep as its child: the lock's holder is flock itself.
	if !strings.Contains(msg, "uid=65534") || !strings.Contains(msg, "holder_pid="+strconv.Itoa(holder.Process.Pid)) {
		t.Errorf("log does not name the foreign holder (pid %d, uid 65534):\n%s", holder.Process.Pid, msg)
	}
	if got := permOf(t, lock); got != 0o600 {
		t.Errorf("lock file is %#o after start, want 0600", got)
	}
	for _, suffix := range []string{".lock", ".mac"} {
		if out, err := asNobody(t, "flock", "-n", "-x", r.path(suffix), "true"); err == nil {
			t.Errorf("user 65534 can open and lock %s: %s", r.path(suffix), out)
		}
	}
	if code := r.stop(); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if out, err := asNobody(t, "cat", r.path(".state.json")); err == nil {
		t.Errorf("user 65534 can read the saved state: %s", out)
	}
}

// TestStatusSocketPrivateUnderUmask000: the status socket is 0600 whatever
// the umask, from the moment it appears under its name.
func TestStatusSocketPrivateUnderUmask000(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	var logs syncBuffer
	sock := filepath.Join(dir, "tap0.sock")
	srv, err := listenStatus(sock, func() StatusReport { return StatusReport{Interface: "tap0"} }, nil, testLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket %v, want a socket with mode 0600", fi.Mode())
	}
	if _, r, err := queryStatus(sock, time.Second); err != nil || r.Interface != "tap0" {
		t.Errorf("query: %+v %v", r, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the state directory holds %d entries, want only the socket", len(entries))
	}
}
