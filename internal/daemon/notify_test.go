package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoPollingNeeded: with -check-interval at its maximum (1 m), the
// daemon still follows everything within seconds, from the kernel's
// notifications alone: it opens the TAP last (after the netstack is built
// and the client attached), binds, notices the link going down and
// up and the TAP being deleted and re-created, and puts back state
// directory files removed under it (inotify).
func TestNoPollingNeeded(t *testing.T) {
	ns := newNS(t)
	tapInNS(t, ns)
	state := privateStateDir(t)
	r := startRunEvery(t, ns, state, "1m", append([]string{"-s", "169.254.20.92", "-log-format", "json"}, fastRun...)...)
	r.waitStatus("bound", func(_ []byte, rep *StatusReport) bool { return rep.Configured == "169.254.20.92" && rep.LinkUp })

	// Start-up order: the TAP is opened last, after the netstack is built
	// and the client attached.
	var order []string
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil {
			switch rec.Msg {
			case "autoipd starting", "autoip started", "TAP opened":
				order = append(order, rec.Msg)
			}
		}
	}
	if strings.Join(order, ", ") != "autoipd starting, autoip started, TAP opened" {
		t.Errorf("start-up order %q, want the TAP opened after the netstack and the client", order)
	}

	linkUp := func(want bool) {
		t.Helper()
		r.waitStatus("link_up "+map[bool]string{true: "true", false: "false"}[want], func(_ []byte, rep *StatusReport) bool { return rep.LinkUp == want })
	}
	ns.IP(t, "link", "set", "aiphu0", "down")
	linkUp(false)
	ns.IP(t, "link", "set", "aiphu0", "up")
	linkUp(true)
	ns.IP(t, "link", "del", "aiphu0")
	linkUp(false)
	tapInNS(t, ns)
	r.waitStatus("bound again after re-creation", func(_ []byte, rep *StatusReport) bool {
		return rep.LinkUp && rep.Configured == "169.254.20.92" && rep.Counters.Link.Reopens == 1
	})

	first := r.waitServing()
	if err := os.Remove(r.path(".mac")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the MAC file put back", func() bool { _, err := os.Stat(r.path(".mac")); return err == nil })
	os.RemoveAll(state)
	waitUntil(t, "the state directory put back", func() bool { _, err := os.Stat(r.path(".lock")); return err == nil })
	if again := r.waitServing(); again.PID != first.PID {
		t.Errorf("status after the removal from pid %d, want %d", again.PID, first.PID)
	}
	if code := r.stop(); code != ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
}

// waitUntil polls cond for up to 10 s: far less than the 1 m
// -check-interval of TestNoPollingNeeded.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStateDirGivenAsALinkIsWatched: -state-dir naming a link to a private
// directory works like the directory itself: it is used where the link
// leads, so inotify watches it (an operator saw "cannot watch the state
// directory with inotify ... not a directory" and a fall-back to polling)
// and a removed MAC file is put back long before the 1 m -check-interval.
func TestStateDirGivenAsALinkIsWatched(t *testing.T) {
	ns := newNS(t)
	tapInNS(t, ns)
	real := privateStateDir(t)
	link := filepath.Join(privateStateDir(t), "state")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	r := startRunEvery(t, ns, link, "1m", append([]string{"-s", "169.254.20.93"}, fastRun...)...)
	r.waitStatus("bound", func(_ []byte, rep *StatusReport) bool { return rep.Configured == "169.254.20.93" })
	if strings.Contains(r.stderr.String(), "cannot watch the state directory") {
		t.Errorf("the state directory is not watched:\n%s", r.stderr.String())
	}
	mac := filepath.Join(real, "aiphu0.mac")
	if err := os.Remove(mac); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the MAC file put back", func() bool { _, err := os.Stat(mac); return err == nil })
	if code := r.stop(); code != ExitOK {
		t.Errorf("exit %d, want 0", code)
	}
}
