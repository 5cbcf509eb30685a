package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/dhcp"
	"github.com/autoip-project/autoip/stack"
)

// stateFileLimit bounds the saved-state file; a real one is ~150 bytes.
const stateFileLimit = 64 << 10

// stateFile is the daemon's persist.Store: persist.File's format and
// atomic saves, with a Load that cannot be turned against the daemon (see
// openRegular; a FIFO used to hang start-up and a link to /dev/zero to
// exhaust memory), that warns about an unusable file with a reason free of
// its content, and with the outcome of the last Save kept for the exit
// code.
type stateFile struct {
	path string
	file *persist.File
	log  *slog.Logger

	mu      sync.Mutex
	saveErr error             // the last Save's error
	unsaved autoip.SavedState // what it failed to write
}

func newStateFile(path string, log *slog.Logger) *stateFile {
	return &stateFile{path: path, file: persist.NewFile(path), log: log}
}

// Load implements persist.Store.
func (s *stateFile) Load() (autoip.SavedState, error) {
	st, err := s.load()
	if err != nil && !errors.Is(err, persist.ErrMissing) {
		s.log.Warn("ignoring the saved state; starting afresh without the last address and conflict count",
			"file", s.path, "reason", err.Error())
	}
	return st, err
}

func (s *stateFile) load() (autoip.SavedState, error) {
	f, err := openRegular(s.path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return autoip.SavedState{}, fmt.Errorf("load %s: %w", s.path, persist.ErrMissing)
	}
	if err != nil {
		return autoip.SavedState{}, err
	}
	defer f.Close()
	b, err := readLimited(f, s.path, stateFileLimit)
	if err != nil {
		return autoip.SavedState{}, err
	}
	// persist.File reads by path only; /proc/self/fd/N reopens the very
	// file checked above, whatever the path names by now.
	st, err := persist.NewFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd())).Load()
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, persist.ErrEmpty):
		return st, fmt.Errorf("%s is empty: %w", s.path, persist.ErrEmpty)
	case errors.Is(err, persist.ErrCorrupt):
		return st, fmt.Errorf("%s %s: %w", s.path, describeCorrupt(b), persist.ErrCorrupt)
	}
	return st, fmt.Errorf("load %s: %w", s.path, err)
}

// describeCorrupt says what is wrong with a state file persist refused,
// without quoting it (persist's errors may).
func describeCorrupt(b []byte) string {
	var v struct{ Version *int }
	if json.Unmarshal(b, &v) == nil && v.Version != nil && *v.Version != 1 {
		return fmt.Sprintf("is format version %d; this autoipd reads version 1", *v.Version)
	}
	return fmt.Sprintf("is not saved state this autoipd wrote (%d bytes: invalid JSON, unknown fields or values out of range)", len(b))
}

// Save implements persist.Store.
func (s *stateFile) Save(st autoip.SavedState) error {
	err := s.file.Save(st)
	s.mu.Lock()
	s.saveErr, s.unsaved = err, st
	s.mu.Unlock()
	return err
}

// lost returns the state the last Save failed to write and its error, or
// a nil error when the last Save succeeded.
func (s *stateFile) lost() (autoip.SavedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsaved, s.saveErr
}

// openGate is the client's store while the daemon starts: the client is
// attached before the TAP is opened, and a daemon that then cannot open the
// TAP (busy, say) must leave nothing behind: no state file, no hook run.
// Until open, saves are held (the last one wins) and hook calls queued;
// open writes and runs them, in order; after open everything goes straight
// through. A daemon that never opens drops them.
type openGate struct {
	inner persist.Store

	mu      sync.Mutex
	opened  bool
	pending *autoip.SavedState
	queued  []func()
}

func (g *openGate) Load() (autoip.SavedState, error) { return g.inner.Load() }

func (g *openGate) Save(s autoip.SavedState) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		g.pending = &s
		return nil
	}
	return g.inner.Save(s)
}

// whenOpen runs f now if the gate is open, else at open. f must not block
// (it runs under the gate's lock, which keeps the order).
func (g *openGate) whenOpen(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		g.queued = append(g.queued, f)
		return
	}
	f()
}

// open lets saves and hooks through, the held ones first.
func (g *openGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = true
	if g.pending != nil {
		_ = g.inner.Save(*g.pending) // an Async store: its writer reports errors
		g.pending = nil
	}
	for _, f := range g.queued {
		f()
	}
	g.queued = nil
}

// gatedLeases is the DHCP client's lease store behind the open gate: a
// daemon that cannot open the TAP must not remove or write the lease file
// either. A save held until open reports its error in the log.
type gatedLeases struct {
	gate  *openGate
	inner stack.LeaseStore
	log   *slog.Logger
}

func (g *gatedLeases) LoadLease() (dhcp.Lease, error) { return g.inner.LoadLease() }

func (g *gatedLeases) SaveLease(l dhcp.Lease) error {
	g.gate.mu.Lock()
	opened := g.gate.opened
	if !opened {
		g.gate.queued = append(g.gate.queued, func() {
			if err := g.inner.SaveLease(l); err != nil {
				g.log.Error("saving the DHCP lease failed", "err", err)
			}
		})
	}
	g.gate.mu.Unlock()
	if opened {
		return g.inner.SaveLease(l)
	}
	return nil
}
