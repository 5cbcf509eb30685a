package interop

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// line is one line of a process's output and when it arrived.
type line struct {
	at   time.Time
	text string
}

// lineLog collects a process's stdout and stderr line by line, stamping
// each line as it arrives (avahi-autoipd and dhcpcd do not stamp theirs).
type lineLog struct {
	mu      sync.Mutex
	partial bytes.Buffer
	lines   []line
}

func (l *lineLog) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	for {
		b := l.partial.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, line{at: now, text: string(b[:i])})
		l.partial.Next(i + 1)
	}
	return len(p), nil
}

// snapshot returns the lines so far (and any unterminated tail).
func (l *lineLog) snapshot() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]line(nil), l.lines...)
	if l.partial.Len() > 0 {
		out = append(out, line{at: time.Now(), text: l.partial.String()})
	}
	return out
}

// proc is a process started for a case, usually `ip netns exec NS cmd...`
// (which execs cmd in place, so signals reach cmd itself).
type proc struct {
	name  string
	args  []string
	cmd   *exec.Cmd
	out   *lineLog
	start time.Time
	done  chan struct{}
	err   error // from Wait, valid after done
}

// startProc starts args[0] with args[1:] and registers a cleanup that stops
// it (SIGTERM, then SIGKILL after 5 s) if it is still running. Only this
// process is ever signalled, by its pid.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, out: &lineLog{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process if it is still running.
func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s has exited: %v", p.name, p.err)
	}
	return p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It reports whether the process exited by itself.
func (p *proc) stop(grace time.Duration) bool {
	if !p.running() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// waitLine waits until a line containing substr has been printed and
// returns when it arrived.
func (p *proc) waitLine(substr string, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range p.out.snapshot() {
			if strings.Contains(l.text, substr) {
				return l.at, true
			}
		}
		if time.Now().After(deadline) || !p.running() {
			return time.Time{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contains reports whether any output line contains substr.
func (p *proc) contains(substr string) bool {
	for _, l := range p.out.snapshot() {
		if strings.Contains(l.text, substr) {
			return true
		}
	}
	return false
}

// transcript renders the output with arrival times, for t.Log.
func (p *proc) transcript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "=== %s (started %s): %s\n", p.name, p.start.Format("15:04:05.000"), strings.Join(p.args, " "))
	for _, l := range p.out.snapshot() {
		fmt.Fprintf(&b, "%s | %s\n", l.at.Format("15:04:05.000"), l.text)
	}
	if !p.running() {
		fmt.Fprintf(&b, "=== %s exited: %v\n", p.name, p.err)
	}
	return b.String()
}

// waitFor polls cond every 25 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}
