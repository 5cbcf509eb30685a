package daemon

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// base is the configuration Parse gives for "-i tap0".
func base() Config {
	return Config{
		Iface:           "tap0",
		QNX:             autoip.DefaultQNXOptions(),
		StateDir:        DefaultStateDir,
		HookTimeout:     DefaultHookTimeout,
		LogFormat:       "text",
		YieldToRoutable: true,
		DHCPFallback:    DefaultDHCPFallback,
		DHCPInitDelay:   time.Second,
	}
}

// oBase is the configuration Parse gives for "-o if=tap0".
func oBase() Config {
	c := base()
	c.OForm = true
	c.YieldToRoutable = false
	return c
}

func TestParseGood(t *testing.T) {
	ip := netip.MustParseAddr("169.254.20.20")
	tests := []struct {
		name string
		args []string
		want func(c *Config)
		base func() Config
	}{
		{"defaults", []string{"-i", "tap0"}, func(c *Config) {}, base},
		// QNX flags.
		{"-a", []string{"-i", "tap0", "-a", "5"}, func(c *Config) { c.QNX.Announces = 5 }, base},
		{"-a min", []string{"-i", "tap0", "-a", "1"}, func(c *Config) { c.QNX.Announces = 1 }, base},
		{"-a max", []string{"-i", "tap0", "-a", "100"}, func(c *Config) { c.QNX.Announces = 100 }, base},
		{"-a attached", []string{"-i", "tap0", "-a7"}, func(c *Config) { c.QNX.Announces = 7 }, base},
		{"-d", []string{"-i", "tap0", "-d"}, func(c *Config) { c.Defend = acd.Abandon }, base},
		{"-f", []string{"-i", "tap0", "-f"}, func(c *Config) { c.YieldToRoutable = false }, base},
		{"-f=false", []string{"-i", "tap0", "-f=false"}, func(c *Config) {}, base},
		{"-i attached", []string{"-itap0"}, func(c *Config) {}, base},
		{"-i=", []string{"-i=tap0"}, func(c *Config) {}, base},
		{"--i", []string{"--i", "tap0"}, func(c *Config) {}, base},
		{"-p", []string{"-i", "tap0", "-p", "4"}, func(c *Config) { c.QNX.Probes = 4 }, base},
		{"-s", []string{"-i", "tap0", "-s", "169.254.20.20"}, func(c *Config) { c.Initial = ip }, base},
		{"-s first", []string{"-i", "tap0", "-s", "169.254.1.0"}, func(c *Config) { c.Initial = netip.MustParseAddr("169.254.1.0") }, base},
		{"-s last", []string{"-i", "tap0", "-s", "169.254.254.255"}, func(c *Config) { c.Initial = netip.MustParseAddr("169.254.254.255") }, base},
		{"-t", []string{"-i", "tap0", "-t", "5"}, func(c *Config) { c.QNX.LinkUpSeconds = 5 }, base},
		{"-t 0", []string{"-i", "tap0", "-t", "0"}, func(c *Config) {}, base},
		{"-t max", []string{"-i", "tap0", "-t", "3600"}, func(c *Config) { c.QNX.LinkUpSeconds = 3600 }, base},
		{"-v", []string{"-i", "tap0", "-v"}, func(c *Config) { c.Verbose = true }, base},
		{"-w", []string{"-i", "tap0", "-w", "1"}, func(c *Config) { c.QNX.WaitSeconds = 1 }, base},
		{"-w max", []string{"-i", "tap0", "-w", "60"}, func(c *Config) { c.QNX.WaitSeconds = 60 }, base},
		// Combined short flags (the synopsis's [-dfv]).
		{"-dfv", []string{"-dfv", "-i", "tap0"}, func(c *Config) { c.Defend = acd.Abandon; c.YieldToRoutable = false; c.Verbose = true }, base},
		{"-vd", []string{"-vd", "-i", "tap0"}, func(c *Config) { c.Defend = acd.Abandon; c.Verbose = true }, base},
		{"-dvi tap0", []string{"-dvi", "tap0"}, func(c *Config) { c.Defend = acd.Abandon; c.Verbose = true }, base},
		{"-fitap0", []string{"-fitap0"}, func(c *Config) { c.YieldToRoutable = false }, base},
		{"-dw1", []string{"-i", "tap0", "-dw1"}, func(c *Config) { c.Defend = acd.Abandon; c.QNX.WaitSeconds = 1 }, base},
		{"value that looks like a flag", []string{"-i", "tap0", "-hook", "-dfv"}, func(c *Config) { c.Hook = "-dfv" }, base},
		{"full synopsis", []string{"-dfv", "-a", "3", "-i", "tap0", "-p", "2", "-s", "169.254.20.20", "-t", "1", "-w", "1"}, func(c *Config) {
			c.Defend, c.YieldToRoutable, c.Verbose = acd.Abandon, false, true
			c.QNX.Announces, c.QNX.Probes, c.QNX.LinkUpSeconds, c.QNX.WaitSeconds = 3, 2, 1, 1
			c.Initial = ip
		}, base},
		// -o options.
		{"-o if", []string{"-o", "if=tap0"}, func(c *Config) {}, oBase},
		{"-o default if", []string{"-o", "debug"}, func(c *Config) { c.Iface = "en0"; c.Verbose = true }, oBase},
		{"-o ip", []string{"-o", "if=tap0,ip=169.254.20.20"}, func(c *Config) { c.Initial = ip }, oBase},
		{"-o debug", []string{"-o", "if=tap0,debug"}, func(c *Config) { c.Verbose = true }, oBase},
		{"-o delay", []string{"-o", "if=tap0,delay=200"}, func(c *Config) { c.QNX.DelayMS = 200 }, oBase},
		{"-o delay min", []string{"-o", "if=tap0,delay=1"}, func(c *Config) { c.QNX.DelayMS = 1 }, oBase},
		{"-o delay max", []string{"-o", "if=tap0,delay=8000"}, func(c *Config) { c.QNX.DelayMS = 8000 }, oBase},
		{"-o abandon", []string{"-o", "if=tap0,abandon"}, func(c *Config) { c.Defend = acd.Abandon }, oBase},
		{"-o old", []string{"-o", "if=tap0,old"}, func(c *Config) { c.YieldToRoutable = true }, oBase},
		{"-o old,force", []string{"-o", "if=tap0,old,force"}, func(c *Config) {}, oBase},
		{"-o force,old", []string{"-o", "if=tap0,force,old"}, func(c *Config) {}, oBase},
		{"-o force alone", []string{"-o", "if=tap0,force"}, func(c *Config) {
			c.Notices = []string{"-o force is ignored without old (as lsm-autoip documents): the link-local address coexists with routable ones anyway"}
		}, oBase},
		{"-o route", []string{"-o", "if=tap0,route"}, func(c *Config) { c.Route = true }, oBase},
		{"-o trailing comma", []string{"-o", "if=tap0,debug,"}, func(c *Config) { c.Verbose = true }, oBase},
		{"-o attached", []string{"-oif=tap0,delay=50"}, func(c *Config) { c.QNX.DelayMS = 50 }, oBase},
		{"-o repeated", []string{"-o", "if=tap0", "-o", "delay=30"}, func(c *Config) { c.QNX.DelayMS = 30 }, oBase},
		{"-o same value twice", []string{"-o", "if=tap0,delay=30,delay=30", "-o", "if=tap0,debug,debug"}, func(c *Config) { c.QNX.DelayMS, c.Verbose = 30, true }, oBase},
		{"-i same value twice", []string{"-i", "tap0", "-i", "tap0"}, func(*Config) {}, base},
		{"manual example", []string{"-o", "if=en0,ip=169.254.20.20,debug,delay=200,abandon"}, func(c *Config) {
			c.Iface, c.Initial, c.Verbose, c.QNX.DelayMS, c.Defend = "en0", ip, true, 200, acd.Abandon
		}, oBase},
		// -o combined with flags.
		{"-o with same -i", []string{"-i", "tap0", "-o", "if=tap0"}, func(c *Config) {}, oBase},
		{"-o with -i only", []string{"-i", "tap0", "-o", "debug"}, func(c *Config) { c.Verbose = true }, oBase},
		{"-s overrides ip=", []string{"-o", "if=tap0,ip=169.254.20.20", "-s", "169.254.30.30"}, func(c *Config) {
			c.Initial = netip.MustParseAddr("169.254.30.30")
			c.Notices = []string{"-s 169.254.30.30 overrides -o ip=169.254.20.20"}
		}, oBase},
		{"-s equal to ip=", []string{"-o", "if=tap0,ip=169.254.20.20", "-s", "169.254.20.20"}, func(c *Config) { c.Initial = ip }, oBase},
		{"-f overrides old", []string{"-o", "if=tap0,old", "-f"}, func(c *Config) {
			c.Notices = []string{"-f overrides -o old: the link-local address is kept when a routable one exists"}
		}, oBase},
		{"-d with -o", []string{"-d", "-o", "if=tap0"}, func(c *Config) { c.Defend = acd.Abandon }, oBase},
		{"-d=false overrides abandon", []string{"-d=false", "-o", "if=tap0,abandon"}, func(c *Config) {
			c.Notices = []string{"-d=false overrides -o abandon"}
		}, oBase},
		{"-o with -w and -p", []string{"-o", "if=tap0,delay=50", "-w", "1", "-p", "2"}, func(c *Config) {
			c.QNX.DelayMS, c.QNX.WaitSeconds, c.QNX.Probes = 50, 1, 2
		}, oBase},
		// Long flags.
		{"-create", []string{"-i", "tap0", "-create"}, func(c *Config) { c.Create = true }, base},
		{"--create", []string{"-i", "tap0", "--create"}, func(c *Config) { c.Create = true }, base},
		{"-mac", []string{"-i", "tap0", "-mac", "02:00:00:00:00:01"}, func(c *Config) { c.MAC = acd.MAC{2, 0, 0, 0, 0, 1} }, base},
		{"-mac dashes", []string{"-i", "tap0", "-mac=02-aa-bb-cc-dd-ee"}, func(c *Config) { c.MAC = acd.MAC{2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee} }, base},
		{"-state-dir", []string{"-i", "tap0", "-state-dir", "/run/autoipd/"}, func(c *Config) { c.StateDir = "/run/autoipd" }, base},
		{"-hook", []string{"-i", "tap0", "-hook", "/etc/autoipd.action"}, func(c *Config) { c.Hook = "/etc/autoipd.action" }, base},
		{"-hook-timeout", []string{"-i", "tap0", "-hook-timeout", "2s"}, func(c *Config) { c.HookTimeout = 2 * time.Second }, base},
		{"-log-format json", []string{"-i", "tap0", "-log-format", "json"}, func(c *Config) { c.LogFormat = "json" }, base},
		{"-log-format text", []string{"-i", "tap0", "-log-format", "text"}, func(c *Config) {}, base},
		{"-wait", []string{"-i", "tap0", "-wait"}, func(c *Config) { c.Wait = true }, base},
		{"-wait-timeout", []string{"-i", "tap0", "-wait", "-wait-timeout", "30s"}, func(c *Config) { c.Wait = true; c.WaitTimeout = 30 * time.Second }, base},
		{"-wait-timeout 0", []string{"-i", "tap0", "-wait", "-wait-timeout", "0"}, func(c *Config) { c.Wait = true }, base},
		{"-pcap", []string{"-i", "tap0", "-pcap", "/tmp/x.pcap"}, func(c *Config) { c.Pcap = "/tmp/x.pcap" }, base},
		{"-status", []string{"-status", "-i", "tap0"}, func(c *Config) { c.Status = true }, base},
		{"-seed", []string{"-i", "tap0", "-seed", "42"}, func(c *Config) { c.Seed = 42 }, base},
		{"-seed hex", []string{"-i", "tap0", "-seed", "0xdeadbeef"}, func(c *Config) { c.Seed = 0xdeadbeef }, base},
		{"-seed max", []string{"-i", "tap0", "-seed", "18446744073709551615"}, func(c *Config) { c.Seed = 1<<64 - 1 }, base},
		{"-check-interval", []string{"-i", "tap0", "-check-interval", "100ms"}, func(c *Config) { c.CheckInterval = 100 * time.Millisecond }, base},
		{"-addr", []string{"-i", "tap0", "-addr", "192.0.2.10/24", "-addr", "198.51.100.1/24"}, func(c *Config) {
			c.Addrs = []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("198.51.100.1/24")}
		}, base},
		{"-- at end", []string{"-i", "tap0", "--"}, func(c *Config) {}, base},
		// DHCP and run-time addresses.
		{"-dhcp", []string{"-i", "tap0", "-dhcp"}, func(c *Config) { c.DHCP = true }, base},
		{"-o dhcp", []string{"-o", "if=tap0,dhcp"}, func(c *Config) { c.DHCP = true }, oBase},
		{"-dhcp tuned", []string{"-i", "tap0", "-dhcp", "-dhcp-fallback", "0", "-dhcp-keep-lease", "-dhcp-hostname", "box-1"}, func(c *Config) {
			c.DHCP, c.DHCPFallback, c.DHCPKeepLease, c.DHCPHostname = true, 0, true, "box-1"
		}, base},
		{"-dhcp-init-delay", []string{"-i", "tap0", "-dhcp", "-dhcp-init-delay", "10s"}, func(c *Config) { c.DHCP, c.DHCPInitDelay = true, 10*time.Second }, base},
		{"-alias", []string{"-i", "tap0", "-alias", "10.0.0.1/24"}, func(c *Config) { c.Alias = netip.MustParsePrefix("10.0.0.1/24") }, base},
		{"-delete", []string{"-i", "tap0", "-delete", "10.0.0.1"}, func(c *Config) { c.Delete = netip.MustParseAddr("10.0.0.1") }, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.args)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			want := tt.base()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse(%q):\n got %+v\nwant %+v", tt.args, *got, want)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // substrings of the message
	}{
		{"no interface", nil, []string{"-i IFACE"}},
		{"-dhcp-fallback without -dhcp", []string{"-i", "tap0", "-dhcp-fallback", "5s"}, []string{"-dhcp-fallback", "without -dhcp"}},
		{"-dhcp-fallback negative", []string{"-i", "tap0", "-dhcp", "-dhcp-fallback", "-1s"}, []string{`"-1s"`, "0s..1h0m0s"}},
		{"-dhcp-fallback too long", []string{"-i", "tap0", "-dhcp", "-dhcp-fallback", "2h"}, []string{`"2h"`, "0s..1h0m0s"}},
		{"-dhcp-hostname bad", []string{"-i", "tap0", "-dhcp", "-dhcp-hostname", "a b"}, []string{`"a b"`, "host name"}},
		{"-addr same address twice", []string{"-i", "tap0", "-addr", "10.0.0.1/24", "-addr", "10.0.0.1/16"}, []string{"10.0.0.1 is already given as -addr 10.0.0.1/24"}},
		{"-dhcp-init-delay too long", []string{"-i", "tap0", "-dhcp", "-dhcp-init-delay", "11s"}, []string{`"11s"`, "1ms..10s"}},
		{"-dhcp-init-delay zero", []string{"-i", "tap0", "-dhcp", "-dhcp-init-delay", "0"}, []string{`"0"`, "1ms..10s"}},
		{"-dhcp-init-delay without -dhcp", []string{"-i", "tap0", "-dhcp-init-delay", "5s"}, []string{"-dhcp-init-delay", "without -dhcp"}},
		{"-alias link-local", []string{"-i", "tap0", "-alias", "169.254.1.1/16"}, []string{"169.254.1.1", "link-local"}},
		{"-alias no prefix", []string{"-i", "tap0", "-alias", "10.0.0.1"}, []string{`"10.0.0.1"`, "prefix length"}},
		{"-delete bad", []string{"-i", "tap0", "-delete", "x"}, []string{`"x"`, "IPv4 address"}},
		{"-alias with -status", []string{"-i", "tap0", "-status", "-alias", "10.0.0.1/24"}, []string{"cannot be combined"}},
		{"-alias with -delete", []string{"-i", "tap0", "-delete", "10.0.0.2", "-alias", "10.0.0.1/24"}, []string{"cannot be combined"}},
		{"positional", []string{"-i", "tap0", "extra"}, []string{`"extra"`}},
		{"unknown flag", []string{"-i", "tap0", "-x"}, []string{"-x"}},
		{"unknown cluster", []string{"-i", "tap0", "-dxv"}, []string{"-dxv"}},
		{"-a 0", []string{"-i", "tap0", "-a", "0"}, []string{`"0"`, "-a", "1..100"}},
		{"-a 101", []string{"-i", "tap0", "-a", "101"}, []string{`"101"`, "1..100"}},
		{"-a word", []string{"-i", "tap0", "-a", "two"}, []string{`"two"`, "1..100"}},
		{"-a missing", []string{"-i", "tap0", "-a"}, []string{"-a"}},
		{"-d=maybe", []string{"-i", "tap0", "-d=maybe"}, []string{`"maybe"`, "true or false"}},
		{"-i empty", []string{"-i", ""}, []string{"-i", "empty"}},
		{"-i slash", []string{"-i", "a/b"}, []string{`"a/b"`, "'/'"}},
		{"-i too long", []string{"-i", "abcdefghijklmnop"}, []string{"abcdefghijklmnop", "15 bytes"}},
		{"-i dots", []string{"-i", ".."}, []string{`".."`}},
		{"-p 0", []string{"-i", "tap0", "-p", "0"}, []string{`"0"`, "-p", "1..100"}},
		{"-p -1", []string{"-i", "tap0", "-p", "-1"}, []string{`"-1"`, "1..100"}},
		{"-s garbage", []string{"-i", "tap0", "-s", "1.2.3"}, []string{`"1.2.3"`, "169.254.1.0..169.254.254.255"}},
		{"-s ipv6", []string{"-i", "tap0", "-s", "fe80::1"}, []string{"fe80::1", "IPv4"}},
		{"-s reserved low", []string{"-i", "tap0", "-s", "169.254.0.1"}, []string{"169.254.0.1", "169.254.1.0..169.254.254.255"}},
		{"-s reserved high", []string{"-i", "tap0", "-s", "169.254.255.1"}, []string{"169.254.255.1", "169.254.1.0..169.254.254.255"}},
		{"-s routable", []string{"-i", "tap0", "-s", "10.0.0.1"}, []string{"10.0.0.1", "outside"}},
		{"-t -1", []string{"-i", "tap0", "-t", "-1"}, []string{`"-1"`, "-t", "0..3600"}},
		{"-t 3601", []string{"-i", "tap0", "-t", "3601"}, []string{`"3601"`, "0..3600"}},
		{"-w 0", []string{"-i", "tap0", "-w", "0"}, []string{`"0"`, "-w", "1..60"}},
		{"-w 61", []string{"-i", "tap0", "-w", "61"}, []string{`"61"`, "1..60"}},
		{"-w 1.5", []string{"-i", "tap0", "-w", "1.5"}, []string{`"1.5"`, "1..60"}},
		{"-v=x", []string{"-i", "tap0", "-v=x"}, []string{`"x"`, "-v"}},
		// -o.
		{"-o unknown", []string{"-o", "if=tap0,fast"}, []string{`"fast"`, "known options: if, ip, debug, abandon, delay, force, old, route"}},
		{"-o if empty", []string{"-o", "if="}, []string{"if", "needs a value"}},
		{"-o if missing value", []string{"-o", "if"}, []string{"if", "needs a value"}},
		{"-o if bad", []string{"-o", "if=a b"}, []string{"if=a b", "white space"}},
		{"-o ip bad", []string{"-o", "if=tap0,ip=169.254.0.5"}, []string{"ip=169.254.0.5", "169.254.1.0..169.254.254.255"}},
		{"-o ip garbage", []string{"-o", "if=tap0,ip=x"}, []string{"ip=x", "dotted"}},
		{"-o ip empty", []string{"-o", "if=tap0,ip="}, []string{"ip", "needs a value"}},
		{"-o delay 0", []string{"-o", "if=tap0,delay=0"}, []string{"delay=0", "1..8000"}},
		{"-o delay 8001", []string{"-o", "if=tap0,delay=8001"}, []string{"delay=8001", "1..8000"}},
		{"-o delay word", []string{"-o", "if=tap0,delay=fast"}, []string{"delay=fast", "1..8000"}},
		{"-o delay no value", []string{"-o", "if=tap0,delay"}, []string{"delay", "needs a value"}},
		{"-o debug=1", []string{"-o", "if=tap0,debug=1"}, []string{"debug=1", "takes no value"}},
		{"-o abandon=yes", []string{"-o", "if=tap0,abandon=yes"}, []string{"abandon=yes", "takes no value"}},
		{"-o force=1", []string{"-o", "if=tap0,force=1"}, []string{"force=1", "takes no value"}},
		{"-o old=1", []string{"-o", "if=tap0,old=1"}, []string{"old=1", "takes no value"}},
		{"-o route=1", []string{"-o", "if=tap0,route=1"}, []string{"route=1", "takes no value"}},
		{"-o missing", []string{"-i", "tap0", "-o"}, []string{"-o"}},
		{"-i vs if=", []string{"-i", "tap0", "-o", "if=tap1"}, []string{"-i tap0", "if=tap1"}},
		// Issue 11 item 12: a single-valued option given twice with different
		// values, and an empty -o, are refused instead of taking the last.
		{"-i twice", []string{"-i", "a", "-i", "b"}, []string{"-i", `"a"`, `"b"`, "give it once"}},
		{"-a twice", []string{"-i", "tap0", "-a", "2", "-a", "3"}, []string{"-a", `"2"`, `"3"`}},
		{"-d then -d=false", []string{"-i", "tap0", "-d", "-d=false"}, []string{"-d", `"false"`}},
		{"-state-dir twice", []string{"-i", "tap0", "-state-dir", "/a", "-state-dir", "/b"}, []string{"-state-dir", `"/a"`, `"/b"`}},
		{"-o if twice", []string{"-o", "if=a,if=b"}, []string{"if=a", "if=b", "give it once"}},
		{"-o delay twice", []string{"-o", "if=tap0,delay=30,delay=40"}, []string{"delay=30", "delay=40"}},
		{"-o if across -o", []string{"-o", "if=a", "-o", "if=b"}, []string{"if=a", "if=b"}},
		{"-o empty", []string{"-o", ""}, []string{"-o", "no option"}},
		{"-o only commas", []string{"-o", " , ,"}, []string{"-o", "no option"}},
		// Long flags.
		{"-mac bad", []string{"-i", "tap0", "-mac", "02:00:00:00:00"}, []string{"02:00:00:00:00", "six hex bytes"}},
		{"-mac multicast", []string{"-i", "tap0", "-mac", "01:00:5e:00:00:01"}, []string{"01:00:5e:00:00:01", "unicast"}},
		{"-mac zero", []string{"-i", "tap0", "-mac", "00:00:00:00:00:00"}, []string{"00:00:00:00:00:00", "unicast"}},
		{"-mac broadcast", []string{"-i", "tap0", "-mac", "ff:ff:ff:ff:ff:ff"}, []string{"unicast"}},
		{"-state-dir empty", []string{"-i", "tap0", "-state-dir", ""}, []string{"-state-dir", "directory"}},
		{"-hook empty", []string{"-i", "tap0", "-hook", ""}, []string{"-hook", "executable"}},
		{"-hook-timeout 0", []string{"-i", "tap0", "-hook-timeout", "0s"}, []string{`"0s"`, "1ms..1h0m0s"}},
		{"-hook-timeout 2h", []string{"-i", "tap0", "-hook-timeout", "2h"}, []string{`"2h"`, "1ms..1h0m0s"}},
		{"-hook-timeout word", []string{"-i", "tap0", "-hook-timeout", "soon"}, []string{`"soon"`, "duration"}},
		{"-log-format xml", []string{"-i", "tap0", "-log-format", "xml"}, []string{`"xml"`, "text or json"}},
		{"-wait-timeout bad", []string{"-i", "tap0", "-wait", "-wait-timeout", "-1s"}, []string{`"-1s"`, "0 (no limit)"}},
		{"-wait-timeout 25h", []string{"-i", "tap0", "-wait", "-wait-timeout", "25h"}, []string{`"25h"`, "24h0m0s"}},
		{"-wait-timeout without -wait", []string{"-i", "tap0", "-wait-timeout", "1s"}, []string{"-wait-timeout", "without -wait"}},
		{"-status with -wait", []string{"-i", "tap0", "-status", "-wait"}, []string{"-status", "-wait"}},
		{"-wait=maybe", []string{"-i", "tap0", "-wait=maybe"}, []string{`"maybe"`}},
		{"-pcap empty", []string{"-i", "tap0", "-pcap", ""}, []string{"-pcap", "file"}},
		{"-seed 0", []string{"-i", "tap0", "-seed", "0"}, []string{`"0"`, "1..18446744073709551615"}},
		{"-seed negative", []string{"-i", "tap0", "-seed", "-5"}, []string{`"-5"`, "1..18446744073709551615"}},
		{"-seed too big", []string{"-i", "tap0", "-seed", "18446744073709551616"}, []string{"18446744073709551616", "1.."}},
		{"-check-interval small", []string{"-i", "tap0", "-check-interval", "1ms"}, []string{`"1ms"`, "10ms..1m0s"}},
		{"-check-interval big", []string{"-i", "tap0", "-check-interval", "2m"}, []string{`"2m"`, "10ms..1m0s"}},
		{"-addr link-local", []string{"-i", "tap0", "-addr", "169.254.3.3/16"}, []string{"169.254.3.3", "routable"}},
		{"-addr no prefix", []string{"-i", "tap0", "-addr", "192.0.2.1"}, []string{`"192.0.2.1"`, "prefix length"}},
		{"-addr ipv6", []string{"-i", "tap0", "-addr", "2001:db8::1/64"}, []string{"2001:db8::1/64", "IPv4"}},
		{"-addr multicast", []string{"-i", "tap0", "-addr", "224.0.0.1/4"}, []string{"224.0.0.1", "routable"}},
		{"-addr network address", []string{"-i", "tap0", "-addr", "10.0.0.0/24"}, []string{"10.0.0.0", "network address of 10.0.0.0/24"}},
		{"-addr broadcast address", []string{"-i", "tap0", "-addr", "10.0.0.255/24"}, []string{"10.0.0.255", "broadcast address of 10.0.0.0/24"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.args)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.args, got)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("Parse(%q) error %v is %T, want *UsageError (exit 2)", tt.args, err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error %q does not mention %q", tt.args, err, w)
				}
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"-i", "tap0", "-h"}} {
		if _, err := Parse(args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("Parse(%q) = %v, want flag.ErrHelp", args, err)
		}
	}
}

// TestR05_DelayMapsToProbeTiming: -o delay= reaches the engine's probe
// timing through autoip.QNXOptions; out-of-range values are refused.
func TestR05_DelayMapsToProbeTiming(t *testing.T) {
	cfg, err := Parse([]string{"-o", "if=tap0,delay=200", "-t", "3"})
	if err != nil {
		t.Fatal(err)
	}
	tm, linkUp, err := cfg.QNX.Timing()
	if err != nil {
		t.Fatal(err)
	}
	if tm.ProbeMax != 200*time.Millisecond || tm.ProbeMin != 100*time.Millisecond || tm.ProbeWait != 100*time.Millisecond {
		t.Errorf("delay=200 gives PROBE_MIN %v PROBE_MAX %v PROBE_WAIT %v, want 100ms 200ms 100ms", tm.ProbeMin, tm.ProbeMax, tm.ProbeWait)
	}
	if linkUp != 3*time.Second {
		t.Errorf("-t 3 gives link-up delay %v, want 3s", linkUp)
	}
	if _, err := Parse([]string{"-o", "if=tap0,delay=9000"}); err == nil {
		t.Error("delay=9000 accepted")
	}
}

// TestR21_RoutablePolicyForms: autoipd yields unless -f; lsm-autoip
// coexists unless old; old,force coexists; force alone is ignored with a
// notice.
func TestR21_RoutablePolicyForms(t *testing.T) {
	tests := []struct {
		args   []string
		yield  bool
		notice string
	}{
		{[]string{"-i", "tap0"}, true, ""},
		{[]string{"-i", "tap0", "-f"}, false, ""},
		{[]string{"-o", "if=tap0"}, false, ""},
		{[]string{"-o", "if=tap0,old"}, true, ""},
		{[]string{"-o", "if=tap0,old,force"}, false, ""},
		{[]string{"-o", "if=tap0,force"}, false, "ignored without old"},
		{[]string{"-o", "if=tap0,old", "-f"}, false, "-f overrides -o old"},
	}
	for _, tt := range tests {
		cfg, err := Parse(tt.args)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.args, err)
		}
		if cfg.YieldToRoutable != tt.yield {
			t.Errorf("Parse(%q).YieldToRoutable = %v, want %v", tt.args, cfg.YieldToRoutable, tt.yield)
		}
		got := strings.Join(cfg.Notices, "; ")
		if (tt.notice == "") != (got == "") || !strings.Contains(got, tt.notice) {
			t.Errorf("Parse(%q) notices %q, want %q", tt.args, got, tt.notice)
		}
	}
}

// TestR16_AbandonForms: -d and -o abandon both select acd.Abandon.
func TestR16_AbandonForms(t *testing.T) {
	for _, args := range [][]string{{"-d", "-i", "tap0"}, {"-o", "if=tap0,abandon"}, {"-dfv", "-i", "tap0"}} {
		cfg, err := Parse(args)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Defend != acd.Abandon {
			t.Errorf("Parse(%q).Defend = %v, want abandon", args, cfg.Defend)
		}
	}
	cfg, _ := Parse([]string{"-i", "tap0"})
	if cfg.Defend != acd.DefendOnce {
		t.Errorf("default Defend = %v, want once", cfg.Defend)
	}
}

// TestR03_InitialAddressForms: ip= and -s give the same first candidate,
// and an address outside the usable range is refused at start-up.
func TestR03_InitialAddressForms(t *testing.T) {
	a, err := Parse([]string{"-o", "if=tap0,ip=169.254.20.20"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]string{"-i", "tap0", "-s", "169.254.20.20"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Initial != b.Initial || a.Initial != netip.MustParseAddr("169.254.20.20") {
		t.Errorf("ip= gives %v, -s gives %v", a.Initial, b.Initial)
	}
	for _, bad := range []string{"169.254.0.0", "169.254.255.255", "192.168.1.1"} {
		if _, err := Parse([]string{"-i", "tap0", "-s", bad}); err == nil {
			t.Errorf("-s %s accepted", bad)
		}
		if _, err := Parse([]string{"-o", "if=tap0,ip=" + bad}); err == nil {
			t.Errorf("ip=%s accepted", bad)
		}
	}
}

func TestExpandArgs(t *testing.T) {
	var cfg Config
	var o []string
	fs := flagSet(&cfg, &o, &cfg.Addrs)
	tests := []struct{ in, want []string }{
		{[]string{"-dfv"}, []string{"-d", "-f", "-v"}},
		{[]string{"-dvi", "tap0"}, []string{"-d", "-v", "-i", "tap0"}},
		{[]string{"-ditap0"}, []string{"-d", "-i", "tap0"}},
		{[]string{"-a3", "-w1"}, []string{"-a", "3", "-w", "1"}},
		{[]string{"-oif=en0,debug"}, []string{"-o", "if=en0,debug"}},
		{[]string{"-status", "-seed", "5"}, []string{"-status", "-seed", "5"}},
		{[]string{"-i", "-dfv"}, []string{"-i", "-dfv"}},
		{[]string{"-dxv"}, []string{"-dxv"}},
		{[]string{"--", "-dfv"}, []string{"--", "-dfv"}},
		{[]string{"x", "-dfv"}, []string{"x", "-dfv"}},
		{[]string{"-create", "-dfv"}, []string{"-create", "-d", "-f", "-v"}},
		{[]string{"-d"}, []string{"-d"}},
	}
	for _, tt := range tests {
		if got := expandArgs(fs, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expandArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEveryFlagDocumented: autoipd -h and the README name every flag the
// parser takes, so none is undocumented.
func TestEveryFlagDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	var o []string
	var addrs []netip.Prefix
	flagSet(&cfg, &o, &addrs).VisitAll(func(f *flag.Flag) {
		name := "-" + f.Name
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `\b`).MatchString(Usage) {
			t.Errorf("autoipd -h does not describe %s", name)
		}
		if !regexp.MustCompile(`(^|[\s\x60(,])` + regexp.QuoteMeta(name) + `\b`).Match(readme) {
			t.Errorf("README.md does not mention %s", name)
		}
	})
}
