package persist

import (
	"sync"

	"github.com/autoip-project/autoip/autoip"
)

// Async makes Save of another Store non-blocking: it keeps only the latest
// state and one goroutine writes it. An fsync can take a second on a slow
// disk; done on the protocol path it would delay conflict handling and
// probes by as much. Load and Flush wait; Close flushes and stops the
// goroutine. It is safe for concurrent use.
type Async struct {
	inner   Store
	onError func(error)

	mu      sync.Mutex
	cond    *sync.Cond
	pending *autoip.SavedState // latest state not yet handed to inner
	writing bool
	closed  bool
	done    chan struct{}
}

var _ Store = (*Async)(nil)

// NewAsync wraps inner. onError, if set, is called (on the writer
// goroutine) with each failed Save.
func NewAsync(inner Store, onError func(error)) *Async {
	a := &Async{inner: inner, onError: onError, done: make(chan struct{})}
	a.cond = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// Load flushes pending saves and loads from the inner store.
func (a *Async) Load() (autoip.SavedState, error) {
	a.Flush()
	return a.inner.Load()
}

// Save queues s, replacing any state not written yet, and returns at once.
// After Close it saves synchronously.
func (a *Async) Save(s autoip.SavedState) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return a.inner.Save(s)
	}
	a.pending = &s
	a.cond.Broadcast()
	a.mu.Unlock()
	return nil
}

// Flush waits until every queued state is written.
func (a *Async) Flush() {
	a.mu.Lock()
	for a.pending != nil || a.writing {
		a.cond.Wait()
	}
	a.mu.Unlock()
}

// Close flushes and stops the writer. Later Saves are synchronous.
func (a *Async) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.cond.Broadcast()
	a.mu.Unlock()
	<-a.done
	return nil
}

func (a *Async) run() {
	defer close(a.done)
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		for a.pending == nil && !a.closed {
			a.cond.Wait()
		}
		if a.pending == nil { // closed and drained
			a.cond.Broadcast()
			return
		}
		s := *a.pending
		a.pending, a.writing = nil, true
		a.mu.Unlock()
		err := a.inner.Save(s)
		a.mu.Lock()
		a.writing = false
		a.cond.Broadcast()
		if err != nil && a.onError != nil {
			a.mu.Unlock()
			a.onError(err)
			a.mu.Lock()
		}
	}
}
