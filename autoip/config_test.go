package autoip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestNewEngineRefusesBadConfig: every configuration error is refused,
// wraps ErrInvalidConfig and names the offending value.
func TestNewEngineRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero MAC", Config{}, "00:00:00:00:00:00"},
		{"broadcast MAC", Config{HW: acd.BroadcastMAC}, "ff:ff:ff:ff:ff:ff"},
		{"multicast MAC", Config{HW: acd.MAC{0x01, 0, 0x5e, 0, 0, 1}}, "01:00:5e:00:00:01"},
		{"negative PROBE_WAIT", Config{HW: ourMAC, Timing: acd.Timing{ProbeWait: -time.Second}}, "PROBE_WAIT"},
		{"PROBE_MIN > PROBE_MAX", Config{HW: ourMAC, Timing: acd.Timing{ProbeMin: 3 * time.Second}}, "PROBE_MIN"},
		{"PROBE_NUM too big", Config{HW: ourMAC, Timing: acd.Timing{ProbeNum: 1001}}, "1001"},
		{"policy", Config{HW: ourMAC, Defend: acd.DefendForever + 1}, "3"},
		{"initial", Config{HW: ourMAC, Initial: mustAddr("169.254.255.255")}, "169.254.255.255"},
		{"link-up delay", Config{HW: ourMAC, LinkUpDelay: -time.Second}, "-1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(tt.cfg)
			if err == nil || e != nil {
				t.Fatalf("NewEngine(%+v) = %v, %v", tt.cfg, e, err)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrInvalidConfig naming %q", err, tt.want)
			}
			// Validate is the check NewEngine makes.
			if verr := tt.cfg.Validate(); verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate() = %v, want NewEngine's %v", verr, err)
			}
		})
	}
}

// TestEngineStartIdempotent: a second Start does nothing; Stop then Start
// starts afresh from the same order.
func TestEngineStartIdempotent(t *testing.T) {
	h := startedHarness(t, testConfig())
	dl, _ := h.e.Deadline()
	if got := h.do(h.e.Start); len(got) != 0 {
		t.Errorf("second Start: %v", got)
	}
	if d, _ := h.e.Deadline(); d != dl {
		t.Error("second Start moved the deadline")
	}
	addr := h.runUntilBound()
	h.do(h.e.Stop)
	h.advance(time.Hour)
	h.do(h.e.Start)
	if got := h.runUntilBound(); got != addr {
		t.Errorf("restart bound %v, want %v", got, addr)
	}
	if s := h.e.Status().Stats; s.Binds != 2 || s.Attempts != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestStringers keeps the names hooks and logs see.
func TestStringers(t *testing.T) {
	for k, want := range map[EventKind]string{
		EventProbe: "PROBE", EventBind: "BIND", EventConflict: "CONFLICT", EventDefend: "DEFEND",
		EventUnbind: "UNBIND", EventStop: "STOP", EventRateLimit: "RATELIMIT", 0: "EVENT(?)",
	} {
		if k.String() != want {
			t.Errorf("EventKind(%d) = %q, want %q", k, k.String(), want)
		}
	}
	for k, want := range map[OutputKind]string{
		OutSendARP: "send-arp", OutAddAddress: "add-address", OutRemoveAddress: "remove-address",
		OutEvent: "event", OutSaveState: "save-state", 0: "output(?)",
	} {
		if k.String() != want {
			t.Errorf("OutputKind(%d) = %q, want %q", k, k.String(), want)
		}
	}
	for s, want := range map[State]string{
		StateStopped: "stopped", StateLinkDown: "link-down", StateSuspended: "suspended", StateWaiting: "waiting",
		StateProbing: "probing", StateAnnouncing: "announcing", StateBound: "bound", 99: "state(?)",
	} {
		if s.String() != want {
			t.Errorf("State(%d) = %q, want %q", s, s.String(), want)
		}
		if s.IsBound() != (s == StateAnnouncing || s == StateBound) {
			t.Errorf("%v.IsBound() = %v", s, s.IsBound())
		}
	}
}
