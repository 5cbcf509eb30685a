package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// claimModes are the daemon settings claim measures, with the QNX options
// they mean (for the engine's virtual-time schedule).
var claimModes = map[string]struct {
	args []string
	qnx  autoip.QNXOptions
}{
	// RFC 3927 defaults: PROBE_WAIT 1 s, 3 probes 1-2 s apart,
	// ANNOUNCE_WAIT 2 s (autoipd's defaults).
	"rfc": {nil, autoip.DefaultQNXOptions()},
	// The fastest documented settings: delay=1 ms, 1 probe, 1
	// announcement, ANNOUNCE_WAIT 1 s.
	"fast": {[]string{"-o", "delay=1", "-p", "1", "-a", "1", "-w", "1"}, autoip.QNXOptions{DelayMS: 1, Probes: 1, Announces: 1, WaitSeconds: 1}},
	// The same, as `autoipd -wait` (start in the background, print the
	// address once bound).
	"wait": {[]string{"-o", "delay=1", "-p", "1", "-a", "1", "-w", "1", "-wait"}, autoip.QNXOptions{DelayMS: 1, Probes: 1, Announces: 1, WaitSeconds: 1}},
}

// ClaimRep is one measured claim. Durations are in milliseconds.
type ClaimRep struct {
	MAC  string `json:"mac"`
	Addr string `json:"addr"`
	// Measured: from just before exec of autoipd to the start of the BIND
	// hook (mode wait: to `autoipd -wait` exiting 0).
	Measured float64 `json:"measured_ms"`
	// Scheduled: when the same engine (same MAC, seed and timing) binds in
	// virtual time, counted from its Start.
	Scheduled float64 `json:"scheduled_ms"`
	Overhead  float64 `json:"overhead_ms"` // Measured - Scheduled
	// The overhead split: process start to the engine starting its first
	// attempt (the first "state" record to waiting: autoipd attaches the
	// client before it opens the TAP, so this includes the TAP coming up),
	// the engine's BIND event later than
	// scheduled (timer slack and work done between timers), the BIND event
	// to the hook running (state save, fork/exec of the hook).
	Startup   float64 `json:"startup_ms"`
	TimerLate float64 `json:"timer_late_ms"`
	HookDelay float64 `json:"hook_delay_ms"`
	// Restarts is how many times the engine started an attempt before the
	// claim (1 normally; 2 if it was paused because the TAP monitor had not
	// yet reported the link up when the daemon started the engine).
	Restarts int `json:"restarts"`
	// HookDelay split at the state log record that follows the BIND (to
	// announcing, or bound with one announcement), which the daemon writes
	// once the BIND step's outputs (address, route, state file) are done:
	// BindWork = BIND event -> that record, HookExec = that record -> the
	// hook running.
	BindWork float64 `json:"bind_work_ms"`
	HookExec float64 `json:"hook_exec_ms"`
	// LinkUp: process start to the TAP monitor reporting the link up.
	LinkUp float64 `json:"link_up_ms"`
}

// ClaimResult is what claim writes.
type ClaimResult struct {
	Mode string     `json:"mode"`
	Args []string   `json:"args"`
	Reps []ClaimRep `json:"reps"`
}

func claimMain(args []string) error {
	fs := flag.NewFlagSet("claim", flag.ContinueOnError)
	bin := fs.String("autoipd", "", "autoipd binary")
	iface := fs.String("iface", "", "TAP (existing, up) in the current network namespace")
	mode := fs.String("mode", "fast", "rfc, fast or wait")
	reps := fs.Int("reps", 3, "repetitions")
	work := fs.String("work", "", "work directory")
	out := fs.String("out", "", "JSON result file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, ok := claimModes[*mode]
	if !ok || *bin == "" || *iface == "" || *work == "" || *out == "" || *reps < 1 {
		return errors.New("need -autoipd, -iface, -mode rfc|fast|wait, -reps >= 1, -work and -out")
	}
	hook, err := hookPath()
	if err != nil {
		return err
	}
	res := ClaimResult{Mode: *mode, Args: m.args}
	modeIdx := map[string]int{"rfc": 1, "fast": 2, "wait": 3}[*mode]
	for i := 0; i < *reps; i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond) // let the previous daemon's TAP teardown settle
		}
		mac := acd.MAC{0x02, 0xb0, 0x00, byte(modeIdx), byte(os.Getpid()), byte(i + 1)}
		dir := filepath.Join(*work, fmt.Sprintf("claim-%s-%d", *mode, i+1))
		r, err := claimOnce(*bin, hook, *iface, dir, mac, *mode, m.args, m.qnx)
		if err != nil {
			return fmt.Errorf("%s rep %d: %w", *mode, i+1, err)
		}
		progress("claim %s %d/%d: %s in %.1f ms (scheduled %.1f ms, overhead %.1f ms: startup %.1f, timers %.1f, hook %.1f = bind work %.1f + hook exec %.1f; link up reported at %.1f ms; engine starts %d)",
			*mode, i+1, *reps, r.Addr, r.Measured, r.Scheduled, r.Overhead, r.Startup, r.TimerLate, r.HookDelay, r.BindWork, r.HookExec, r.LinkUp, r.Restarts)
		res.Reps = append(res.Reps, r)
	}
	return writeJSON(*out, res)
}

func claimOnce(bin, hook, iface, dir string, mac acd.MAC, mode string, extra []string, q autoip.QNXOptions) (ClaimRep, error) {
	r := ClaimRep{MAC: mac.String()}
	if err := os.RemoveAll(dir); err != nil {
		return r, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	hl, err := listenHook(filepath.Join(dir, "hook.sock"))
	if err != nil {
		return r, err
	}
	defer hl.close()
	stateDir := filepath.Join(dir, "state")
	args := append([]string{"-i", iface, "-state-dir", stateDir, "-mac", mac.String(), "-hook", hook, "-log-format", "json"}, extra...)
	timeout := 60 * time.Second

	var bind hookEvent
	var t0, tEnd time.Time
	daemonLog := filepath.Join(dir, "daemon.log")
	if mode == "wait" {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), hookSockEnv+"="+hl.path)
		cmd.Stderr = os.Stderr
		t0 = time.Now()
		outb, err := cmd.Output()
		tEnd = time.Now()
		if err != nil {
			return r, fmt.Errorf("autoipd -wait: %w", err)
		}
		r.Addr = strings.TrimSpace(string(outb))
		bind, err = hl.wait("BIND", timeout)
		pid := pidOf(bind)
		if pid > 0 {
			recordPID(pid)
			if serr := stopPID(pid); serr != nil && err == nil {
				err = serr
			}
		}
		if err != nil {
			return r, err
		}
		daemonLog = filepath.Join(stateDir, iface+".log")
	} else {
		d, start, err := startDaemon(bin, args, daemonLog, hl.path)
		if err != nil {
			return r, err
		}
		t0 = start
		bind, err = hl.wait("BIND", timeout)
		tEnd = bind.HookTime
		if serr := d.stop(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			return r, fmt.Errorf("%w (daemon log %s)", err, daemonLog)
		}
	}
	lg, err := parseDaemonLog(daemonLog)
	if err != nil {
		return r, err
	}
	if r.Addr == "" {
		r.Addr = lg.bindAddr
	}
	r.Restarts = lg.waitingStates
	sched, addr, err := scheduledClaim(mac, q, r.Restarts)
	if err != nil {
		return r, err
	}
	if addr.String() != lg.bindAddr {
		return r, fmt.Errorf("the daemon bound %s, the virtual-time engine %s: not the same engine run", lg.bindAddr, addr)
	}
	r.Measured = ms(tEnd.Sub(t0))
	r.Scheduled = ms(sched)
	r.Overhead = r.Measured - r.Scheduled
	r.Startup = ms(lg.engineStart.Sub(t0))
	r.TimerLate = ms(bind.EngineTime.Sub(lg.engineStart) - sched)
	r.HookDelay = ms(bind.HookTime.Sub(bind.EngineTime))
	if !lg.linkUp.IsZero() {
		r.LinkUp = ms(lg.linkUp.Sub(t0))
	}
	if !lg.boundState.IsZero() {
		r.BindWork = ms(lg.boundState.Sub(bind.EngineTime))
		r.HookExec = ms(bind.HookTime.Sub(lg.boundState))
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pidOf is the daemon's pid as the hook saw it (AUTOIPD_PID).
func pidOf(ev hookEvent) int { return ev.pid }

// stopPID sends SIGTERM to a daemon that is not our child (started by
// -wait) and waits up to 10 s for it to go.
func stopPID(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("autoipd (pid %d) did not stop within 10 s of SIGTERM; killed", pid)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// daemonLog is what claim needs from autoipd's JSON log.
type daemonLog struct {
	attached      time.Time // "autoip started": the client attached (the link may still be down)
	engineStart   time.Time // the first "state" record to waiting: PROBE_WAIT begins
	bindAddr      string    // the BIND record's addr
	waitingStates int       // state records "to":"waiting" before the BIND
	linkUp        time.Time // first "link state changed" up=true
	boundState    time.Time // the "state" record (to announcing or bound) after the BIND
}

func parseDaemonLog(path string) (daemonLog, error) {
	var lg daemonLog
	f, err := os.Open(path)
	if err != nil {
		return lg, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			To   string    `json:"to"`
			Addr string    `json:"addr"`
			Up   *bool     `json:"up"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // not a log record (an error message on stderr)
		}
		switch {
		case rec.Msg == "autoip started" && lg.attached.IsZero():
			lg.attached = rec.Time
		case rec.Msg == "state" && rec.To == "waiting" && lg.bindAddr == "":
			if lg.waitingStates == 0 {
				lg.engineStart = rec.Time
			}
			lg.waitingStates++
		case rec.Msg == "state" && (rec.To == "announcing" || rec.To == "bound") && lg.bindAddr != "" && lg.boundState.IsZero():
			lg.boundState = rec.Time
		case rec.Msg == "BIND" && lg.bindAddr == "":
			lg.bindAddr = rec.Addr
		case rec.Msg == "link state changed" && rec.Up != nil && *rec.Up && lg.linkUp.IsZero():
			lg.linkUp = rec.Time
		}
	}
	if err := sc.Err(); err != nil {
		return lg, err
	}
	if lg.engineStart.IsZero() {
		lg.engineStart = lg.attached
	}
	if lg.engineStart.IsZero() || lg.bindAddr == "" {
		return lg, fmt.Errorf("%s: no \"autoip started\" or no BIND record", path)
	}
	if lg.waitingStates == 0 {
		lg.waitingStates = 1
	}
	return lg, nil
}

// scheduledClaim runs autoip.Engine in virtual time as autoipd configures it
// (MAC mac, seed from the MAC, timing from q, no saved state, nothing on the
// wire) and returns when it binds, counted from Start, and the address.
// restarts > 1 replays a daemon whose engine was paused and resumed (link
// reported down, then up) at its start: every start draws PROBE_WAIT anew.
func scheduledClaim(mac acd.MAC, q autoip.QNXOptions, restarts int) (time.Duration, netip.Addr, error) {
	tm, linkUpDelay, err := q.Timing()
	if err != nil {
		return 0, netip.Addr{}, err
	}
	e, err := autoip.NewEngine(autoip.Config{HW: mac, Timing: tm, LinkUpDelay: linkUpDelay})
	if err != nil {
		return 0, netip.Addr{}, err
	}
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	e.SetRoutable(t0, false)
	e.Start(t0)
	for i := 1; i < restarts; i++ {
		e.SetLink(t0, false)
		e.SetLink(t0, true)
	}
	var outs []autoip.Output
	for steps := 0; steps < 10000; steps++ {
		outs = e.AppendOutputs(outs[:0])
		for _, o := range outs {
			if o.Kind == autoip.OutEvent && o.Event.Kind == autoip.EventBind {
				return o.Event.Time.Sub(t0), o.Event.Addr, nil
			}
		}
		dl, ok := e.Deadline()
		if !ok {
			return 0, netip.Addr{}, fmt.Errorf("virtual engine idle in state %v without binding", e.State())
		}
		e.HandleTimer(dl)
	}
	return 0, netip.Addr{}, errors.New("virtual engine did not bind in 10000 steps")
}

func scheduleMain(args []string) error {
	fs := flag.NewFlagSet("schedule", flag.ContinueOnError)
	macS := fs.String("mac", "02:b0:00:00:00:01", "MAC")
	q := autoip.DefaultQNXOptions()
	fs.IntVar(&q.DelayMS, "delay", q.DelayMS, "delay= in ms")
	fs.IntVar(&q.Probes, "p", q.Probes, "probes")
	fs.IntVar(&q.Announces, "a", q.Announces, "announcements")
	fs.IntVar(&q.WaitSeconds, "w", q.WaitSeconds, "announce wait, s")
	restarts := fs.Int("restarts", 1, "engine starts before the claim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mac, err := acd.ParseMAC(*macS)
	if err != nil {
		return err
	}
	d, a, err := scheduledClaim(mac, q, *restarts)
	if err != nil {
		return err
	}
	fmt.Printf("%s binds %s after %s (%s ms)\n", mac, a, d, strconv.FormatFloat(ms(d), 'f', 3, 64))
	return nil
}
