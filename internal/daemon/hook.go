package daemon

import (
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

// hookWaitLogInterval is how often shutdown says which hook it waits for.
const hookWaitLogInterval = 2 * time.Second

// hookRunner runs the hook for queued events one at a time, in order, on its
// own goroutine, so that the engine never waits for a hook. Each hook runs
// in a process group of its own, which is killed when the hook ends, times
// out or is cut short at shutdown (see contain).
type hookRunner struct {
	path    string
	iface   string
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	queue   []hookCall
	closed  bool
	running *runningHook // nil between hooks
	wake    chan struct{}
	done    chan struct{}

	abort     chan struct{} // closed when shutdown stops waiting
	abortOnce sync.Once
}

// runningHook describes the hook being run, for the shutdown log.
type runningHook struct {
	event   string
	pid     int
	started time.Time
}

func newHookRunner(path, iface string, timeout time.Duration, log *slog.Logger) *hookRunner {
	h := &hookRunner{path: path, iface: iface, timeout: timeout, log: log,
		wake: make(chan struct{}, 1), done: make(chan struct{}), abort: make(chan struct{})}
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
	h.poke()
}

func (h *hookRunner) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// close stops accepting calls and waits until the queued ones have run (each
// bounded by the timeout), saying every hookWaitLogInterval which hook it
// waits for. When ctx ends first (a second SIGINT/SIGTERM), it kills the
// running hook's process group, drops the queued calls and returns.
func (h *hookRunner) close(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.poke()
	tick := time.NewTicker(hookWaitLogInterval)
	defer tick.Stop()
	for {
		h.logWaiting()
		select {
		case <-h.done:
			return
		case <-tick.C:
		case <-ctx.Done():
			h.stopNow(ctx.Err())
			return
		}
	}
}

// logWaiting says which hook shutdown is waiting for, if one runs.
func (h *hookRunner) logWaiting() {
	h.mu.Lock()
	r, queued := h.running, len(h.queue)
	h.mu.Unlock()
	if r == nil {
		return
	}
	h.log.Info("waiting for hook", "hook", h.path, "event", r.event, "pid", r.pid,
		"running_for", time.Since(r.started).Round(time.Millisecond), "timeout", h.timeout, "queued", queued,
		"hint", "a second SIGINT or SIGTERM stops at once")
}

// stopNow kills the running hook's group, drops the queue and waits a
// little for the runner to finish.
func (h *hookRunner) stopNow(why error) {
	h.mu.Lock()
	var dropped []string
	for _, c := range h.queue {
		dropped = append(dropped, c.event)
	}
	h.queue = nil
	h.mu.Unlock()
	h.abortOnce.Do(func() { close(h.abort) })
	select {
	case <-h.done:
	case <-time.After(5 * time.Second): // a hook stuck in the kernel: do not hang the exit on it
	}
	h.log.Warn("gave up waiting for hooks at shutdown: killed the running hook's process group",
		"err", why, "dropped_queued", len(dropped), "dropped", dropped)
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

func (h *hookRunner) setRunning(r *runningHook) {
	h.mu.Lock()
	h.running = r
	h.mu.Unlock()
}

// run executes the hook directly (no shell) as PATH EVENT IFACE ADDRESS, in
// its own process group (see contain). Failures are logged.
func (h *hookRunner) run(c hookCall) {
	select {
	case <-h.abort:
		return
	default:
	}
	attrs := []any{"hook", h.path, "event", c.event, "addr", c.addr}
	// Checked again at each run: the file or a directory above it may
	// have changed hands since the start.
	if _, err := checkHook(h.path); err != nil && !errors.Is(err, errHookMissing) {
		h.log.Error("hook not run: "+err.Error(), attrs...)
		return
	}
	cmd := exec.Command(h.path, c.event, h.iface, c.addr)
	cmd.Env = append(hookBaseEnv(), c.env...)
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process that left the group (setsid) and keeps our pipes open does
	// not hold us for longer than this.
	cmd.WaitDelay = time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		h.log.Warn("hook could not be run", append(attrs, "err", err)...)
		return
	}
	h.setRunning(&runningHook{event: c.event, pid: cmd.Process.Pid, started: start})
	ended := contain(cmd.Process.Pid, h.timeout, h.abort)
	err := cmd.Wait()
	h.setRunning(nil)
	attrs = append(attrs, "took", time.Since(start).Round(time.Millisecond))
	logOutput := func(name string, b *limitedBuffer) {
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if line != "" {
				h.log.Info("hook "+name, append(attrs[:4:4], "line", line)...)
			}
		}
		if b.dropped > 0 {
			h.log.Warn("hook "+name+" truncated", append(attrs[:4:4], "kept_bytes", hookOutputLimit, "dropped_bytes", b.dropped)...)
		}
	}
	logOutput("stdout", &stdout)
	logOutput("stderr", &stderr)
	var exitErr *exec.ExitError
	switch {
	case ended == endedByTimeout:
		h.log.Warn("hook timed out and was killed", append(attrs, "timeout", h.timeout)...)
	case ended == endedByShutdown:
		h.log.Warn("hook killed at shutdown", attrs...)
	case err == nil:
		h.log.Info("hook ran", attrs...)
	case errors.Is(err, exec.ErrWaitDelay):
		h.log.Warn("hook ran, but a process it started left its process group and keeps its output open", append(attrs, "err", err)...)
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
