package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/internal/netns"
)

// TestR26_RunInProcess runs Run itself (not the binary) on a TAP in a
// throw-away namespace: it claims the -s address, and cancelling its
// context withdraws it, reports STOP and returns 0. A second Run on the
// same interface returns ExitLocked without disturbing the first.
func TestR26_RunInProcess(t *testing.T) {
	ns := netns.New(t, "aipdr")
	ns.DisableIPv6(t)
	ns.IP(t, "tuntap", "add", "dev", "aipt0", "mode", "tap")
	ns.IP(t, "addr", "add", "169.254.77.2/16", "dev", "aipt0")
	ns.IP(t, "link", "set", "aipt0", "up")
	state := t.TempDir()
	args := []string{"-i", "aipt0", "-state-dir", state, "-s", "169.254.20.90", "-o", "delay=20", "-w", "1", "-check-interval", "50ms"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		var code int
		err := ns.Do(func() error {
			code = Run(ctx, args, &stdout, &stderr)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- code
	}()
	sock := filepath.Join(state, "aipt0.sock")
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, r, err := queryStatus(sock, time.Second)
		if err == nil && r.Configured == "169.254.20.90" {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no address within 15 s (last %+v, %v); log:\n%s", r, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ns.Exec("ping", "-c1", "-W1", "169.254.20.90"); err != nil && !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("ping: %v", err)
	}

	var errb bytes.Buffer
	var second int
	ns.Do(func() error {
		second = Run(context.Background(), args, &bytes.Buffer{}, &errb)
		return nil
	})
	if second != ExitLocked || !strings.Contains(errb.String(), "already managed by another autoipd") {
		t.Errorf("second Run = %d, %q; want %d", second, errb.String(), ExitLocked)
	}

	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("Run returned %d after cancel, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, w := range []string{"msg=BIND", "msg=STOP", "addr=169.254.20.90", "autoipd stopped"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, stderr.String())
		}
	}
}
