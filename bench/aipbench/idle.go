package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/autoip-project/autoip/internal/daemon"
)

// fastArgs are the daemon settings of the idle measurement (the fastest
// documented ones, so that the claim takes about a second).
var fastArgs = []string{"-o", "delay=1", "-p", "1", "-a", "1", "-w", "1"}

// ProcStatus is a snapshot of /proc/PID/status (kB) and thread count.
type ProcStatus struct {
	VmRSS   int64 `json:"vmrss_kb"`
	VmHWM   int64 `json:"vmhwm_kb"`
	RssAnon int64 `json:"rssanon_kb"`
	RssFile int64 `json:"rssfile_kb"`
	Threads int64 `json:"threads"`
}

// ProcCPU is the CPU a process has used: utime+stime from /proc/PID/stat
// (clock ticks, every thread, living or dead) and, summed over the living
// threads, the on-CPU nanoseconds of /proc/PID/task/*/schedstat and the
// context switches of /proc/PID/task/*/status.
type ProcCPU struct {
	Ticks      int64 `json:"ticks"`
	SchedNS    int64 `json:"sched_ns"`
	Voluntary  int64 `json:"voluntary_ctxt_switches"`
	Involuntar int64 `json:"nonvoluntary_ctxt_switches"`
}

// IdleResult is what idle writes.
type IdleResult struct {
	Args       []string    `json:"args"`
	SettleS    float64     `json:"settle_s"`
	IdleS      float64     `json:"idle_s"`
	ClkTck     int64       `json:"clk_tck"`
	AtSettle   ProcStatus  `json:"status_after_settle"`
	Baseline   ProcStatus  `json:"baseline_status"`      // aipbench-hook -idle, same settle time
	Alt        *ProcStatus `json:"alt_status,omitempty"` // -alt (another build of autoipd), same settle time
	AtEnd      ProcStatus  `json:"status_after_idle"`
	CPUBefore  ProcCPU     `json:"cpu_before"`
	CPUAfter   ProcCPU     `json:"cpu_after"`
	CheckEvery string      `json:"check_interval"`
	// Detect: after the idle period, the TAP is taken down, brought up,
	// deleted and re-created; each is the time from just before the `ip`
	// command to the daemon's "link state changed" log record.
	Detect []DetectRep `json:"detect,omitempty"`
	// Investigation (RSS above the limit, or asked for).
	Variants []RSSVariant `json:"variants,omitempty"`
	MemStats *MemStats    `json:"memstats,omitempty"`
}

// DetectRep is one link change and how long the daemon took to notice it.
type DetectRep struct {
	Op string  `json:"op"`
	MS float64 `json:"ms"`
}

// RSSVariant is the daemon's RSS with a different Go runtime setting.
type RSSVariant struct {
	Env    string     `json:"env"`
	Status ProcStatus `json:"status"`
}

// MemStats is the Go runtime's view of the daemon's memory, measured by
// running internal/daemon in-process (aipbench memstats), bound and idle.
type MemStats struct {
	HeapInuseKB  uint64     `json:"heap_inuse_kb"`
	HeapSysKB    uint64     `json:"heap_sys_kb"`
	HeapReleased uint64     `json:"heap_released_kb"`
	StackInuseKB uint64     `json:"stack_inuse_kb"`
	OtherSysKB   uint64     `json:"other_sys_kb"` // MSpan, MCache, GC metadata, buckets, other
	SysKB        uint64     `json:"sys_kb"`
	Goroutines   int        `json:"goroutines"`
	Status       ProcStatus `json:"status"` // of the aipbench process (bigger binary)
}

func idleMain(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	bin := fs.String("autoipd", "", "autoipd binary")
	iface := fs.String("iface", "", "TAP (existing, up) in the current network namespace")
	settle := fs.Duration("settle", 5*time.Second, "idle time after the claim before RSS is read")
	idle := fs.Duration("idle", 60*time.Second, "idle time over which CPU is measured")
	work := fs.String("work", "", "work directory")
	out := fs.String("out", "", "JSON result file")
	limitKB := fs.Int64("rss-limit-kb", 10240, "investigate when VmRSS exceeds this")
	investigate := fs.String("investigate", "auto", "auto (when RSS exceeds the limit), always or never")
	alt := fs.String("alt", "", "another autoipd build whose RSS to read as well (e.g. CGO_ENABLED=0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *iface == "" || *work == "" || *out == "" {
		return errors.New("need -autoipd, -iface, -work and -out")
	}
	clk := int64(100) // USER_HZ; run.sh passes getconf CLK_TCK
	if v, err := strconv.ParseInt(os.Getenv("CLK_TCK"), 10, 64); err == nil && v > 0 {
		clk = v
	}
	res := IdleResult{Args: fastArgs, SettleS: settle.Seconds(), IdleS: idle.Seconds(), ClkTck: clk, CheckEvery: "1 s"}

	dir := filepath.Join(*work, "idle")
	d, err := startBound(*bin, *iface, dir, nil)
	if err != nil {
		return err
	}
	pid := d.pid()
	hook, err := hookPath()
	if err != nil {
		d.stop()
		return err
	}
	base := exec.Command(hook, "-idle")
	if err := base.Start(); err != nil {
		d.stop()
		return err
	}
	recordPID(base.Process.Pid)
	progress("idle: daemon (pid %d) bound; settling %v", pid, *settle)
	time.Sleep(*settle)
	res.Baseline, err = readStatus(base.Process.Pid)
	base.Process.Kill()
	base.Wait()
	if err != nil {
		d.stop()
		return err
	}
	if res.AtSettle, err = readStatus(pid); err != nil {
		d.stop()
		return err
	}
	if res.CPUBefore, err = readCPU(pid); err != nil {
		d.stop()
		return err
	}
	progress("idle: VmRSS %d kB; measuring CPU over %v idle", res.AtSettle.VmRSS, *idle)
	time.Sleep(*idle)
	res.CPUAfter, err = readCPU(pid)
	if err == nil {
		res.AtEnd, err = readStatus(pid)
	}
	if err == nil {
		progress("idle: link changes: down, up, delete, re-create")
		res.Detect, err = detectChanges(*iface, filepath.Join(dir, "daemon.log"))
	}
	if serr := d.stop(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	if d.exited() && res.CPUAfter.Ticks == 0 && res.CPUAfter.SchedNS == 0 {
		return errors.New("the daemon's CPU counters read as zero")
	}

	if *alt != "" {
		time.Sleep(200 * time.Millisecond)
		ad, err := startBound(*alt, *iface, filepath.Join(*work, "idle-alt"), nil)
		if err != nil {
			return err
		}
		time.Sleep(*settle)
		st, err := readStatus(ad.pid())
		if serr := ad.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		res.Alt = &st
	}
	if *investigate == "always" || *investigate == "auto" && res.AtSettle.VmRSS > *limitKB {
		progress("idle: investigating RSS (%d kB, limit %d kB)", res.AtSettle.VmRSS, *limitKB)
		for _, env := range []string{"GOGC=25", "GOMEMLIMIT=4MiB", "GODEBUG=madvdontneed=1"} {
			time.Sleep(200 * time.Millisecond)
			vd, err := startBound(*bin, *iface, filepath.Join(*work, "idle-"+strings.ToLower(strings.Split(env, "=")[0])), []string{env})
			if err != nil {
				return err
			}
			time.Sleep(*settle)
			st, err := readStatus(vd.pid())
			if serr := vd.stop(); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			res.Variants = append(res.Variants, RSSVariant{Env: env, Status: st})
		}
		time.Sleep(200 * time.Millisecond)
		ms, err := runMemStats(*iface, filepath.Join(*work, "idle-memstats"), *settle)
		if err != nil {
			return err
		}
		res.MemStats = ms
	}
	return writeJSON(*out, res)
}

// startBound starts the daemon with fastArgs and waits for its BIND hook.
func startBound(bin, iface, dir string, env []string) (*daemonProc, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	hook, err := hookPath()
	if err != nil {
		return nil, err
	}
	hl, err := listenHook(filepath.Join(dir, "hook.sock"))
	if err != nil {
		return nil, err
	}
	defer hl.close()
	args := append([]string{"-i", iface, "-state-dir", filepath.Join(dir, "state"), "-hook", hook, "-log-format", "json"}, fastArgs...)
	d, _, err := startDaemon(bin, args, filepath.Join(dir, "daemon.log"), hl.path, env...)
	if err != nil {
		return nil, err
	}
	if _, err := hl.wait("BIND", 60*time.Second); err != nil {
		d.stop()
		return nil, fmt.Errorf("%w (log %s)", err, filepath.Join(dir, "daemon.log"))
	}
	return d, nil
}

// detectChanges takes the TAP iface (in this namespace) down, up, deletes
// and re-creates it (up), and returns how long after the start of each
// `ip` command the daemon logged the link state change.
func detectChanges(iface, logPath string) ([]DetectRep, error) {
	ops := []struct {
		op   string
		up   bool
		cmds [][]string
	}{
		{"down", false, [][]string{{"link", "set", iface, "down"}}},
		{"up", true, [][]string{{"link", "set", iface, "up"}}},
		{"deleted", false, [][]string{{"link", "del", iface}}},
		{"re-created", true, [][]string{{"tuntap", "add", "dev", iface, "mode", "tap"}, {"link", "set", iface, "up"}}},
	}
	var out []DetectRep
	for _, o := range ops {
		time.Sleep(300 * time.Millisecond) // settle: the previous change is fully done
		n, _, err := linkChanges(logPath)
		if err != nil {
			return out, err
		}
		t0 := time.Now()
		for _, c := range o.cmds {
			if b, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
				return out, fmt.Errorf("ip %s: %v: %s", strings.Join(c, " "), err, b)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			m, last, err := linkChanges(logPath)
			if err != nil {
				return out, err
			}
			if m > n && last.up == o.up {
				out = append(out, DetectRep{Op: o.op, MS: ms(last.at.Sub(t0))})
				break
			}
			if time.Now().After(deadline) {
				return out, fmt.Errorf("link %s: the daemon logged no change within 5 s", o.op)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return out, nil
}

type linkChange struct {
	at time.Time
	up bool
}

// linkChanges counts the daemon's "link state changed" records and returns
// the last.
func linkChanges(logPath string) (int, linkChange, error) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0, linkChange{}, err
	}
	n, last := 0, linkChange{}
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Up   *bool     `json:"up"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "link state changed" && rec.Up != nil {
			n++
			last = linkChange{at: rec.Time, up: *rec.Up}
		}
	}
	return n, last, nil
}

// runMemStats runs `aipbench memstats` (internal/daemon in-process) and
// reads its result.
func runMemStats(iface, dir string, settle time.Duration) (*MemStats, error) {
	self, err := selfPath()
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "memstats.json")
	cmd := exec.Command(self, "memstats", "-iface", iface, "-dir", dir, "-settle", settle.String(), "-out", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	recordPID(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("aipbench memstats: %w", err)
	}
	var ms MemStats
	return &ms, readJSON(out, &ms)
}

// memStatsMain runs the daemon in this process with fastArgs, waits until
// it is bound and settle has passed, and writes runtime.MemStats.
func memStatsMain(args []string) error {
	fs := flag.NewFlagSet("memstats", flag.ContinueOnError)
	iface := fs.String("iface", "", "TAP")
	dir := fs.String("dir", "", "work directory")
	settle := fs.Duration("settle", 5*time.Second, "idle time after the claim")
	out := fs.String("out", "", "JSON result file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hook, err := hookPath()
	if err != nil {
		return err
	}
	hl, err := listenHook(filepath.Join(*dir, "hook.sock"))
	if err != nil {
		return err
	}
	defer hl.close()
	os.Setenv(hookSockEnv, hl.path) // the hooks inherit it
	logf, err := os.Create(filepath.Join(*dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dargs := append([]string{"-i", *iface, "-state-dir", filepath.Join(*dir, "state"), "-hook", hook}, fastArgs...)
	code := make(chan int, 1)
	go func() { code <- daemon.Run(ctx, dargs, io.Discard, logf) }()
	if _, err := hl.wait("BIND", 60*time.Second); err != nil {
		return err
	}
	time.Sleep(*settle)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	st, err := readStatus(os.Getpid())
	if err != nil {
		return err
	}
	kb := func(v uint64) uint64 { return v / 1024 }
	res := MemStats{
		HeapInuseKB: kb(m.HeapInuse), HeapSysKB: kb(m.HeapSys), HeapReleased: kb(m.HeapReleased),
		StackInuseKB: kb(m.StackInuse), SysKB: kb(m.Sys),
		OtherSysKB: kb(m.MSpanSys + m.MCacheSys + m.BuckHashSys + m.GCSys + m.OtherSys),
		Goroutines: runtime.NumGoroutine(), Status: st,
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			return fmt.Errorf("in-process daemon exited %d", c)
		}
	case <-time.After(15 * time.Second):
		return errors.New("in-process daemon did not stop")
	}
	return writeJSON(*out, res)
}

// readStatus reads VmRSS, VmHWM, RssAnon, RssFile and Threads.
func readStatus(pid int) (ProcStatus, error) {
	var st ProcStatus
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.VmRSS = n
		case "VmHWM":
			st.VmHWM = n
		case "RssAnon":
			st.RssAnon = n
		case "RssFile":
			st.RssFile = n
		case "Threads":
			st.Threads = n
		}
	}
	if st.VmRSS == 0 {
		return st, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return st, nil
}

// readCPU reads utime+stime of the process and sums schedstat and context
// switches over its threads.
func readCPU(pid int) (ProcCPU, error) {
	var c ProcCPU
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return c, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return c, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return c, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	c.Ticks = ut + st
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		base := fmt.Sprintf("/proc/%d/task/%s/", pid, t.Name())
		if b, err := os.ReadFile(base + "schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				c.SchedNS += n
			}
		}
		if b, err := os.ReadFile(base + "status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				k, v, _ := strings.Cut(line, ":")
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switch k {
				case "voluntary_ctxt_switches":
					c.Voluntary += n
				case "nonvoluntary_ctxt_switches":
					c.Involuntar += n
				}
			}
		}
	}
	return c, nil
}
