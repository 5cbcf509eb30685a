package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// Run runs autoipd with args (without the program name), writing the
// address (-wait) or the status (-status) to stdout and logs and errors to
// stderr, and returns the exit code. Cancelling ctx stops the daemon the
// way SIGTERM does.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return ExitOK
	}
	if err != nil {
		printError(stderr, logFormatIn(args), err.Error(), "hint", "Run autoipd -h for the flags and their ranges.")
		return ExitUsage
	}
	switch {
	case cfg.Status:
		return runStatus(cfg, stdout, stderr)
	case cfg.Alias.IsValid() || cfg.Delete.IsValid():
		return runControl(cfg, stdout, stderr)
	case cfg.Wait && os.Getenv(envWaitChild) == "":
		return runWait(ctx, cfg, args, stdout, stderr)
	}
	return runDaemon(ctx, cfg, stderr)
}

// envWaitChild marks the background daemon started by -wait.
const envWaitChild = "AUTOIPD_WAIT_CHILD"

// Paths of the per-interface files in the state directory.
func (cfg *Config) path(suffix string) string {
	return filepath.Join(cfg.StateDir, cfg.Iface+suffix)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if cfg.Verbose {
		opts.Level = slog.LevelDebug
	}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("iface", cfg.Iface)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// noAnswer says why the status socket gave no answer: a socket (or state
// directory) this user may not use says nothing about whether a daemon
// runs, and only root and the daemon's user may ask.
func noAnswer(cfg *Config, sock string, err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Sprintf("permission denied on the status socket %s of interface %s: only root and the daemon's user may ask autoipd (a daemon may well be running); you are %s: %v",
			sock, cfg.Iface, describeUID(os.Geteuid()), err)
	}
	return fmt.Sprintf("no autoipd answers for interface %s (status socket %s): %v", cfg.Iface, sock, err)
}

// runStatus implements -status.
func runStatus(cfg *Config, stdout, stderr io.Writer) int {
	sock := cfg.path(".sock")
	raw, _, err := queryStatus(sock, 5*time.Second)
	if err != nil {
		printError(stderr, cfg.LogFormat, noAnswer(cfg, sock, err))
		return ExitFailure
	}
	stdout.Write(raw)
	return ExitOK
}

// runControl implements -alias and -delete: it asks the running daemon.
func runControl(cfg *Config, stdout, stderr io.Writer) int {
	req := ControlRequest{Op: "alias", Prefix: cfg.Alias.String()}
	if cfg.Delete.IsValid() {
		req = ControlRequest{Op: "delete", Addr: cfg.Delete.String()}
	}
	sock := cfg.path(".sock")
	r, err := sendControl(sock, req, 5*time.Second)
	if err != nil {
		printError(stderr, cfg.LogFormat, noAnswer(cfg, sock, err))
		return ExitFailure
	}
	if !r.OK {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("autoipd on %s refused %s: %s", cfg.Iface, req.Op, r.Error))
		return ExitFailure
	}
	if req.Op == "alias" {
		fmt.Fprintf(stdout, "%s: %v is being probed; autoipd -status -i %s shows when it is configured\n", cfg.Iface, cfg.Alias, cfg.Iface)
	} else {
		fmt.Fprintf(stdout, "%s: %v deleted\n", cfg.Iface, cfg.Delete)
	}
	return ExitOK
}

// runWait implements -wait: it starts the daemon in the background (this
// program again, in its own session, logging to STATE-DIR/IFACE.log),
// waits until it holds an address, prints the address and returns. The
// address lives in the daemon's netstack, so the daemon must outlive us.
func runWait(ctx context.Context, cfg *Config, args []string, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("-wait: cannot find my own executable: %v", err))
		return ExitFailure
	}
	if _, err := prepareStateDir(cfg.StateDir); err != nil {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("state directory: %v", err))
		return ExitFailure
	}
	logPath := cfg.path(".log")
	logf, err := openRegular(logPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err == nil {
		if err = makePrivate(logf, logPath); err != nil {
			logf.Close()
		}
	}
	if err != nil {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("-wait: daemon log: %v", err))
		return ExitFailure
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("-wait: %v", err))
		return ExitFailure
	}
	defer devnull.Close()

	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envWaitChild+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		printError(stderr, cfg.LogFormat, fmt.Sprintf("-wait: start daemon: %v", err))
		return ExitFailure
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	showLog := func() { // through our fd: the path may name something else by now
		io.Copy(stderr, io.NewSectionReader(logf, logStart, 64<<10))
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	var deadline <-chan time.Time
	if cfg.WaitTimeout > 0 {
		t := time.NewTimer(cfg.WaitTimeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	sock := cfg.path(".sock")
	for {
		select {
		case <-exited:
			showLog()
			code := cmd.ProcessState.ExitCode()
			if code <= 0 {
				code = ExitFailure
			}
			printError(stderr, cfg.LogFormat, fmt.Sprintf("the daemon for %s exited (code %d) before it held an address", cfg.Iface, code))
			return code
		case <-deadline:
			printError(stderr, cfg.LogFormat, fmt.Sprintf("no address on %s within %v; the daemon (pid %d) keeps trying (log: %s)", cfg.Iface, cfg.WaitTimeout, cmd.Process.Pid, logPath))
			return ExitWaitTimeout
		case sig := <-sigc:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			printError(stderr, cfg.LogFormat, fmt.Sprintf("interrupted by %v while waiting; stopped the daemon (pid %d)", sig, cmd.Process.Pid))
			return ExitFailure
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			printError(stderr, cfg.LogFormat, fmt.Sprintf("%v while waiting; stopped the daemon (pid %d)", ctx.Err(), cmd.Process.Pid))
			return ExitFailure
		case <-tick.C:
			_, r, err := queryStatus(sock, time.Second)
			if err == nil && r.PID == cmd.Process.Pid && r.Configured != "" {
				fmt.Fprintln(stdout, r.Configured)
				return ExitOK
			}
		}
	}
}

// daemon is one running autoipd.
type daemon struct {
	cfg     *Config
	log     *slog.Logger
	started time.Time
	mac     acd.MAC

	link   *tap.Link
	wire   *wireTap
	st     *stack.Stack
	client *stack.Client
	hooks  *hookRunner
	state  *stateFile
	store  *persist.Async // state, written off the protocol path
	gate   *openGate      // the client's store: saves held back until the TAP is open

	startup   *startupWatch
	lock      *ifaceLock
	srv       *statusServer
	ifctl     *ifControl
	repairMu  sync.Mutex
	repairErr string // last repairStateDir error logged
}

// runDaemon runs the daemon in the foreground until ctx ends or a signal
// stops it.
func runDaemon(ctx context.Context, cfg *Config, stderr io.Writer) int {
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)

	log := newLogger(cfg, stderr)
	// A fatal error is logged once, in the log's format.
	fail := func(code int, err error) int {
		log.Error(err.Error(), "exit", code)
		return code
	}
	for _, n := range cfg.Notices {
		log.Warn(n)
	}
	d := &daemon{cfg: cfg, log: log, started: time.Now(), startup: watchStartup(ctx, sigc, log)}
	code, err := d.startAll()
	reason := d.startup.end()
	if err != nil {
		d.shutdown()
		d.lock.release()
		return fail(code, err)
	}
	defer d.lock.release()
	guardStop, guardDone := make(chan struct{}), make(chan struct{})
	interval := cfg.CheckInterval
	if interval == 0 {
		interval = tap.DefaultCheckInterval
	}
	go d.guardStateDir(interval, guardStop, guardDone)

	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "context: " + ctx.Err().Error()
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				d.reannounce()
				continue
			}
			reason = sig.String()
		}
	}
	close(guardStop)
	<-guardDone
	d.repairStateDir() // so that the last save has a directory to go to
	d.stop(reason)
	d.srv.close()
	// A second SIGINT/SIGTERM stops waiting for hooks (the state is saved).
	hctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			select {
			case sig := <-sigc:
				if sig != syscall.SIGHUP {
					cancel()
					return
				}
			case <-hctx.Done():
				return
			}
		}
	}()
	d.shutdownHooks(hctx)
	cancel()
	d.shutdown()
	if st, err := d.state.lost(); err != nil {
		log.Error("state not saved at stop: "+err.Error(), "lost", describeLost(st), "file", d.state.path, "exit", ExitFailure)
		return ExitFailure
	}
	log.Info("autoipd stopped", "reason", reason)
	return ExitOK
}

// startAll runs the start-up stages: state directory, lock (R25: before
// anything touches the TAP), start, status socket. On failure it returns
// the exit code and the error, which names what failed.
func (d *daemon) startAll() (int, error) {
	cfg, log := d.cfg, d.log
	d.startup.enter("state directory")
	dir, err := prepareStateDir(cfg.StateDir)
	if err != nil {
		return ExitFailure, err
	}
	if abs, _ := filepath.Abs(cfg.StateDir); dir != abs {
		log.Info("the state directory is a link; using the directory it leads to", "state_dir", cfg.StateDir, "real", dir)
	}
	cfg.StateDir = dir
	d.startup.enter("lock")
	lock, err := lockIface(cfg.path(".lock"), cfg.Iface)
	var locked *LockedError
	if errors.As(err, &locked) {
		return ExitLocked, err
	}
	if err != nil {
		return ExitFailure, err
	}
	d.lock = lock
	if h := lock.displaced; h.pid > 0 {
		log.Warn("the lock file was held by a process of another user, which cannot be an autoipd of ours: replaced it with a 0600 one",
			"lock", lock.path, "holder_pid", h.pid, "uid", h.uid)
	}
	if err := d.start(); err != nil {
		var busy *TAPBusyError
		if errors.As(err, &busy) {
			return ExitLocked, err
		}
		return ExitFailure, err
	}
	d.startup.enter("status socket")
	srv, err := listenStatus(cfg.path(".sock"), d.report, d.handleControl, log)
	if err != nil {
		d.stop("status socket failed")
		return ExitFailure, err
	}
	d.srv = srv
	return ExitOK, nil
}

// describeLost says what a failed final save loses.
func describeLost(st autoip.SavedState) string {
	var lost []string
	if st.Addr.IsValid() {
		lost = append(lost, "the last address "+st.Addr.String()+" (the next start will not try it first)")
	}
	if st.Conflicts > 0 || !st.LastAttempt.IsZero() {
		lost = append(lost, fmt.Sprintf("the conflict count (%d) and the time of the last attempt (rate limiting will not carry over the restart)", st.Conflicts))
	}
	if len(lost) == 0 {
		return "nothing the next start needs (no address held, no conflicts)"
	}
	return strings.Join(lost, "; ")
}

// kernelMAC returns the MAC of the kernel side of interface name, or zero.
func kernelMAC(name string) acd.MAC {
	var m acd.MAC
	ifi, err := net.InterfaceByName(name)
	if err == nil && len(ifi.HardwareAddr) == 6 {
		copy(m[:], ifi.HardwareAddr)
	}
	return m
}

// start sets everything up: MAC, TAP link, capture, hooks, stack, client,
// static addresses.
func (d *daemon) start() error {
	cfg, log := d.cfg, d.log
	d.startup.enter("MAC")
	kmac := kernelMAC(cfg.Iface)
	storeMACAfterTAP := false
	switch {
	case !cfg.MAC.IsZero():
		d.mac = cfg.MAC
		if d.mac == kmac {
			return fmt.Errorf("-mac %v is the kernel TAP's own MAC; the netstack needs a MAC of its own", d.mac)
		}
	default:
		m, found, err := loadMAC(cfg.path(".mac"), kmac)
		if err == nil && !found {
			m, err = newMAC(kmac)
			storeMACAfterTAP = true // not before we know the TAP is ours
		}
		if err != nil {
			return err
		}
		d.mac = m
	}
	if cfg.Hook != "" {
		path, err := checkHook(cfg.Hook)
		switch {
		case errors.Is(err, errHookMissing):
			log.Warn("hook is not an executable file (yet); it will be tried at each event anyway", "hook", cfg.Hook, "err", err)
		case err != nil:
			return err
		}
		d.hooks = newHookRunner(path, cfg.Iface, cfg.HookTimeout, log)
	}

	d.startup.enter("TAP")
	ifctl, err := newIfControl()
	if err != nil {
		return err
	}
	d.ifctl = ifctl
	_, existed, _ := ifctl.flags(cfg.Iface)
	// The TAP is opened last, once the netstack is built and the client
	// attached (waiting for the link): the kernel marks a TAP running a few
	// ms after a reader attaches, and the engine starts probing right then,
	// from the link-state report alone, not after the rest of the start-up
	// (which, with many daemons starting at once on a small machine, takes
	// tens of ms). Until the open has worked, the client's saves are held
	// back and its events run no hook (openGate), so that a daemon refused
	// the TAP leaves nothing behind.
	link, err := tap.NewLink(tap.LinkConfig{
		Device:        tap.Config{Name: cfg.Iface, Create: cfg.Create},
		MAC:           tcpip.LinkAddress(d.mac[:]),
		CheckInterval: cfg.CheckInterval,
		DeferOpen:     true,
		OnLinkChange:  d.onLinkChange,
		Logger:        log,
	})
	if err != nil {
		return fmt.Errorf("TAP %s: %w", cfg.Iface, err)
	}
	d.link = link
	if k := kernelMAC(cfg.Iface); !k.IsZero() && k == d.mac {
		return fmt.Errorf("the netstack MAC %v equals the kernel TAP's MAC; give another -mac or remove %s", d.mac, cfg.path(".mac"))
	}

	var ep gvstack.LinkEndpoint = link.Endpoint()
	d.startup.enter("pcap")
	if cfg.Pcap != "" || cfg.Verbose {
		var w io.Writer
		if cfg.Pcap != "" {
			f, err := openPcap(cfg.Pcap)
			if err != nil {
				return fmt.Errorf("-pcap: %w", err)
			}
			w = &closeOnceFile{f: f}
		}
		wt, err := newWireTap(ep, w, log)
		if err != nil {
			return fmt.Errorf("-pcap %s: %w", cfg.Pcap, err)
		}
		d.wire, ep = wt, wt
	}

	timing, linkUpDelay, err := cfg.QNX.Timing()
	if err != nil {
		return err
	}
	d.startup.enter("netstack and saved state")
	// The daemon owns the stack: ARP requests for none of its addresses
	// need not reach netstack (see stack.Shim.SetARPFastPath).
	st, err := stack.New(stack.Options{Link: ep, NICName: cfg.Iface, ARPFastPath: true})
	if err != nil {
		return fmt.Errorf("netstack: %w", err)
	}
	d.st = st
	for _, p := range cfg.Addrs {
		log.Info("static address: probing before it is configured (RFC 5227)", "addr", p.String())
	}
	// Saves go through a writer goroutine: an fsync on a slow disk must not
	// hold up conflict handling or probes.
	d.state = newStateFile(cfg.path(".state.json"), log)
	d.store = persist.NewAsync(d.state, func(err error) {
		log.Error("saving state failed", "err", err)
	})
	d.gate = &openGate{inner: d.store}
	log.Info("autoipd starting", "pid", os.Getpid(), "mac", d.mac.String(), "initial", addrString(cfg.Initial),
		"defend", cfg.Defend.String(), "yield_to_routable", cfg.YieldToRoutable, "route", cfg.Route,
		"probes", timing.ProbeNum, "probe_min", timing.ProbeMin, "probe_max", timing.ProbeMax, "probe_wait", timing.ProbeWait,
		"announces", timing.AnnounceNum, "announce_wait", timing.AnnounceWait, "link_up_delay", linkUpDelay,
		"state_dir", cfg.StateDir, "create", cfg.Create)

	client, err := stack.Attach(st.GVisor(), st.NIC(), st.Shim(), stack.ClientConfig{
		Engine: autoip.Config{
			Seed:            cfg.Seed,
			Initial:         cfg.Initial,
			Timing:          timing,
			LinkUpDelay:     linkUpDelay,
			Defend:          cfg.Defend,
			YieldToRoutable: cfg.YieldToRoutable,
		},
		Store:          d.gate,
		Route:          cfg.Route,
		LinkState:      link.Endpoint(), // the pcap tap may hide it from the shim
		Static:         cfg.Addrs,
		DHCP:           d.dhcpConfig(),
		OnEvent:        d.onEvent,
		OnState:        d.onState,
		OnAddressEvent: d.onAddrEvent,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	d.client = client

	d.startup.enter("TAP open")
	err = link.Open()
	if errors.Is(err, syscall.EBUSY) {
		return &TAPBusyError{Iface: cfg.Iface, Holders: tapHolders(cfg.Iface), Err: err}
	}
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return fmt.Errorf("TAP %s: %w (unprivileged, autoipd needs /dev/net/tun usable by its user and a TAP made for it: ip tuntap add dev %s mode tap user %d)",
			cfg.Iface, err, cfg.Iface, os.Geteuid())
	}
	if err != nil {
		return fmt.Errorf("TAP %s: %w", cfg.Iface, err)
	}
	d.gate.open()
	d.explainLink(cfg.Create && !existed)
	if k := kernelMAC(cfg.Iface); !k.IsZero() && k == d.mac {
		return fmt.Errorf("the netstack MAC %v equals the kernel TAP's MAC; give another -mac or remove %s", d.mac, cfg.path(".mac"))
	}
	if storeMACAfterTAP {
		if err := storeMAC(cfg.path(".mac"), d.mac); err != nil {
			return err
		}
		log.Info("generated the netstack's MAC", "mac", d.mac.String(), "file", cfg.path(".mac"))
	}
	return nil
}

// onLinkChange is the TAP monitor's callback; the client gets the same
// reports through the link's WatchLinkState.
func (d *daemon) onLinkChange(up bool) {
	d.log.Info("link", "up", up)
}

// onEvent is the client's OnEvent: it queues the hook and never blocks.
func (d *daemon) onEvent(ev autoip.Event) {
	name := hookEvent(ev)
	if name == "" || d.hooks == nil {
		return
	}
	call := hookCall{
		event: name,
		addr:  addrString(ev.Addr),
		env:   hookEnv(name, d.cfg.Iface, d.mac.String(), ev),
	}
	d.gate.whenOpen(func() { d.hooks.enqueue(call) })
}

// onState logs every change of the engine's state (the client calls it;
// nothing polls).
func (d *daemon) onState(from, to autoip.State, addr netip.Addr) {
	d.log.Info("state", "from", from.String(), "to", to.String(), "addr", addrString(addr), "link_up", d.link.Up())
	if to == autoip.StateSuspended {
		d.log.Warn("not claiming a link-local address: " + d.suspendedReason(nil, nil))
	}
}

// reannounce handles SIGHUP.
func (d *daemon) reannounce() {
	if err := d.client.Reannounce(); err != nil {
		d.log.Info("SIGHUP: nothing to re-announce", "state", d.client.Status().State.String(), "err", err)
		return
	}
	d.log.Info("SIGHUP: address re-added (if it was removed) and re-announced", "addr", addrString(d.client.Status().Configured))
}

// stop withdraws the address, saves state and reports STOP (R26).
func (d *daemon) stop(reason string) {
	d.log.Info("stopping: withdrawing the address", "reason", reason)
	if d.client != nil {
		_ = d.client.Close()
	}
	if d.store != nil {
		_ = d.store.Close() // the STOP state is on disk before we go on
	}
}

func (d *daemon) shutdownHooks(ctx context.Context) {
	if d.hooks != nil {
		d.hooks.close(ctx)
	}
}

// shutdown releases whatever start set up, in reverse order. It is safe
// after a partial start.
func (d *daemon) shutdown() {
	if d.client != nil {
		_ = d.client.Close()
	}
	if d.store != nil {
		_ = d.store.Close()
	}
	if d.st != nil {
		_ = d.st.Close()
	}
	if d.link != nil {
		if err := d.link.Close(); err != nil {
			d.log.Debug("closing the TAP", "err", err)
		}
	}
	if d.wire != nil {
		if c, ok := d.wire.out.(io.Closer); ok {
			if err := c.Close(); err != nil {
				d.log.Warn("closing the pcap file", "err", err)
			}
		}
	}
	if d.hooks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.HookTimeout+time.Second)
		d.hooks.close(ctx)
		cancel()
	}
	d.ifctl.close()
}

// report builds the status report.
func (d *daemon) report() StatusReport {
	var captured uint64
	if d.wire != nil {
		captured = d.wire.captured()
	}
	seed := d.cfg.Seed
	if seed == 0 {
		seed = autoip.SeedFromMAC(d.mac)
	}
	st := d.client.Status()
	r := buildReport(d.cfg.Iface, d.started, d.mac.String(), seed, st, d.link.Stats(), d.link.Up(), captured)
	r.DHCP, r.Held = st.DHCP, st.Held
	as := d.client.Addresses()
	r.Addresses = addressReports(as)
	switch r.State {
	case autoip.StateSuspended.String():
		r.Reason = d.suspendedReason(&st, as)
	case autoip.StateLinkDown.String():
		r.Reason = d.ifctl.linkReason(d.cfg.Iface)
	}
	return r
}

// closeOnceFile is the pcap file: writes after Close fail quietly (the
// wireTap then stops capturing) instead of racing with a closed fd.
type closeOnceFile struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func (c *closeOnceFile) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, os.ErrClosed
	}
	return c.f.Write(b)
}

func (c *closeOnceFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.f.Close()
}
