// Command autoip-trace shows the link-local address protocol at work: it
// runs N autoip engines on a simulated, ideal Ethernet segment in virtual
// time (package enginehub) and prints what happened, host by host, then a
// one-line summary. It touches no network and finishes at once, however
// many seconds of protocol time the story covers; the same flags always
// print the same story.
//
// Usage:
//
//	autoip-trace [-hosts N] [-seed S] [-same-initial 169.254.X.Y]
//	             [-delay MS] [-latency D] [-stagger D] [-max D]
//	             [-defend POLICY] [-frames]
//
// For example, four hosts all configured with the same initial address:
//
//	go run ./cmd/autoip-trace -hosts 4 -same-initial 169.254.20.20
//
// One of them probes first and keeps the address; the three others see
// its probe while probing themselves, and move on to addresses of their
// own.
//
// Every frame reaches every other host, so the work grows with the square
// of -hosts: 1000 hosts take about a second, 10000 about a minute.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/enginehub"
)

// Flag ranges.
const (
	maxHosts   = 10000
	maxLatency = time.Minute
	maxMax     = 30 * 24 * time.Hour
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badFlag(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// options are the parsed flags.
type options struct {
	cfg    enginehub.Config
	max    time.Duration
	timing string // description for the header
}

// parse parses and validates the command line.
func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("autoip-trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.Int("hosts", 3, "number of hosts on the segment, 1..10000")
	seed := fs.Uint64("seed", 1, "seed of the hosts' random delays")
	same := fs.String("same-initial", "", "start every host on this `address` (169.254.1.0-169.254.254.255)")
	delay := fs.Int("delay", 0, "QNX lsm-autoip delay= in `ms`, 1..8000: probe spacing delay/2..delay, PROBE_WAIT delay/2 (default: RFC timing)")
	latency := fs.Duration("latency", enginehub.DefaultLatency, "delivery delay of every frame, more than 0 and at most 1m")
	max := fs.Duration("max", 10*time.Minute, "give up after this much virtual time, more than 0 and at most 720h")
	defend := fs.String("defend", "once", "defence `policy` while bound: once or abandon (RFC 3927 §2.5)")
	stagger := fs.Duration("stagger", 0, "start host i at i times this, 0..24h (default: all at once)")
	frames := fs.Bool("frames", false, "also show every ARP frame sent")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: autoip-trace [flags]\n\n"+
			"Runs autoip engines on a simulated segment in virtual time and prints what happened.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, badFlag("unexpected argument %q: autoip-trace takes flags only", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := options{max: *max, timing: "RFC 3927 timing"}
	if *hosts < 1 || *hosts > maxHosts {
		return o, badFlag("-hosts %d is out of range 1..%d", *hosts, maxHosts)
	}
	o.cfg.Hosts = *hosts
	o.cfg.Seed = *seed
	if *same != "" {
		a, err := netip.ParseAddr(*same)
		if err != nil {
			return o, badFlag("-same-initial %q is not an IPv4 address", *same)
		}
		if !autoip.InRange(a) {
			return o, badFlag("-same-initial %v is outside the usable link-local range %v-%v", a, autoip.FirstAddr, autoip.LastAddr)
		}
		o.cfg.Initial = a
	}
	if set["delay"] {
		q := autoip.DefaultQNXOptions()
		q.DelayMS = *delay
		t, _, err := q.Timing()
		if err != nil {
			return o, badFlag("-delay %d is out of range %d..%d ms", *delay, autoip.MinQNXDelayMS, autoip.MaxQNXDelayMS)
		}
		o.cfg.Timing = t
		o.timing = fmt.Sprintf("QNX delay=%d timing", *delay)
	}
	if *latency <= 0 || *latency > maxLatency {
		return o, badFlag("-latency %v is out of range: want more than 0 and at most %v", *latency, maxLatency)
	}
	o.cfg.Latency = *latency
	if *max <= 0 || *max > maxMax {
		return o, badFlag("-max %v is out of range: want more than 0 and at most %v", *max, maxMax)
	}
	if *stagger < 0 || *stagger > enginehub.MaxStagger {
		return o, badFlag("-stagger %v is out of range 0..%v", *stagger, enginehub.MaxStagger)
	}
	o.cfg.Stagger = *stagger
	p, err := acd.ParseDefendPolicy(*defend)
	if err == nil && p == acd.DefendForever {
		err = fmt.Errorf("defend policy %q is not allowed for link-local addresses: want once or abandon (RFC 3927 §2.5)", *defend)
	}
	if err != nil {
		return o, badFlag("-defend: %v", err)
	}
	o.cfg.Defend = p
	o.cfg.TraceFrames = *frames
	return o, nil
}

// run is main without the process: it returns the exit code (0 success,
// 1 the segment did not settle, 2 bad flags).
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "autoip-trace: %v\n", err)
			fmt.Fprintln(stderr, "run 'autoip-trace -h' for usage")
		} // flag's own errors are already printed, with the usage
		return 2
	}
	hub, err := enginehub.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "autoip-trace: %v\n", err)
		return 2
	}
	cfg := hub.Config()
	start := "each on its own first candidate"
	if cfg.Initial.IsValid() {
		start = "all starting on " + cfg.Initial.String()
	}
	if cfg.Stagger > 0 {
		start += fmt.Sprintf(", one starting every %v", cfg.Stagger)
	}
	fmt.Fprintf(stdout, "# %d hosts on an ideal segment, %s; seed %d, latency %v, %s, defend %v\n",
		cfg.Hosts, start, cfg.Seed, cfg.Latency, o.timing, cfg.Defend)
	fmt.Fprintf(stdout, "# %10s  %-9s  %-17s  %-9s  %-15s  %s\n", "time", "host", "mac", "event", "address", "detail")
	runErr := hub.RunUntilQuiet(o.max)
	for _, l := range hub.Timeline() {
		fmt.Fprintf(stdout, "  %v\n", l)
	}
	fmt.Fprintf(stdout, "summary: %v\n", hub.Summary())
	if runErr != nil {
		fmt.Fprintf(stderr, "autoip-trace: %v (raise -max?)\n", runErr)
		return 1
	}
	return 0
}
