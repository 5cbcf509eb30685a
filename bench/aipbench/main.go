// Command aipbench is the helper of bench/run.sh (`make bench`):
//
//	aipbench claim -autoipd BIN -iface TAP -mode rfc|fast|wait -reps N -work DIR -out FILE
//	aipbench idle  -autoipd BIN -iface TAP -settle 5s -idle 60s -work DIR -out FILE
//	aipbench crowd -autoipd BIN -n 20 -rounds 3 -work DIR -out FILE
//	aipbench schedule -mac MAC [-delay MS -p N -a N -w S] [-restarts N]
//	aipbench table -dir RESULTS
//	aipbench median -file BENCHOUT -bench NAME -unit UNIT [-scale F]
//
// claim and idle run the real daemon and must run inside the benchmark's
// network namespace (run.sh starts them with `ip netns exec`), on a TAP that
// run.sh created there and brought up. The daemon's -hook is aipbench-hook
// (bench/aipbench/hook, built next to aipbench), which takes the time at
// once and reports the event on a unix socket named by AIPBENCH_HOOK_SOCK.
// table reads what run.sh collected and prints the markdown table.
// Progress goes to stderr.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const hookSockEnv = "AIPBENCH_HOOK_SOCK"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: aipbench claim|idle|schedule|table [flags] (see the package doc)")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "claim":
		err = claimMain(args)
	case "idle":
		err = idleMain(args)
	case "crowd":
		err = crowdMain(args)
	case "memstats":
		err = memStatsMain(args)
	case "schedule":
		err = scheduleMain(args)
	case "table":
		err = tableMain(args, os.Stdout)
	case "median":
		err = medianMain(args, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "aipbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// hookEvent is one hook invocation as reported to hookListener by
// aipbench-hook (bench/aipbench/hook).
type hookEvent struct {
	Event      string
	HookTime   time.Time // when the hook process started running
	EngineTime time.Time // AUTOIPD_TIME: the engine's time of the event
	pid        int       // AUTOIPD_PID: the daemon
}

// hookListener collects the reports of hook invocations.
type hookListener struct {
	ln     net.Listener
	path   string
	events chan hookEvent
}

func listenHook(path string) (*hookListener, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	h := &hookListener{ln: ln, path: path, events: make(chan hookEvent, 16)}
	go h.serve()
	return h, nil
}

func (h *hookListener) serve() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			close(h.events)
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil && line == "" {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			ev := hookEvent{Event: f[0], HookTime: time.Unix(0, ns)}
			if len(f) > 2 {
				ev.EngineTime, _ = time.Parse(time.RFC3339Nano, f[2])
			}
			if len(f) > 3 {
				ev.pid, _ = strconv.Atoi(f[3])
			}
			h.events <- ev
		}()
	}
}

// wait returns the first event named name, or an error after timeout.
func (h *hookListener) wait(name string, timeout time.Duration) (hookEvent, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-h.events:
			if !ok {
				return hookEvent{}, fmt.Errorf("hook listener closed before %s", name)
			}
			if ev.Event == name {
				return ev, nil
			}
		case <-t.C:
			return hookEvent{}, fmt.Errorf("no %s hook within %v", name, timeout)
		}
	}
}

func (h *hookListener) close() { h.ln.Close(); _ = os.Remove(h.path) }

// daemonProc is an autoipd started by us.
type daemonProc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	once sync.Once
}

// startDaemon starts bin with args, logging to logPath, with the hook
// socket in its environment, and records its pid in $AIPBENCH_PIDS (for
// run.sh's cleanup trap).
func startDaemon(bin string, args []string, logPath, hookSock string, env ...string) (*daemonProc, time.Time, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, time.Time{}, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), hookSockEnv+"="+hookSock), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, t0, err
	}
	recordPID(cmd.Process.Pid)
	d := &daemonProc{cmd: cmd, log: lf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.done) }()
	return d, t0, nil
}

func (d *daemonProc) pid() int { return d.cmd.Process.Pid }

func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 10 s, then kills.
func (d *daemonProc) stop() error {
	var err error
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
			err = fmt.Errorf("autoipd (pid %d) did not stop within 10 s of SIGTERM; killed", d.pid())
		}
		d.log.Close()
		if err == nil {
			if st := d.cmd.ProcessState; st != nil && st.ExitCode() != 0 {
				err = fmt.Errorf("autoipd (pid %d) exited %d after SIGTERM", d.pid(), st.ExitCode())
			}
		}
	})
	return err
}

// recordPID appends pid to the file named by $AIPBENCH_PIDS.
func recordPID(pid int) {
	p := os.Getenv("AIPBENCH_PIDS")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// selfPath is this executable.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// hookPath is the daemon's -hook: aipbench-hook next to this executable.
func hookPath() (string, error) {
	self, err := selfPath()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), "aipbench-hook")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the hook binary: %w (build bench/aipbench/hook as aipbench-hook next to aipbench)", err)
	}
	return p, nil
}
