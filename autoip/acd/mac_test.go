package acd_test

import (
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
)

func TestParseMAC(t *testing.T) {
	good := []struct {
		in   string
		want acd.MAC
	}{
		{"02:00:00:00:00:01", acd.MAC{2, 0, 0, 0, 0, 1}},
		{"02-00-00-00-00-01", acd.MAC{2, 0, 0, 0, 0, 1}},
		{"ff:ff:ff:ff:ff:ff", acd.BroadcastMAC},
		{"AA:bb:Cc:dD:0e:F0", acd.MAC{0xaa, 0xbb, 0xcc, 0xdd, 0x0e, 0xf0}},
		{"00:00:00:00:00:00", acd.MAC{}},
		{"01:23:45:67:89:ab", acd.MAC{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := acd.ParseMAC(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseMAC(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	bad := []string{
		"02:00-00:00:00:01", // mixed separators, as net.ParseMAC refuses
		"",
		"02:00:00:00:00",
		"02:00:00:00:00:01:02",
		"02:00:00:00:00:1",
		"2:00:00:00:00:001",
		"020:00:00:00:00:1",
		"02:00:00:00:00:0g",
		"0x:00:00:00:00:01",
		"02 00 00 00 00 01",
		"0200.0000.0001",
		"020000000001",
		" 02:00:00:00:00:01",
		"02:00:00:00:00:01 ",
		"02::00:00:00:00:01",
		":02:00:00:00:00:01",
		"02:00:00:00:00:é",
		"02:00:00:00:00:01:02:03:04:05",
	}
	for _, in := range bad {
		t.Run("bad/"+in, func(t *testing.T) {
			got, err := acd.ParseMAC(in)
			if err == nil {
				t.Fatalf("ParseMAC(%q) = %v, want error", in, got)
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(in)) {
				t.Errorf("error %q does not quote the input", err)
			}
		})
	}
}

// TestMAC_StringRoundTrip checks the format against net.HardwareAddr and
// that ParseMAC reads it back, for fixed and random addresses.
func TestMAC_StringRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	macs := []acd.MAC{{}, acd.BroadcastMAC, selfMAC, mcastMAC, {0x0a, 0xb0, 0xc9, 0x10, 0x01, 0xff}}
	for range 500 {
		var m acd.MAC
		for i := range m {
			m[i] = byte(rng.Uint32())
		}
		macs = append(macs, m)
	}
	for _, m := range macs {
		s := m.String()
		if want := net.HardwareAddr(m[:]).String(); s != want {
			t.Fatalf("String() = %q, want %q", s, want)
		}
		back, err := acd.ParseMAC(s)
		if err != nil || back != m {
			t.Fatalf("ParseMAC(%q) = %v, %v; want %v", s, back, err, m)
		}
		dashed := strings.ReplaceAll(strings.ToUpper(s), ":", "-")
		if back, err := acd.ParseMAC(dashed); err != nil || back != m {
			t.Fatalf("ParseMAC(%q) = %v, %v; want %v", dashed, back, err, m)
		}
	}
}

func TestMAC_Predicates(t *testing.T) {
	tests := []struct {
		m                           acd.MAC
		zero, bcast, mcast, unicast bool
	}{
		{acd.MAC{}, true, false, false, false},
		{acd.BroadcastMAC, false, true, true, false},
		{mcastMAC, false, false, true, false},
		{acd.MAC{0x33, 0x33, 0, 0, 0, 1}, false, false, true, false},
		{acd.MAC{0x01, 0, 0, 0, 0, 0}, false, false, true, false},
		{selfMAC, false, false, false, true},
		{acd.MAC{0, 0, 0, 0, 0, 1}, false, false, false, true},
		{acd.MAC{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}, false, false, false, true},
		{acd.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, false, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.m.String(), func(t *testing.T) {
			if got := tt.m.IsZero(); got != tt.zero {
				t.Errorf("IsZero = %v", got)
			}
			if got := tt.m.IsBroadcast(); got != tt.bcast {
				t.Errorf("IsBroadcast = %v", got)
			}
			if got := tt.m.IsMulticast(); got != tt.mcast {
				t.Errorf("IsMulticast = %v", got)
			}
			if got := tt.m.IsUnicast(); got != tt.unicast {
				t.Errorf("IsUnicast = %v", got)
			}
		})
	}
}
