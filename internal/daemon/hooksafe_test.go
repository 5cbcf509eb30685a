package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHookOthersCanChangeIsRefused: autoipd runs its hook with its own
// rights (root, as a rule), so a hook another user owns or can write to,
// or that sits in a directory others can write to, is refused at start
// with the path, its mode and owner, and the fix (as the state directory
// is). An operator saw a 0777 hook, one owned by uid 65534 and one in a
// 0777 directory all run as uid 0 without a word.
func TestHookOthersCanChangeIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to another user and a namespace of its own")
	}
	ns := newNS(t)
	cases := []struct {
		name  string
		setup func(p string) string // returns the -hook
		want  []string
	}{
		{"world-writable", func(p string) string { os.Chmod(p, 0o777); return p }, []string{"mode 0777", "writable by no one else", "chmod go-w"}},
		{"group-writable", func(p string) string { os.Chmod(p, 0o775); return p }, []string{"mode 0775"}},
		{"owned by another user", func(p string) string { os.Chown(p, 65534, 65534); return p }, []string{"owned by uid 65534"}},
		{"in a world-writable directory", func(p string) string { os.Chmod(filepath.Dir(p), 0o777); return p }, []string{"above hook", "mode 0777", "replace the hook"}},
		{"a link to a world-writable file", func(p string) string {
			os.Chmod(p, 0o777)
			l := filepath.Join(privateStateDir(t), "link.sh")
			os.Symlink(p, l)
			return l
		}, []string{"mode 0777"}},
		{"not a regular file", func(p string) string { return filepath.Dir(p) }, []string{"is a directory"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hook := c.setup(writeScript(t, "exit 0\n"))
			r := startRun(t, ns, privateStateDir(t), "-hook", hook)
			if code := r.wait(10 * time.Second); code != ExitFailure {
				t.Fatalf("exit %d, want %d\n%s", code, ExitFailure, r.stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr.String(), w) {
					t.Errorf("message lacks %q:\n%s", w, r.stderr.String())
				}
			}
		})
	}
}

// TestHookChangedAfterStartIsNotRun: the check is made again before every
// run, so a hook made world-writable after the start is not run (and the
// log says why).
func TestHookChangedAfterStartIsNotRun(t *testing.T) {
	var logs syncBuffer
	out := filepath.Join(t.TempDir(), "ran")
	hook := writeScript(t, "echo \"$1\" >> "+out+"\n")
	path, err := checkHook(hook)
	if err != nil {
		t.Fatal(err)
	}
	h := newHookRunner(path, "tap9", time.Second, testLogger(&logs))
	h.enqueue(hookCall{event: HookBind})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(out); string(b) == "BIND\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the safe hook did not run:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Chmod(hook, 0o777); err != nil {
		t.Fatal(err)
	}
	h.enqueue(hookCall{event: HookStop})
	h.close(context.Background())
	if b, _ := os.ReadFile(out); string(b) != "BIND\n" {
		t.Errorf("the hook ran after it became world-writable: %q", b)
	}
	if !strings.Contains(logs.String(), "hook not run") || !strings.Contains(logs.String(), "mode 0777") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}

// TestHookBareNameFromPATH: a bare -hook name is looked up in $PATH and
// run by its absolute path, checked like any other; a missing one is
// reported as missing (tried at each event anyway).
func TestHookBareNameFromPATH(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "aip-test-hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	got, err := checkHook("aip-test-hook")
	if err != nil || got != hook {
		t.Errorf("checkHook(bare name) = %q, %v; want %q", got, err, hook)
	}
	if _, err := checkHook("aip-no-such-hook"); !errors.Is(err, errHookMissing) {
		t.Errorf("missing bare name: %v, want errHookMissing", err)
	}
}
