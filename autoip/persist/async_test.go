package persist_test

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/persist"
)

// slowStore blocks every Save until released, recording what it saved.
type slowStore struct {
	persist.Memory
	gate  chan struct{}
	mu    sync.Mutex
	saved []int
	fail  error
}

func (s *slowStore) Save(st autoip.SavedState) error {
	<-s.gate
	s.mu.Lock()
	s.saved = append(s.saved, st.Conflicts)
	s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	return s.Memory.Save(st)
}

// R04: a slow disk never blocks the caller of Save; only the latest state
// is written; Close writes the last one before returning.
func TestR04_AsyncSaveDoesNotBlockAndKeepsLatest(t *testing.T) {
	inner := &slowStore{gate: make(chan struct{})}
	a := persist.NewAsync(inner, nil)
	done := make(chan struct{})
	go func() {
		for i := 1; i <= 100; i++ {
			a.Save(autoip.SavedState{Conflicts: i, Addr: netip.MustParseAddr("169.254.1.1")})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Save blocked on a stalled store")
	}
	close(inner.gate) // the disk comes back
	a.Close()
	got, err := inner.Load()
	if err != nil || got.Conflicts != 100 {
		t.Fatalf("after Close the store holds %+v, %v; want the last state (conflicts 100)", got, err)
	}
	if n := len(inner.saved); n > 2 {
		t.Fatalf("%d writes for 100 saves; want the intermediate ones coalesced", n)
	}
	// After Close, Save is synchronous.
	if err := a.Save(autoip.SavedState{Conflicts: 7}); err != nil {
		t.Fatal(err)
	}
	if got, _ := inner.Load(); got.Conflicts != 7 {
		t.Fatalf("synchronous save after Close lost: %+v", got)
	}
}

func TestAsyncReportsErrorsAndLoadFlushes(t *testing.T) {
	inner := &slowStore{gate: make(chan struct{}), fail: errors.New("disk full")}
	close(inner.gate)
	var mu sync.Mutex
	var errs []error
	a := persist.NewAsync(inner, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	defer a.Close()
	a.Save(autoip.SavedState{Conflicts: 1})
	a.Flush()
	mu.Lock()
	n := len(errs)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("onError called %d times, want 1", n)
	}
	inner.fail = nil
	a.Save(autoip.SavedState{Conflicts: 2})
	if got, err := a.Load(); err != nil || got.Conflicts != 2 {
		t.Fatalf("Load after Save = %+v, %v; want the saved state", got, err)
	}
}
