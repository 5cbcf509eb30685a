// Package persist stores an autoip.SavedState between runs: the last
// address held, the conflict count and the time of the last attempt, so that
// the last address is tried first after a restart (R04) and MAX_CONFLICTS
// rate limiting survives one (R11).
package persist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/autoip-project/autoip/autoip"
)

// Store loads and saves the engine's SavedState. Implementations must be
// safe for concurrent use.
type Store interface {
	// Load returns the stored state. A missing, empty or corrupt store
	// returns the zero state and an error saying which; callers report the
	// error and carry on, it is never fatal.
	Load() (autoip.SavedState, error)
	// Save replaces the stored state, atomically: a crash leaves either the
	// old state or the new one, never a mix.
	Save(autoip.SavedState) error
}

// Errors Load wraps, to tell the cases apart with errors.Is.
var (
	ErrMissing = errors.New("no saved state")
	ErrEmpty   = errors.New("saved state is empty")
	ErrCorrupt = errors.New("saved state is corrupt")
)

// fileVersion is the format version written in every file.
const fileVersion = 1

// record is the JSON form of a SavedState. Addresses are strings so that the
// file reads well; times are RFC 3339 with nanoseconds.
type record struct {
	Version     int        `json:"version"`
	Address     string     `json:"address,omitempty"`
	Initial     string     `json:"initial,omitempty"`
	Conflicts   int        `json:"conflicts"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
}

// File is a Store in one JSON file. Save writes a temporary file in the same
// directory, fsyncs it, renames it over the old one and fsyncs the
// directory, so the file is never torn.
type File struct {
	path string
	mu   sync.Mutex
}

// NewFile returns a Store kept at path. The directory must exist.
func NewFile(path string) *File { return &File{path: path} }

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Load reads the file. See Store.Load.
func (f *File) Load() (autoip.SavedState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return autoip.SavedState{}, fmt.Errorf("load %s: %w", f.path, ErrMissing)
	case err != nil:
		return autoip.SavedState{}, fmt.Errorf("load %s: %w", f.path, err)
	case len(bytes.TrimSpace(b)) == 0:
		return autoip.SavedState{}, fmt.Errorf("load %s: %w", f.path, ErrEmpty)
	}
	s, err := decode(b)
	if err != nil {
		return autoip.SavedState{}, fmt.Errorf("load %s: %w: %w", f.path, ErrCorrupt, err)
	}
	return s, nil
}

// Save writes s atomically. See Store.Save.
func (f *File) Save(s autoip.SavedState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := encode(s)
	if err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	if err := WriteFileAtomic(f.path, b); err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	return nil
}

func encode(s autoip.SavedState) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err // never write what Load would refuse
	}
	r := record{Version: fileVersion, Conflicts: s.Conflicts}
	if s.Addr.IsValid() {
		r.Address = s.Addr.String()
	}
	if s.Initial.IsValid() {
		r.Initial = s.Initial.String()
	}
	if !s.LastAttempt.IsZero() {
		t := s.LastAttempt.UTC()
		r.LastAttempt = &t
	}
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

func decode(b []byte) (autoip.SavedState, error) {
	var r record
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return autoip.SavedState{}, err
	}
	if len(bytes.TrimSpace(b[d.InputOffset():])) > 0 {
		return autoip.SavedState{}, errors.New("data after the JSON object")
	}
	if r.Version != fileVersion {
		return autoip.SavedState{}, fmt.Errorf("version %d, want %d", r.Version, fileVersion)
	}
	var s autoip.SavedState
	var err error
	if r.Address != "" {
		if s.Addr, err = netip.ParseAddr(r.Address); err != nil {
			return autoip.SavedState{}, fmt.Errorf("address: %w", err)
		}
	}
	if r.Initial != "" {
		if s.Initial, err = netip.ParseAddr(r.Initial); err != nil {
			return autoip.SavedState{}, fmt.Errorf("initial: %w", err)
		}
	}
	s.Conflicts = r.Conflicts
	if r.LastAttempt != nil {
		s.LastAttempt = *r.LastAttempt
	}
	if err := s.Check(); err != nil {
		return autoip.SavedState{}, err
	}
	return s, nil
}

// WriteFileAtomic replaces path with b so that a crash leaves the old
// content or the new, never a mix: a temporary file in the same directory,
// fsync, rename over path, fsync of the directory.
func WriteFileAtomic(path string, b []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Memory is a Store in memory, for tests and simulations. It counts saves.
type Memory struct {
	mu    sync.Mutex
	s     autoip.SavedState
	has   bool
	saves int
}

// Load returns the last saved state, or ErrMissing before the first Save.
func (m *Memory) Load() (autoip.SavedState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.has {
		return autoip.SavedState{}, fmt.Errorf("load memory: %w", ErrMissing)
	}
	return m.s, nil
}

// Save keeps s.
func (m *Memory) Save(s autoip.SavedState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s, m.has = s, true
	m.saves++
	return nil
}

// Saves returns how many times Save was called.
func (m *Memory) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

var (
	_ Store = (*File)(nil)
	_ Store = (*Memory)(nil)
)
