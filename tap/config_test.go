package tap

import (
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// TestNewLinkRefusesBadConfig: every LinkConfig field NewLink checks is
// refused with the offending value, before any TAP is touched (DeferOpen:
// no root needed). A negative CheckInterval used to be taken as the default.
func TestNewLinkRefusesBadConfig(t *testing.T) {
	good := LinkConfig{Device: Config{Name: "aipcfg0"}, MAC: ourMAC, DeferOpen: true}
	for _, tc := range []struct {
		name string
		edit func(*LinkConfig)
		want string
	}{
		{"empty name", func(c *LinkConfig) { c.Device.Name = "" }, ""},
		{"short MAC", func(c *LinkConfig) { c.MAC = "\x02\x00" }, "not a 6-byte MAC"},
		{"multicast MAC", func(c *LinkConfig) { c.MAC = tcpip.LinkAddress("\x01\x00\x5e\x00\x00\x01") }, "not a unicast MAC"},
		{"zero MAC", func(c *LinkConfig) { c.MAC = tcpip.LinkAddress("\x00\x00\x00\x00\x00\x00") }, "not a unicast MAC"},
		{"MTU too small", func(c *LinkConfig) { c.MTU = MinMTU - 1 }, "LinkConfig.MTU 67 is out of range"},
		{"MTU too large", func(c *LinkConfig) { c.MTU = MaxMTU + 1 }, "is out of range"},
		{"negative CheckInterval", func(c *LinkConfig) { c.CheckInterval = -time.Second }, "LinkConfig.CheckInterval -1s is negative"},
	} {
		cfg := good
		tc.edit(&cfg)
		l, err := NewLink(cfg)
		if err == nil {
			l.Close()
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	l, err := NewLink(good)
	if err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	l.Close()
}
