// Command autoip-sim runs a deterministic simulation of many AutoIP hosts
// (real gVisor netstacks with the project's engine) on one Ethernet
// segment, with faults, and reports what happened (package sim).
//
// Usage:
//
//	autoip-sim [flags]                      a boot storm described by flags
//	autoip-sim -scenario FILE [flags]       a scenario file (JSON, see package sim/scenario)
//	autoip-sim -tap IFACE [flags]           the same, in real time, on a real segment
//
// Examples:
//
//	autoip-sim -hosts 10000 -report json -perf
//	autoip-sim -hosts 8 -same-initial 169.254.7.7 -svg run.svg -pcap run.pcap
//	autoip-sim -scenario sim/testdata/scenarios/partition-merge.json -trace - -trace-hosts 0,1
//
// The same flags and seed always give the same report, pcap, trace and
// picture (except the -perf figures). The exit status is 0 when the run
// succeeded and every invariant and expectation held, 1 when one failed
// (or the run itself failed), 2 for a bad command line.
//
// With -tap the simulated hosts join a real Ethernet segment through an
// existing TAP device (a port of a Linux bridge, say), in real time: the
// simulator becomes a load and conformance driver for the link-local
// implementations on that segment. The run ends, printing the report, when
// every simulated host is bound, on SIGINT or SIGTERM, or after -duration;
// with -hold the hosts stay on the segment, defending their addresses,
// until SIGINT, SIGTERM or -duration (a line on stderr says when they were
// all bound). The capture (-pcap) then has real timestamps.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
	"github.com/autoip-project/autoip/sim/scenario"
	"github.com/autoip-project/autoip/sim/segment"
	"github.com/autoip-project/autoip/tap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Flag ranges.
const (
	maxFlagDuration = 30 * 24 * time.Hour
	maxWindow       = 24 * time.Hour
	maxSVGRows      = 10000
	maxMemLimitMiB  = 1 << 20
)

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (e usageError) Error() string { return e.msg }

func badFlag(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// options are the parsed command line.
type options struct {
	sc          *scenario.Scenario
	report      string
	jsonPath    string
	hostDetail  bool
	pcapPath    string
	svgPath     string
	svgRows     int
	tracePath   string
	traceHosts  []int
	traceFrames sim.TraceFrames
	progress    time.Duration
	perf        bool
	check       bool
	memLimit    int
	tap         string // real-time run on this TAP
	hold        bool
}

// hostFlags are the flags that describe the hosts of a flag-built run;
// they cannot be combined with -scenario.
var hostFlags = []string{"hosts", "start", "interval", "window", "same-initial", "engine-seed", "defend", "delay"}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("autoip-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarioPath := fs.String("scenario", "", "run this scenario `file` (JSON); without it the flags describe a boot storm")
	hosts := fs.Int("hosts", 10, fmt.Sprintf("number of hosts, 1..%d", sim.MaxHosts))
	start := fs.String("start", "all", "arrival pattern: all, staggered or random")
	interval := fs.Duration("interval", 100*time.Millisecond, "time between arrivals with -start staggered, more than 0 and at most 24h")
	window := fs.Duration("window", 10*time.Second, "arrival window with -start random, more than 0 and at most 24h")
	sameInitial := fs.String("same-initial", "", "every host tries this `address` first (169.254.1.0-169.254.254.255): forced collisions")
	engineSeed := fs.Uint64("engine-seed", 0, "give every host this candidate seed (identical address sequences); 0: one per host")
	defend := fs.String("defend", "once", "defence `policy` while bound: once or abandon (RFC 3927 §2.5)")
	delay := fs.Int("delay", 0, "QNX lsm-autoip delay= in `ms`, 1..8000 (probes delay/2..delay apart); 0: RFC timing")
	seed := fs.Uint64("seed", 1, "simulation seed, the only entropy (overrides the scenario's)")
	duration := fs.Duration("duration", time.Hour, "stop after this much simulated (with -tap: real) time if not quiet before, more than 0 and at most 720h (overrides the scenario's)")
	latency := fs.Duration("latency", 0, "frame delivery latency, 0..1m")
	jitter := fs.Duration("jitter", 0, "random extra delay per frame, 0..1m")
	loss := fs.Float64("loss", 0, "probability a receiver misses a frame, 0..1")
	dup := fs.Float64("dup", 0, "probability a frame is delivered twice, 0..1")
	reorder := fs.Float64("reorder", 0, "probability a frame is held back 5ms and overtaken, 0..1")
	echo := fs.Float64("echo", 0, "probability a frame is echoed back to its sender, 0..1")
	unfiltered := fs.Bool("unfiltered", false, "deliver every broadcast to every host (slow for many hosts; same outcome)")
	queue := fs.Int("queue", 0, fmt.Sprintf("link queue size per host, 1..%d (0: %d)", sim.MaxQueueSize, sim.DefaultQueueSize))
	report := fs.String("report", "text", "report on stdout: text, json or none")
	jsonPath := fs.String("json", "", "also write the JSON report to this `file`")
	hostDetail := fs.Bool("host-detail", false, "include one entry per host in the JSON report")
	pcapPath := fs.String("pcap", "", "write a pcap of the segment to this `file` (virtual time stamps)")
	svgPath := fs.String("svg", "", "draw the run as an SVG timeline in this `file`")
	svgRows := fs.Int("svg-rows", 60, fmt.Sprintf("host rows in the SVG, 1..%d", maxSVGRows))
	tracePath := fs.String("trace", "", "write a per-host text trace to this `file` (- for stdout)")
	traceHosts := fs.String("trace-hosts", "all", "hosts to trace: all, or a comma-separated `list` of indices")
	traceFrames := fs.String("trace-frames", "all", "frames in the trace besides the events: all (sent and received), sent or none")
	progress := fs.Duration("progress", 2*time.Second, "progress line on stderr every this much wall time, 0 to disable, at most 1h")
	perf := fs.Bool("perf", false, "add wall time, sim/wall, heap per host and peak RSS to the report")
	check := fs.Bool("check", true, "exit 1 if an invariant or a scenario expectation fails")
	tapName := fs.String("tap", "", "run in real time with the hosts on the Ethernet segment of this existing TAP `interface` (needs CAP_NET_ADMIN or a TAP owned by the user)")
	hold := fs.Bool("hold", false, "with -tap: once all hosts are bound keep them on the segment until SIGINT, SIGTERM or -duration")
	memLimit := fs.Int("memlimit", 0, fmt.Sprintf("soft memory limit in `MiB` for the Go runtime, 0..%d (0: none)", maxMemLimitMiB))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: autoip-sim [-scenario FILE] [flags]\n\n"+
			"Simulates AutoIP hosts (gVisor netstacks with the autoip engine) on one Ethernet\n"+
			"segment in virtual time, deterministically, and reports what happened.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, badFlag("unexpected argument %q (use -scenario FILE)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Validate every flag, set or not.
	if *hosts < 1 || *hosts > sim.MaxHosts {
		return nil, badFlag("-hosts %d is out of range 1..%d", *hosts, sim.MaxHosts)
	}
	switch *start {
	case "all", "staggered", "random":
	default:
		return nil, badFlag("-start %q: want all, staggered or random", *start)
	}
	if *interval <= 0 || *interval > maxWindow {
		return nil, badFlag("-interval %v is out of range (0, %v]", *interval, maxWindow)
	}
	if *window <= 0 || *window > maxWindow {
		return nil, badFlag("-window %v is out of range (0, %v]", *window, maxWindow)
	}
	if *sameInitial != "" {
		a, err := netip.ParseAddr(*sameInitial)
		if err != nil || !autoip.InRange(a) {
			return nil, badFlag("-same-initial %q is not an address in %v-%v", *sameInitial, autoip.FirstAddr, autoip.LastAddr)
		}
	}
	if p, err := acd.ParseDefendPolicy(*defend); err != nil || p == acd.DefendForever {
		return nil, badFlag("-defend %q: want once or abandon (RFC 3927 §2.5)", *defend)
	}
	if *delay != 0 && (*delay < autoip.MinQNXDelayMS || *delay > autoip.MaxQNXDelayMS) {
		return nil, badFlag("-delay %d ms is out of range %d..%d ms (0: RFC timing)", *delay, autoip.MinQNXDelayMS, autoip.MaxQNXDelayMS)
	}
	if *duration <= 0 || *duration > maxFlagDuration {
		return nil, badFlag("-duration %v is out of range (0, %v]", *duration, maxFlagDuration)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"latency", *latency}, {"jitter", *jitter}} {
		if d.v < 0 || d.v > segment.MaxDelay {
			return nil, badFlag("-%s %v is out of range 0..%v", d.name, d.v, segment.MaxDelay)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", *loss}, {"dup", *dup}, {"reorder", *reorder}, {"echo", *echo}} {
		if !(p.v >= 0 && p.v <= 1) {
			return nil, badFlag("-%s %v is out of range 0..1", p.name, p.v)
		}
	}
	if *queue != 0 && (*queue < 1 || *queue > sim.MaxQueueSize) {
		return nil, badFlag("-queue %d is out of range 1..%d", *queue, sim.MaxQueueSize)
	}
	switch *report {
	case "text", "json", "none":
	default:
		return nil, badFlag("-report %q: want text, json or none", *report)
	}
	if *svgRows < 1 || *svgRows > maxSVGRows {
		return nil, badFlag("-svg-rows %d is out of range 1..%d", *svgRows, maxSVGRows)
	}
	var tf sim.TraceFrames
	switch *traceFrames {
	case "all":
	case "sent":
		tf = sim.TraceSent
	case "none":
		tf = sim.TraceNoFrames
	default:
		return nil, badFlag("-trace-frames %q: want all, sent or none", *traceFrames)
	}
	if *progress < 0 || *progress > time.Hour {
		return nil, badFlag("-progress %v is out of range 0..1h", *progress)
	}
	if *memLimit < 0 || *memLimit > maxMemLimitMiB {
		return nil, badFlag("-memlimit %d MiB is out of range 0..%d", *memLimit, maxMemLimitMiB)
	}
	if *tapName != "" {
		if err := tap.ValidateName(*tapName); err != nil {
			return nil, badFlag("-tap %q: %v", *tapName, err)
		}
	} else if *hold {
		return nil, badFlag("-hold needs -tap: a virtual-time run ends when it is quiet")
	}

	o := &options{
		report: *report, jsonPath: *jsonPath, hostDetail: *hostDetail, pcapPath: *pcapPath,
		svgPath: *svgPath, svgRows: *svgRows, tracePath: *tracePath, progress: *progress,
		perf: *perf, check: *check, memLimit: *memLimit, traceFrames: tf,
		tap: *tapName, hold: *hold,
	}
	if *scenarioPath != "" {
		for _, name := range hostFlags {
			if set[name] {
				return nil, badFlag("-%s describes the hosts and cannot be combined with -scenario (edit the scenario file)", name)
			}
		}
		sc, err := scenario.Load(*scenarioPath)
		if err != nil {
			return nil, badFlag("-scenario %s: %v", *scenarioPath, err)
		}
		o.sc = sc
	} else {
		hs := scenario.HostSpec{Count: *hosts, Start: *start, Interval: scenario.Duration(*interval), Window: scenario.Duration(*window),
			Initial: *sameInitial, EngineSeed: *engineSeed, Defend: *defend}
		if *delay != 0 {
			hs.Timing = &scenario.TimingSpec{QNXDelayMS: *delay}
		}
		o.sc = &scenario.Scenario{Name: fmt.Sprintf("flags-%d-hosts", *hosts), Hosts: []scenario.HostSpec{hs}, Seed: *seed, Duration: scenario.Duration(*duration)}
	}
	sc := o.sc
	if set["seed"] {
		sc.Seed = *seed
	}
	if set["duration"] {
		sc.Duration = scenario.Duration(*duration)
	}
	if set["unfiltered"] {
		sc.Unfiltered = *unfiltered
	}
	if set["queue"] {
		sc.Queue = *queue
	}
	l := &sc.Link
	if set["latency"] {
		l.Latency = scenario.Duration(*latency)
	}
	if set["jitter"] {
		l.Jitter = scenario.Duration(*jitter)
	}
	if set["loss"] {
		l.Loss = *loss
	}
	if set["dup"] {
		l.Dup = *dup
	}
	if set["reorder"] {
		l.Reorder = *reorder
	}
	if set["echo"] {
		l.Echo = *echo
	}
	if err := sc.Validate(); err != nil {
		return nil, badFlag("%v", err)
	}
	if *traceHosts != "all" {
		for _, f := range strings.Split(*traceHosts, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 0 || i >= sc.NumHosts() {
				return nil, badFlag("-trace-hosts: %q is not a host index 0..%d", f, sc.NumHosts()-1)
			}
			o.traceHosts = append(o.traceHosts, i)
		}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) && ue.msg == flag.ErrHelp.Error() {
			return 0
		}
		fmt.Fprintf(stderr, "autoip-sim: %v\n", err)
		return 2
	}
	failed, err := simulate(o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "autoip-sim: %v\n", err)
		return 1
	}
	if failed && o.check {
		return 1
	}
	return 0
}

// simulate runs the simulation and writes the outputs. failed reports a
// broken invariant or expectation.
func simulate(o *options, stdout, stderr io.Writer) (failed bool, err error) {
	if o.memLimit > 0 {
		debug.SetMemoryLimit(int64(o.memLimit) << 20)
	}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			if cerr := c(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	create := func(path string) (io.Writer, error) {
		if path == "-" {
			return stdout, nil
		}
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		closers = append(closers, f.Close)
		return f, nil
	}
	out := scenario.Options{TraceHosts: o.traceHosts, TraceFrames: o.traceFrames}
	if o.progress > 0 {
		out.Progress, out.ProgressEvery = stderr, o.progress
	}
	if o.pcapPath != "" {
		if out.PCAP, err = create(o.pcapPath); err != nil {
			return false, err
		}
	}
	if o.tracePath != "" {
		if out.Trace, err = create(o.tracePath); err != nil {
			return false, err
		}
	}
	var base uint64
	if o.perf {
		base = report.HeapInUse()
		report.ResetPeakRSS()
	}
	var s *sim.Sim
	var rep *report.Report
	if o.tap != "" {
		s, rep, err = realTime(o, out, stderr)
	} else {
		s, rep, err = scenario.Run(o.sc, out)
	}
	if err != nil {
		return false, err
	}
	if o.perf {
		rep.Perf = report.Measure(s, base)
	}
	fails := o.sc.CheckExpect(rep)
	if o.svgPath != "" {
		w, err := create(o.svgPath)
		if err != nil {
			return false, err
		}
		if err := report.WriteSVG(w, s, report.SVGOptions{MaxRows: o.svgRows}); err != nil {
			return false, err
		}
	}
	full := *rep
	if !o.hostDetail {
		rep.HostDetail = nil
	}
	switch o.report {
	case "text":
		err = rep.WriteText(stdout)
	case "json":
		err = rep.WriteJSON(stdout)
	}
	if err != nil {
		return false, err
	}
	if o.jsonPath != "" {
		w, err := create(o.jsonPath)
		if err != nil {
			return false, err
		}
		if err := rep.WriteJSON(w); err != nil {
			return false, err
		}
	}
	for _, f := range fails {
		if !strings.HasPrefix(f, "invariant ") || o.report != "text" {
			fmt.Fprintf(stderr, "autoip-sim: %s: %s\n", full.Name, f)
		}
	}
	// Closing 10,000 netstacks takes a moment and changes nothing.
	return len(fails) > 0, nil
}

// realTime runs the scenario in real time with its hosts bridged to the
// TAP named o.tap, until they are all bound (or, with -hold, until a
// signal or the duration), and returns the simulation and its report.
func realTime(o *options, out scenario.Options, stderr io.Writer) (*sim.Sim, *report.Report, error) {
	dev, err := tap.Open(tap.Config{Name: o.tap})
	if err != nil {
		return nil, nil, fmt.Errorf("-tap %s: %w", o.tap, err)
	}
	defer dev.Close()
	out.Start = time.Now().UTC()
	s, err := o.sc.Build(out)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Bridge(dev); err != nil {
		s.Close()
		return nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wall := time.Now()
	said := false
	err = s.RunRealTime(ctx, func() bool {
		if !said && s.AllBound() {
			said = true
			fmt.Fprintf(stderr, "autoip-sim: all %d simulated hosts bound after %v on %s\n", s.NumHosts(), time.Since(wall).Round(time.Millisecond), o.tap)
			return !o.hold
		}
		return false
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		s.Close()
		return nil, nil, err
	}
	return s, report.Build(s, report.Options{HostDetail: true, Check: o.sc.CheckOptions()}), nil
}
