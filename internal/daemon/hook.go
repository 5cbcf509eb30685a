package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// Hook event names (avahi-autoipd's action script contract).
const (
	HookBind     = "BIND"
	HookConflict = "CONFLICT"
	HookUnbind   = "UNBIND"
	HookStop     = "STOP"
)

// hookEvent maps an engine event to a hook event, or "" if none runs:
// BIND, CONFLICT only for a bound address lost (PhaseBound), UNBIND, STOP.
func hookEvent(ev autoip.Event) string {
	switch ev.Kind {
	case autoip.EventBind:
		return HookBind
	case autoip.EventConflict:
		if ev.Phase == acd.PhaseBound {
			return HookConflict
		}
	case autoip.EventUnbind:
		return HookUnbind
	case autoip.EventStop:
		return HookStop
	}
	return ""
}

// hookCall is one queued hook execution.
type hookCall struct {
	event string
	addr  string
	env   []string // AUTOIPD_* variables
}

// hookOutputLimit bounds what is kept of a hook's stdout and stderr each.
const hookOutputLimit = 64 << 10

// hookRunner runs the hook for queued events one at a time, in order, on its
// own goroutine, so that the engine never waits for a hook.
type hookRunner struct {
	path    string
	iface   string
	timeout time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	queue  []hookCall
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newHookRunner(path, iface string, timeout time.Duration, log *slog.Logger) *hookRunner {
	h := &hookRunner{path: path, iface: iface, timeout: timeout, log: log,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.loop()
	return h
}

// enqueue adds a call; it never blocks. Calls after close are dropped.
func (h *hookRunner) enqueue(c hookCall) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.log.Warn("hook not run: shutting down", "event", c.event)
		return
	}
	h.queue = append(h.queue, c)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// close stops accepting calls and waits until the queued ones have run (each
// bounded by the timeout) or ctx ends.
func (h *hookRunner) close(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		h.log.Warn("gave up waiting for hooks at shutdown", "err", ctx.Err())
	}
}

func (h *hookRunner) loop() {
	defer close(h.done)
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			closed := h.closed
			h.mu.Unlock()
			if closed {
				return
			}
			<-h.wake
			continue
		}
		c := h.queue[0]
		h.queue[0] = hookCall{}
		h.queue = h.queue[1:]
		h.mu.Unlock()
		h.run(c)
	}
}

// limitedBuffer keeps the first hookOutputLimit bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := hookOutputLimit - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		b.dropped += len(p) - max(room, 0)
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// run executes the hook directly (no shell) as PATH EVENT IFACE ADDRESS, in
// its own process group, killing the group on timeout. Failures are logged.
func (h *hookRunner) run(c hookCall) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.path, c.event, h.iface, c.addr)
	cmd.Env = append(hookBaseEnv(), c.env...)
	cmd.Stdin = nil
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a hook script's children die with it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second // children that keep stdout open do not hold us
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	attrs := []any{"hook", h.path, "event", c.event, "addr", c.addr, "took", took}
	logOutput := func(name string, b *limitedBuffer) {
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line != "" {
				h.log.Info("hook "+name, append(attrs[:4:4], "line", line)...)
			}
		}
		if b.dropped > 0 {
			h.log.Warn("hook "+name+" truncated", append(attrs[:4:4], "dropped_bytes", b.dropped)...)
		}
	}
	logOutput("stdout", &stdout)
	logOutput("stderr", &stderr)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		h.log.Info("hook ran", attrs...)
	case ctx.Err() != nil:
		h.log.Warn("hook timed out and was killed", append(attrs, "timeout", h.timeout)...)
	case errors.As(err, &exitErr):
		h.log.Warn("hook failed", append(attrs, "exit", exitErr.ExitCode(), "err", err)...)
	default:
		h.log.Warn("hook could not be run", append(attrs, "err", err)...)
	}
}

// hookEnv returns the AUTOIPD_* variables for an event.
func hookEnv(event, iface string, mac string, ev autoip.Event) []string {
	env := []string{
		"AUTOIPD_EVENT=" + event,
		"AUTOIPD_IFACE=" + iface,
		"AUTOIPD_ADDRESS=" + addrString(ev.Addr),
		"AUTOIPD_MAC=" + mac,
		"AUTOIPD_PID=" + strconv.Itoa(os.Getpid()),
		"AUTOIPD_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
	}
	if ev.Kind == autoip.EventConflict {
		env = append(env,
			"AUTOIPD_CONFLICT_MAC="+ev.From.String(),
			"AUTOIPD_PACKET_KIND="+ev.Frame.Packet.Kind().String(),
			"AUTOIPD_PHASE="+ev.Phase.String(),
		)
	}
	if ev.Reason != "" {
		env = append(env, "AUTOIPD_REASON="+ev.Reason)
	}
	return env
}

// hookBaseEnv is our environment without AUTOIPD_* variables (ours are
// added per event; inherited ones would confuse the hook).
func hookBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTOIPD_") {
			env = append(env, kv)
		}
	}
	return env
}
