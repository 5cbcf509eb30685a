package autoip_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// R04: the saved "last address" is one this host may still claim. An
// address taken from us by a conflict is dropped from the saved state, so a
// restart does not open by probing a contested address.
func TestR04_AddressLostToConflictIsNotSavedAsLast(t *testing.T) {
	mac := acd.MAC{2, 0, 0, 0, 0, 9}
	other := acd.MAC{2, 0, 0, 0, 0, 10}
	want := netip.MustParseAddr("169.254.9.9")
	e, err := autoip.NewEngine(autoip.Config{HW: mac, Initial: want, Defend: acd.Abandon})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1e6, 0)
	e.Start(now)
	var saved autoip.SavedState
	drain := func() {
		for _, o := range e.AppendOutputs(nil) {
			if o.Kind == autoip.OutSaveState {
				saved = o.Saved
			}
		}
	}
	for e.Status().State != autoip.StateBound {
		d, ok := e.Deadline()
		if !ok {
			t.Fatal("no deadline before bind")
		}
		now = d
		e.HandleTimer(now)
		drain()
	}
	if saved.Addr != want {
		t.Fatalf("saved %v after bind, want %v", saved.Addr, want)
	}
	e.HandleARP(now, acd.BroadcastFrame(acd.Announcement(other, want)))
	drain()
	if saved.Addr == want {
		t.Fatalf("saved state still names %v after losing it to %v", want, other)
	}
	if saved.Conflicts != 1 {
		t.Fatalf("saved conflicts %d, want 1", saved.Conflicts)
	}
}
