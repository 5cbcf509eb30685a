package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/dhcp"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// Defaults of the options that are not QNXOptions.
const (
	DefaultStateDir    = "/var/lib/autoipd"
	DefaultHookTimeout = 10 * time.Second
	DefaultIfaceOForm  = "en0" // lsm-autoip's if= default
	MaxHookTimeout     = time.Hour
	MaxWaitTimeout     = 24 * time.Hour
	MinCheckInterval   = 10 * time.Millisecond
	MaxCheckInterval   = time.Minute
	// DefaultDHCPFallback is how long link-local waits for a DHCP lease.
	DefaultDHCPFallback = 10 * time.Second
	MaxDHCPFallback     = time.Hour
	// MaxDHCPInitDelay is the longest -dhcp-init-delay: RFC 2131 §4.4.1's
	// "between one and ten seconds".
	MaxDHCPInitDelay = 10 * time.Second
)

// Config is the daemon's validated configuration: the result of Parse.
type Config struct {
	// Iface is the TAP interface (-i, if=).
	Iface string
	// Initial is the first candidate (-s, ip=); the zero Addr means none.
	Initial netip.Addr
	// QNX holds -a, -p, -w, -t and delay=.
	QNX autoip.QNXOptions
	// Defend is acd.Abandon with -d or abandon, acd.DefendOnce otherwise.
	Defend acd.DefendPolicy
	// YieldToRoutable: give the address up while a routable one exists.
	YieldToRoutable bool
	// Route is the lsm-autoip route option (stack.ClientConfig.Route).
	Route bool
	// Verbose is -v or debug: slog Debug level.
	Verbose bool

	Create        bool
	MAC           acd.MAC // zero: generated and persisted
	StateDir      string
	Hook          string
	HookTimeout   time.Duration
	LogFormat     string // "text" or "json"
	Wait          bool
	WaitTimeout   time.Duration // 0: no limit
	Pcap          string
	Status        bool
	Seed          uint64 // 0: derived from the MAC
	CheckInterval time.Duration
	Addrs         []netip.Prefix // -addr: static routable addresses on the netstack NIC

	// DHCP runs a DHCP client with link-local as its fallback (-dhcp,
	// -o dhcp); the fields after it tune it.
	DHCP          bool
	DHCPFallback  time.Duration // -dhcp-fallback: link-local after this long without a lease (0: at once)
	DHCPKeepLease bool          // -dhcp-keep-lease: no DHCPRELEASE at stop
	DHCPHostname  string        // -dhcp-hostname: option 12
	DHCPInitDelay time.Duration // -dhcp-init-delay: bound of the random wait before the first DHCPDISCOVER

	// Alias and Delete are requests to a running daemon (-alias, -delete).
	Alias  netip.Prefix
	Delete netip.Addr

	// OForm reports that -o was given: its defaults (coexist, if=en0)
	// apply.
	OForm bool
	// Notices are remarks about the configuration (ignored or overridden
	// options) that the daemon logs at start-up.
	Notices []string
}

// UsageError is a bad command line: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// oOptions is a parsed lsm-autoip option string; the *Set fields tell
// options that were given from defaults.
type oOptions struct {
	given    map[string]string // option -> its item ("if=en0"), to refuse a second, different one
	iface    string
	ip       netip.Addr
	debug    bool
	delayMS  int
	delaySet bool
	abandon  bool
	force    bool
	old      bool
	route    bool
	dhcp     bool
}

// oOptionNames lists the -o options, in the manual's order.
var oOptionNames = []string{"if", "ip", "debug", "abandon", "delay", "force", "old", "route", "dhcp"}

// parseOptions parses lsm-autoip's option string "if=en0,ip=...,debug,...".
// Empty items (a trailing comma) are ignored, but a string without any
// option is refused (an empty -o used to wait for en0 for ever). An option
// given again (here or in an earlier string parsed into o) must have the
// same value.
func parseOptions(s string, o *oOptions) error {
	if o.given == nil {
		o.given = map[string]string{}
	}
	items := 0
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		items++
		key, val, hasVal := strings.Cut(item, "=")
		if prev, ok := o.given[key]; ok && prev != item {
			return fmt.Errorf("options %q and %q conflict: give it once", prev, item)
		}
		o.given[key] = item
		noValue := func() error {
			if hasVal {
				return fmt.Errorf("option %q: %s takes no value", item, key)
			}
			return nil
		}
		needValue := func() error {
			if !hasVal || val == "" {
				return fmt.Errorf("option %q: %s needs a value (%s=...)", item, key, key)
			}
			return nil
		}
		switch key {
		case "if":
			if err := needValue(); err != nil {
				return err
			}
			if err := checkIface(val); err != nil {
				return fmt.Errorf("option if=%s: %w", val, err)
			}
			o.iface = val
		case "ip":
			if err := needValue(); err != nil {
				return err
			}
			a, err := parseInitial(val)
			if err != nil {
				return fmt.Errorf("option ip=%s: %w", val, err)
			}
			o.ip = a
		case "delay":
			if err := needValue(); err != nil {
				return err
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < autoip.MinQNXDelayMS || n > autoip.MaxQNXDelayMS {
				return fmt.Errorf("option delay=%s: want an integer number of milliseconds in %d..%d", val, autoip.MinQNXDelayMS, autoip.MaxQNXDelayMS)
			}
			o.delayMS, o.delaySet = n, true
		case "debug", "abandon", "force", "old", "route", "dhcp":
			if err := noValue(); err != nil {
				return err
			}
			switch key {
			case "debug":
				o.debug = true
			case "abandon":
				o.abandon = true
			case "force":
				o.force = true
			case "old":
				o.old = true
			case "route":
				o.route = true
			case "dhcp":
				o.dhcp = true
			}
		default:
			return fmt.Errorf("option %q is unknown; known options: %s", key, strings.Join(oOptionNames, ", "))
		}
	}
	if items == 0 {
		return fmt.Errorf("%q holds no option: give at least one, like -o if=IFACE", s)
	}
	return nil
}

// checkIface validates an interface name (it also names files in the state
// directory, so it must not contain '/').
func checkIface(name string) error {
	if err := tap.ValidateName(name); err != nil {
		return fmt.Errorf("%w (want 1..15 bytes without '/', ':' or white space)", err)
	}
	return nil
}

// parseInitial parses an initial address and checks it is usable (R03).
func parseInitial(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address in dotted notation (want %v..%v)", s, autoip.FirstAddr, autoip.LastAddr)
	}
	if !autoip.InRange(a) {
		return netip.Addr{}, fmt.Errorf("%v is outside the usable link-local range %v..%v", a, autoip.FirstAddr, autoip.LastAddr)
	}
	return a, nil
}

// intValue is a flag.Value for an integer with a range.
type intValue struct {
	p        *int
	min, max int
	unit     string
}

func (v *intValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < v.min || n > v.max {
		return fmt.Errorf("want an integer in %d..%d%s", v.min, v.max, v.unit)
	}
	*v.p = n
	return nil
}

// durValue is a flag.Value for a duration with a range.
type durValue struct {
	p        *time.Duration
	min, max time.Duration
	zeroOK   bool
}

func (v *durValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v *durValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("want a duration like 500ms, 10s or 2m (%v)", err)
	case d == 0 && v.zeroOK:
	case d < v.min || d > v.max:
		if v.zeroOK {
			return fmt.Errorf("want 0 (no limit) or a duration in %v..%v", v.min, v.max)
		}
		return fmt.Errorf("want a duration in %v..%v", v.min, v.max)
	}
	*v.p = d
	return nil
}

// funcValue is a string flag.Value validated by a function.
type funcValue struct {
	s   string
	set func(string) error
}

func (v *funcValue) String() string { return v.s }
func (v *funcValue) Set(s string) error {
	if err := v.set(s); err != nil {
		return err
	}
	v.s = s
	return nil
}

// flagSet builds the flag set for cfg, with QNX defaults in place.
func flagSet(cfg *Config, oStrings *[]string, addrs *[]netip.Prefix) *flag.FlagSet {
	fs := flag.NewFlagSet("autoipd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	// QNX autoipd.
	fs.Var(&intValue{p: &cfg.QNX.Announces, min: 1, max: autoip.MaxQNXCount}, "a", "")
	fs.BoolFunc("d", "", func(s string) error { return setBool(s, func(b bool) { cfg.Defend = abandonIf(b) }) })
	fs.Bool("f", false, "")
	fs.Var(&funcValue{set: func(s string) error {
		if err := checkIface(s); err != nil {
			return err
		}
		cfg.Iface = s
		return nil
	}}, "i", "")
	fs.Var(&intValue{p: &cfg.QNX.Probes, min: 1, max: autoip.MaxQNXCount}, "p", "")
	fs.Var(&funcValue{set: func(s string) error {
		a, err := parseInitial(s)
		cfg.Initial = a
		return err
	}}, "s", "")
	fs.Var(&intValue{p: &cfg.QNX.LinkUpSeconds, min: 0, max: autoip.MaxQNXLinkUpSeconds, unit: " seconds"}, "t", "")
	fs.BoolVar(&cfg.Verbose, "v", false, "")
	fs.Var(&intValue{p: &cfg.QNX.WaitSeconds, min: 1, max: autoip.MaxQNXWaitSeconds, unit: " seconds"}, "w", "")
	fs.Func("o", "", func(s string) error {
		var o oOptions
		if err := parseOptions(s, &o); err != nil {
			return err
		}
		*oStrings = append(*oStrings, s)
		return nil
	})

	// Go-style long flags.
	fs.BoolVar(&cfg.Create, "create", false, "")
	fs.Func("mac", "", func(s string) error {
		m, err := acd.ParseMAC(s)
		if err != nil {
			return err
		}
		if !m.IsUnicast() {
			return fmt.Errorf("%v is not a unicast MAC (the first byte's low bit must be 0, and not all zero)", m)
		}
		cfg.MAC = m
		return nil
	})
	fs.Func("state-dir", "", func(s string) error {
		if s == "" {
			return errors.New("want a directory path")
		}
		cfg.StateDir = filepath.Clean(s)
		return nil
	})
	fs.Func("hook", "", func(s string) error {
		if s == "" {
			return errors.New("want the path of an executable")
		}
		cfg.Hook = s
		return nil
	})
	fs.Var(&durValue{p: &cfg.HookTimeout, min: time.Millisecond, max: MaxHookTimeout}, "hook-timeout", "")
	fs.Func("log-format", "", func(s string) error {
		if s != "text" && s != "json" {
			return errors.New("want text or json")
		}
		cfg.LogFormat = s
		return nil
	})
	fs.BoolVar(&cfg.Wait, "wait", false, "")
	fs.Var(&durValue{p: &cfg.WaitTimeout, min: time.Millisecond, max: MaxWaitTimeout, zeroOK: true}, "wait-timeout", "")
	fs.Func("pcap", "", func(s string) error {
		if s == "" {
			return errors.New("want a file path")
		}
		cfg.Pcap = s
		return nil
	})
	fs.BoolVar(&cfg.Status, "status", false, "")
	fs.Func("seed", "", func(s string) error {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("want an integer in 1..%d (decimal, or hex with 0x); omit -seed to derive the seed from the MAC", uint64(1<<64-1))
		}
		cfg.Seed = n
		return nil
	})
	fs.Var(&durValue{p: &cfg.CheckInterval, min: MinCheckInterval, max: MaxCheckInterval}, "check-interval", "")
	fs.Func("addr", "", func(s string) error {
		p, err := parseRoutablePrefix(s)
		if err != nil {
			return err
		}
		for _, q := range *addrs {
			if q.Addr() == p.Addr() {
				return fmt.Errorf("%v is already given as -addr %v: one prefix per address", p.Addr(), q)
			}
		}
		*addrs = append(*addrs, p)
		return nil
	})
	fs.BoolVar(&cfg.DHCP, "dhcp", false, "")
	fs.Var(&durValue{p: &cfg.DHCPFallback, min: 0, max: MaxDHCPFallback}, "dhcp-fallback", "")
	fs.BoolVar(&cfg.DHCPKeepLease, "dhcp-keep-lease", false, "")
	fs.Var(&durValue{p: &cfg.DHCPInitDelay, min: time.Millisecond, max: MaxDHCPInitDelay}, "dhcp-init-delay", "")
	fs.Func("dhcp-hostname", "", func(s string) error {
		if s == "" || len(s) > 63 || strings.ContainsFunc(s, func(r rune) bool {
			return !(r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) {
			return fmt.Errorf("want a host name of 1..63 letters, digits, '-' and '.'")
		}
		cfg.DHCPHostname = s
		return nil
	})
	fs.Func("alias", "", func(s string) error {
		p, err := parseRoutablePrefix(s)
		if err != nil {
			return err
		}
		cfg.Alias = p
		return nil
	})
	fs.Func("delete", "", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return fmt.Errorf("want an IPv4 address, like 192.0.2.10")
		}
		cfg.Delete = a
		return nil
	})
	refuseConflictingRepeats(fs)
	return fs
}

// parseRoutablePrefix parses an -addr or -alias value.
func parseRoutablePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("want an IPv4 address with prefix length, like 192.0.2.10/24")
	}
	if autoip.LinkLocalPrefix.Contains(p.Addr()) || !p.Addr().IsGlobalUnicast() {
		return netip.Prefix{}, fmt.Errorf("%v is not a routable unicast address (link-local addresses are autoipd's to choose)", p.Addr())
	}
	if err := stack.CheckHostPrefix(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

func setBool(s string, f func(bool)) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	f(b)
	return nil
}

func abandonIf(b bool) acd.DefendPolicy {
	if b {
		return acd.Abandon
	}
	return acd.DefendOnce
}

// shortBool and shortValue are the QNX single-letter flags.
const (
	shortBool  = "dfvh"
	shortValue = "aiopstw"
)

// expandArgs rewrites getopt-style clusters of QNX short flags, which the
// flag package does not understand, into separate arguments: "-dfv" becomes
// "-d -f -v", "-dvi tap0" becomes "-d -v -i tap0", and "-a3" or
// "-oif=en0,debug" become "-a 3" and "-o if=en0,debug". An argument that
// names a defined flag (-status, -seed, -create, -i=x...) is left alone, as
// is anything the expansion does not understand, for the flag package to
// report.
func expandArgs(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return append(out, args[i:]...)
		}
		name, _, hasEq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil || strings.HasPrefix(a, "--") {
			out = append(out, a)
			if f != nil && !hasEq && !isBoolFlag(f) && i+1 < len(args) {
				i++
				out = append(out, args[i]) // its value, whatever it looks like
			}
			continue
		}
		var exp []string
		ok := false
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case strings.IndexByte(shortBool, c) >= 0:
				exp = append(exp, "-"+string(c))
				if j == len(a)-1 {
					ok = true
				}
				continue
			case strings.IndexByte(shortValue, c) >= 0:
				exp = append(exp, "-"+string(c))
				if rest := a[j+1:]; rest != "" {
					exp = append(exp, rest)
				} else if i+1 < len(args) {
					i++
					exp = append(exp, args[i])
				}
				ok = true
			}
			break
		}
		if ok {
			out = append(out, exp...)
		} else {
			out = append(out, a)
		}
	}
	return out
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Parse parses autoipd's command line. It returns flag.ErrHelp for -h, a
// *UsageError for anything invalid (every message names the value and what
// is accepted), or the configuration.
func Parse(args []string) (*Config, error) {
	cfg := &Config{
		QNX:           autoip.DefaultQNXOptions(),
		StateDir:      DefaultStateDir,
		HookTimeout:   DefaultHookTimeout,
		LogFormat:     "text",
		DHCPFallback:  DefaultDHCPFallback,
		DHCPInitDelay: dhcp.DefaultInitDelay,
	}
	var oStrings []string
	fs := flagSet(cfg, &oStrings, &cfg.Addrs)
	if err := fs.Parse(expandArgs(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q: autoipd takes only flags (see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	force := set["f"] && fs.Lookup("f").Value.String() == "true"
	cfg.YieldToRoutable = !force // autoipd: yield to a routable address unless -f

	if len(oStrings) > 0 {
		var o oOptions
		for _, s := range oStrings {
			if err := parseOptions(s, &o); err != nil {
				return nil, usageErrorf("-o %q: %w", s, err)
			}
		}
		if err := cfg.applyO(o, set, force); err != nil {
			return nil, err
		}
	}
	if cfg.Iface == "" {
		return nil, usageErrorf("no interface: give -i IFACE (or -o if=IFACE)")
	}
	if _, _, err := cfg.QNX.Timing(); err != nil {
		return nil, &UsageError{Err: err}
	}
	requests := 0
	for _, f := range []string{"status", "wait", "alias", "delete"} {
		if set[f] && (f != "status" || cfg.Status) && (f != "wait" || cfg.Wait) {
			requests++
		}
	}
	if requests > 1 {
		return nil, usageErrorf("-status, -wait, -alias and -delete cannot be combined: give one")
	}
	if !cfg.DHCP {
		for _, f := range []string{"dhcp-fallback", "dhcp-keep-lease", "dhcp-hostname", "dhcp-init-delay"} {
			if set[f] {
				return nil, usageErrorf("-%s given without -dhcp", f)
			}
		}
	}
	if set["wait-timeout"] && !cfg.Wait {
		return nil, usageErrorf("-wait-timeout %v given without -wait", cfg.WaitTimeout)
	}
	return cfg, nil
}

// applyO merges the -o options into cfg. See the package doc: -o values
// apply, flags given alongside override them (with a notice when they
// differ), except that -i and if= must agree.
func (cfg *Config) applyO(o oOptions, set map[string]bool, force bool) error {
	cfg.OForm = true
	switch {
	case o.iface == "":
		if !set["i"] {
			cfg.Iface = DefaultIfaceOForm
		}
	case set["i"] && cfg.Iface != o.iface:
		return usageErrorf("-i %s and -o if=%s name different interfaces; give one of them", cfg.Iface, o.iface)
	default:
		cfg.Iface = o.iface
	}
	if o.ip.IsValid() {
		if set["s"] {
			if cfg.Initial != o.ip {
				cfg.Notices = append(cfg.Notices, fmt.Sprintf("-s %v overrides -o ip=%v", cfg.Initial, o.ip))
			}
		} else {
			cfg.Initial = o.ip
		}
	}
	if o.debug {
		cfg.Verbose = true
	}
	if o.abandon && !set["d"] {
		cfg.Defend = acd.Abandon
	}
	if o.abandon && set["d"] && cfg.Defend != acd.Abandon {
		cfg.Notices = append(cfg.Notices, "-d=false overrides -o abandon")
	}
	if o.delaySet {
		cfg.QNX.DelayMS = o.delayMS
	}
	if o.dhcp {
		cfg.DHCP = true
	}
	cfg.Route = o.route
	// lsm-autoip: coexist by default; old yields; old,force keeps the
	// address; force without old is ignored, as documented.
	switch {
	case force:
		cfg.YieldToRoutable = false
		if o.old && !o.force {
			cfg.Notices = append(cfg.Notices, "-f overrides -o old: the link-local address is kept when a routable one exists")
		}
	case o.old && !o.force:
		cfg.YieldToRoutable = true
	default:
		cfg.YieldToRoutable = false
	}
	if o.force && !o.old {
		cfg.Notices = append(cfg.Notices, "-o force is ignored without old (as lsm-autoip documents): the link-local address coexists with routable ones anyway")
	}
	return nil
}
