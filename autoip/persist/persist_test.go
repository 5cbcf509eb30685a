package persist_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/persist"
)

// stateFile returns the path of a state file in a fresh directory.
func stateFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state.json")
}

// sameState compares two states field by field; times are compared with
// Equal, since a round trip through the file normalises them to UTC and
// drops the monotonic reading.
func sameState(a, b autoip.SavedState) bool {
	return a.Addr == b.Addr && a.Initial == b.Initial && a.Conflicts == b.Conflicts &&
		a.LastAttempt.Equal(b.LastAttempt) && a.LastAttempt.IsZero() == b.LastAttempt.IsZero()
}

func isZeroState(s autoip.SavedState) bool {
	return sameState(s, autoip.SavedState{})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestR04_FileRoundTripsEveryField saves and loads states covering every
// field, including a zero LastAttempt and an invalid (absent) Addr.
func TestR04_FileRoundTripsEveryField(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		s    autoip.SavedState
	}{
		{"zero state", autoip.SavedState{}},
		{"every field", autoip.SavedState{
			Addr:        netip.MustParseAddr("169.254.17.42"),
			Initial:     netip.MustParseAddr("169.254.20.20"),
			Conflicts:   7,
			LastAttempt: time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC),
		}},
		{"non-UTC time with nanoseconds", autoip.SavedState{
			Addr:        netip.MustParseAddr("169.254.100.1"),
			LastAttempt: time.Date(2031, 7, 1, 12, 0, 0, 1, cet),
		}},
		{"time with monotonic reading", autoip.SavedState{
			Addr:        netip.MustParseAddr("169.254.100.2"),
			LastAttempt: time.Now(), // test code may read the clock
		}},
		{"zero LastAttempt", autoip.SavedState{
			Addr:      netip.MustParseAddr("169.254.1.1"),
			Initial:   netip.MustParseAddr("169.254.2.2"),
			Conflicts: 1,
		}},
		{"invalid Addr", autoip.SavedState{
			Initial:     netip.MustParseAddr("169.254.3.3"),
			Conflicts:   12,
			LastAttempt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		}},
		{"only conflicts", autoip.SavedState{Conflicts: 10}},
		{"lowest usable address", autoip.SavedState{Addr: netip.MustParseAddr("169.254.1.0"), Initial: netip.MustParseAddr("169.254.1.0")}},
		{"highest usable address", autoip.SavedState{Addr: netip.MustParseAddr("169.254.254.255"), Initial: netip.MustParseAddr("169.254.254.255")}},
		{"large conflict count", autoip.SavedState{Conflicts: 1 << 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := persist.NewFile(stateFile(t))
			if err := f.Save(tt.s); err != nil {
				t.Fatalf("Save(%+v): %v", tt.s, err)
			}
			got, err := f.Load()
			if err != nil {
				t.Fatalf("Load after Save(%+v): %v", tt.s, err)
			}
			if !sameState(got, tt.s) {
				t.Errorf("Load = %+v, want %+v", got, tt.s)
			}
			// A second File on the same path (a restarted process) sees
			// the same state.
			got2, err := persist.NewFile(f.Path()).Load()
			if err != nil || !sameState(got2, tt.s) {
				t.Errorf("Load from a new File = %+v, %v; want %+v, nil", got2, err, tt.s)
			}
		})
	}
}

// TestR04_FileMissingIsReportedNotFatal: a missing file gives the zero
// state and an error wrapping ErrMissing that names the path.
func TestR04_FileMissingIsReportedNotFatal(t *testing.T) {
	path := stateFile(t)
	f := persist.NewFile(path)
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}
	s, err := f.Load()
	if !errors.Is(err, persist.ErrMissing) {
		t.Fatalf("Load of missing file: err = %v, want ErrMissing", err)
	}
	if errors.Is(err, persist.ErrCorrupt) || errors.Is(err, persist.ErrEmpty) {
		t.Errorf("Load of missing file: err = %v also matches ErrCorrupt or ErrEmpty", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if !isZeroState(s) {
		t.Errorf("Load of missing file = %+v, want zero state", s)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created the file: stat err = %v", err)
	}
}

// TestR04_FileEmptyIsReportedNotFatal: an empty or whitespace-only file
// gives the zero state and an error wrapping ErrEmpty.
func TestR04_FileEmptyIsReportedNotFatal(t *testing.T) {
	for _, content := range []string{"", " ", "\n", " \t\r\n\n  \n"} {
		t.Run(fmt.Sprintf("%q", content), func(t *testing.T) {
			path := stateFile(t)
			writeFile(t, path, content)
			s, err := persist.NewFile(path).Load()
			if !errors.Is(err, persist.ErrEmpty) {
				t.Fatalf("Load of %q: err = %v, want ErrEmpty", content, err)
			}
			if errors.Is(err, persist.ErrCorrupt) || errors.Is(err, persist.ErrMissing) {
				t.Errorf("err = %v also matches ErrCorrupt or ErrMissing", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path %q", err, path)
			}
			if !isZeroState(s) {
				t.Errorf("Load = %+v, want zero state", s)
			}
		})
	}
}

// TestR04_FileCorruptIsReportedNotFatal: every kind of damaged content
// gives the zero state and an error wrapping ErrCorrupt that names the file
// and the offending value.
func TestR04_FileCorruptIsReportedNotFatal(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // substrings of the error besides the path
	}{
		{"truncated JSON", `{"version": 1, "address": "169.254.1.1"`, []string{"unexpected EOF"}},
		{"not JSON", "hello, world\n", []string{"invalid character 'h'"}},
		{"binary junk", "\x00\x01\x02\xff", []string{"invalid character"}},
		{"JSON null", "null", []string{"version 0"}},
		{"JSON array", `[1, 2, 3]`, []string{"array"}},
		{"unknown field", `{"version": 1, "colour": "red"}`, []string{`"colour"`}},
		{"missing version", `{"address": "169.254.1.1", "conflicts": 0}`, []string{"version 0"}},
		{"wrong version", `{"version": 2, "address": "169.254.1.1", "conflicts": 0}`, []string{"version 2"}},
		{"negative version", `{"version": -1}`, []string{"version -1"}},
		{"version as string", `{"version": "1"}`, []string{"version"}},
		{"address in 169.254.0.x", `{"version": 1, "address": "169.254.0.5"}`, []string{"169.254.0.5"}},
		{"address in 169.254.255.x", `{"version": 1, "address": "169.254.255.1"}`, []string{"169.254.255.1"}},
		{"routable address", `{"version": 1, "address": "10.0.0.1"}`, []string{"10.0.0.1"}},
		{"IPv6 address", `{"version": 1, "address": "fe80::1"}`, []string{"fe80::1"}},
		{"IPv4-mapped address", `{"version": 1, "address": "::ffff:169.254.1.1"}`, []string{"::ffff:169.254.1.1"}},
		{"initial out of range", `{"version": 1, "initial": "169.254.255.255"}`, []string{"169.254.255.255"}},
		{"negative conflicts", `{"version": 1, "address": "169.254.1.1", "conflicts": -3}`, []string{"-3"}},
		{"conflicts not a number", `{"version": 1, "conflicts": "many"}`, []string{"conflicts"}},
		{"conflicts fractional", `{"version": 1, "conflicts": 1.5}`, []string{"1.5"}},
		{"unparsable address", `{"version": 1, "address": "169.254.300.1"}`, []string{"169.254.300.1"}},
		{"address not an address", `{"version": 1, "address": "bogus"}`, []string{"bogus"}},
		{"unparsable initial", `{"version": 1, "initial": "169.254.1"}`, []string{"169.254.1"}},
		{"address with prefix", `{"version": 1, "address": "169.254.1.1/16"}`, []string{"169.254.1.1/16"}},
		{"address not a string", `{"version": 1, "address": 42}`, []string{"address"}},
		{"bad time", `{"version": 1, "last_attempt": "yesterday"}`, []string{"yesterday"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := stateFile(t)
			writeFile(t, path, tt.content)
			s, err := persist.NewFile(path).Load()
			if !errors.Is(err, persist.ErrCorrupt) {
				t.Fatalf("Load of %q: err = %v, want ErrCorrupt", tt.content, err)
			}
			if errors.Is(err, persist.ErrEmpty) || errors.Is(err, persist.ErrMissing) {
				t.Errorf("err = %v also matches ErrEmpty or ErrMissing", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the path %q", msg, path)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if !isZeroState(s) {
				t.Errorf("Load = %+v, want zero state", s)
			}
		})
	}
}

// TestR04_FileTrailingDataIsCorrupt: a file holding a valid record followed
// by anything but white space (two records glued by a broken writer, a
// truncated second write) is corrupt, not silently accepted.
func TestR04_FileTrailingDataIsCorrupt(t *testing.T) {
	for _, content := range []string{
		`{"version": 1, "address": "169.254.1.1"}{"version": 1, "address": "169.254.2.2"}`,
		`{"version": 1, "address": "169.254.1.1"} garbage`,
		`{"version": 1, "address": "169.254.1.1"}]`,
	} {
		path := stateFile(t)
		writeFile(t, path, content)
		if s, err := persist.NewFile(path).Load(); !errors.Is(err, persist.ErrCorrupt) {
			t.Errorf("Load of %q = %+v, %v; want ErrCorrupt", content, s, err)
		}
	}
}

// TestR04_FileUnreadablePathIsReported: a path that cannot be read as a file
// (here a directory) gives the zero state and an error naming the path.
func TestR04_FileUnreadablePathIsReported(t *testing.T) {
	path := stateFile(t)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := persist.NewFile(path).Load()
	if err == nil {
		t.Fatalf("Load of a directory succeeded: %+v", s)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if !isZeroState(s) {
		t.Errorf("Load = %+v, want zero state", s)
	}
}

// TestR04_FileIsHumanReadableJSON: the file is indented JSON with a version
// field, addresses in dotted quad and the time in RFC 3339.
func TestR04_FileIsHumanReadableJSON(t *testing.T) {
	path := stateFile(t)
	when := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	s := autoip.SavedState{
		Addr:        netip.MustParseAddr("169.254.7.7"),
		Initial:     netip.MustParseAddr("169.254.20.20"),
		Conflicts:   2,
		LastAttempt: when,
	}
	if err := persist.NewFile(path).Save(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !json.Valid(b) {
		t.Fatalf("file is not valid JSON:\n%s", text)
	}
	if !strings.HasSuffix(text, "\n") || strings.Count(text, "\n") < 3 || !strings.Contains(text, "\n  \"") {
		t.Errorf("file is not indented, one field a line, newline-terminated:\n%s", text)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version":      float64(1),
		"address":      "169.254.7.7",
		"initial":      "169.254.20.20",
		"conflicts":    float64(2),
		"last_attempt": "2025-03-14T15:09:26.535897932Z",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %q = %#v, want %#v\nfile:\n%s", k, m[k], v, text)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %q in file:\n%s", k, text)
		}
	}

	// The zero state still carries the version.
	if err := persist.NewFile(path).Save(autoip.SavedState{}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	m = nil
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["version"] != float64(1) {
		t.Errorf("zero state file has version %#v, want 1:\n%s", m["version"], b)
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestR04_SaveLeavesNoTempFiles: after any number of saves the directory
// holds the state file and nothing else.
func TestR04_SaveLeavesNoTempFiles(t *testing.T) {
	path := stateFile(t)
	f := persist.NewFile(path)
	for i := range 20 {
		s := autoip.SavedState{Addr: netip.AddrFrom4([4]byte{169, 254, byte(1 + i), 1}), Conflicts: i}
		if err := f.Save(s); err != nil {
			t.Fatal(err)
		}
		if names := dirNames(t, filepath.Dir(path)); len(names) != 1 || names[0] != "state.json" {
			t.Fatalf("after save %d the directory holds %q, want only state.json", i, names)
		}
	}
}

// TestR04_SaveFailureLeavesNoTempFiles: a save that fails at the rename
// (the target is a non-empty directory) cleans its temporary file up.
func TestR04_SaveFailureLeavesNoTempFiles(t *testing.T) {
	path := stateFile(t)
	if err := os.MkdirAll(filepath.Join(path, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := persist.NewFile(path).Save(autoip.SavedState{Conflicts: 1})
	if err == nil {
		t.Fatal("Save over a non-empty directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 1 || names[0] != "state.json" {
		t.Errorf("after a failed save the directory holds %q, want only state.json", names)
	}
}

// TestR04_SaveReplacesExistingFile: Save over an existing file, valid or
// not, longer or shorter, replaces it entirely.
func TestR04_SaveReplacesExistingFile(t *testing.T) {
	long := autoip.SavedState{
		Addr:        netip.MustParseAddr("169.254.222.222"),
		Initial:     netip.MustParseAddr("169.254.111.111"),
		Conflicts:   123456,
		LastAttempt: time.Date(2030, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	short := autoip.SavedState{Addr: netip.MustParseAddr("169.254.1.2")}
	tests := []struct {
		name string
		old  func(t *testing.T, path string)
	}{
		{"longer saved state", func(t *testing.T, path string) {
			if err := persist.NewFile(path).Save(long); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrupt file", func(t *testing.T, path string) { writeFile(t, path, strings.Repeat("garbage ", 1000)) }},
		{"empty file", func(t *testing.T, path string) { writeFile(t, path, "") }},
		{"read-only file", func(t *testing.T, path string) {
			writeFile(t, path, `{"version": 1, "address": "169.254.9.9"}`)
			if err := os.Chmod(path, 0o400); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := stateFile(t)
			tt.old(t, path)
			f := persist.NewFile(path)
			if err := f.Save(short); err != nil {
				t.Fatalf("Save over existing file: %v", err)
			}
			got, err := f.Load()
			if err != nil || !sameState(got, short) {
				t.Fatalf("Load = %+v, %v; want %+v, nil", got, err, short)
			}
			b, _ := os.ReadFile(path)
			for _, old := range []string{"222", "garbage", "169.254.9.9"} {
				if strings.Contains(string(b), old) {
					t.Errorf("file still holds %q from the old content:\n%s", old, b)
				}
			}
			if names := dirNames(t, filepath.Dir(path)); len(names) != 1 {
				t.Errorf("directory holds %q, want only state.json", names)
			}
		})
	}
}

// TestR04_SaveIntoMissingDirectoryFails: the directory must exist; Save
// says which path it could not write and creates nothing.
func TestR04_SaveIntoMissingDirectoryFails(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "no", "such", "dir", "state.json")
	err := persist.NewFile(path).Save(autoip.SavedState{Conflicts: 1})
	if err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if names := dirNames(t, root); len(names) != 0 {
		t.Errorf("Save created %q", names)
	}
}

// TestR04_CrashBeforeRenameDoesNotAffectLoad simulates a crash between
// writing the temporary file and renaming it: the stray temporary file is
// ignored by Load, and later saves still work.
func TestR04_CrashBeforeRenameDoesNotAffectLoad(t *testing.T) {
	saved := autoip.SavedState{Addr: netip.MustParseAddr("169.254.33.33"), Conflicts: 2}
	strays := map[string]string{
		".state.json.tmp123":        `{"version": 1, "address": "169.254.44.44", "conflicts": 9}` + "\n",
		".state.json.tmp4567890123": `{"version": 1, "addr`,
		".state.json.tmp":           "",
	}
	t.Run("old state kept", func(t *testing.T) {
		path := stateFile(t)
		f := persist.NewFile(path)
		if err := f.Save(saved); err != nil {
			t.Fatal(err)
		}
		for name, content := range strays {
			writeFile(t, filepath.Join(filepath.Dir(path), name), content)
		}
		got, err := f.Load()
		if err != nil || !sameState(got, saved) {
			t.Fatalf("Load with stray temp files = %+v, %v; want %+v, nil", got, err, saved)
		}
		next := autoip.SavedState{Addr: netip.MustParseAddr("169.254.55.55")}
		if err := f.Save(next); err != nil {
			t.Fatalf("Save with stray temp files: %v", err)
		}
		if got, err := f.Load(); err != nil || !sameState(got, next) {
			t.Fatalf("Load after Save = %+v, %v; want %+v, nil", got, err, next)
		}
	})
	t.Run("crash before first rename", func(t *testing.T) {
		path := stateFile(t)
		for name, content := range strays {
			writeFile(t, filepath.Join(filepath.Dir(path), name), content)
		}
		s, err := persist.NewFile(path).Load()
		if !errors.Is(err, persist.ErrMissing) || !isZeroState(s) {
			t.Fatalf("Load with only stray temp files = %+v, %v; want zero state, ErrMissing", s, err)
		}
	})
}

// TestR04_ConcurrentSaveLoadNeverTorn hammers one path with saves and loads
// from several File values (as several processes would; each File has its
// own lock) and from one shared File. After the first save every load must
// succeed and return one of the saved states: no reader ever sees a torn,
// partial or empty file.
func TestR04_ConcurrentSaveLoadNeverTorn(t *testing.T) {
	path := stateFile(t)
	// States of very different encoded lengths, so that a torn or
	// interleaved write could not pass as another valid state.
	states := []autoip.SavedState{
		{},
		{Addr: netip.MustParseAddr("169.254.1.0")},
		{Addr: netip.MustParseAddr("169.254.254.255"), Initial: netip.MustParseAddr("169.254.200.200"), Conflicts: 1234567890, LastAttempt: time.Date(2029, 9, 9, 9, 9, 9, 999999999, time.UTC)},
		{Initial: netip.MustParseAddr("169.254.12.34"), Conflicts: 3},
		{Addr: netip.MustParseAddr("169.254.99.99"), LastAttempt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	valid := func(s autoip.SavedState) bool {
		for _, w := range states {
			if sameState(s, w) {
				return true
			}
		}
		return false
	}
	if err := persist.NewFile(path).Save(states[0]); err != nil {
		t.Fatal(err)
	}

	const (
		writers = 4
		readers = 4
		rounds  = 60
	)
	shared := persist.NewFile(path)
	var wg sync.WaitGroup
	errc := make(chan error, (writers+readers)*2*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := persist.NewFile(path)
			for i := range rounds {
				f := own
				if i%2 == 1 {
					f = shared
				}
				if err := f.Save(states[(w+i)%len(states)]); err != nil {
					errc <- fmt.Errorf("writer %d save %d: %w", w, i, err)
				}
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := persist.NewFile(path)
			for i := range rounds * 3 {
				f := own
				if i%2 == 1 {
					f = shared
				}
				s, err := f.Load()
				if err != nil {
					errc <- fmt.Errorf("reader %d load %d: %w", r, i, err)
					continue
				}
				if !valid(s) {
					errc <- fmt.Errorf("reader %d load %d: got %+v, which was never saved", r, i, s)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	n := 0
	for err := range errc {
		if n < 10 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d failures in all", n)
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 1 || names[0] != "state.json" {
		t.Errorf("after the hammer the directory holds %q, want only state.json", names)
	}
	s, err := shared.Load()
	if err != nil || !valid(s) {
		t.Errorf("final Load = %+v, %v; want one of the saved states", s, err)
	}
}

// TestR04_MemoryStore: Memory behaves as File does, without a file.
func TestR04_MemoryStore(t *testing.T) {
	var m persist.Memory
	s, err := m.Load()
	if !errors.Is(err, persist.ErrMissing) || !isZeroState(s) {
		t.Fatalf("Load before Save = %+v, %v; want zero state, ErrMissing", s, err)
	}
	if m.Saves() != 0 {
		t.Errorf("Saves() = %d before any save", m.Saves())
	}
	states := []autoip.SavedState{
		{Addr: netip.MustParseAddr("169.254.5.5"), Initial: netip.MustParseAddr("169.254.6.6"), Conflicts: 4, LastAttempt: time.Date(2022, 2, 2, 2, 2, 2, 2, time.UTC)},
		{},
		{Conflicts: 11},
	}
	for i, want := range states {
		if err := m.Save(want); err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		got, err := m.Load()
		if err != nil || !sameState(got, want) {
			t.Errorf("Load after save %d = %+v, %v; want %+v, nil", i, got, err, want)
		}
		if m.Saves() != i+1 {
			t.Errorf("Saves() = %d, want %d", m.Saves(), i+1)
		}
	}
	// Saving the zero state is still a save: Load no longer reports
	// ErrMissing.
	var z persist.Memory
	if err := z.Save(autoip.SavedState{}); err != nil {
		t.Fatal(err)
	}
	if _, err := z.Load(); err != nil {
		t.Errorf("Load after saving the zero state: %v", err)
	}
}

// TestR04_MemoryStoreConcurrent runs saves and loads on one Memory from
// many goroutines (meaningful under -race).
func TestR04_MemoryStoreConcurrent(t *testing.T) {
	var m persist.Memory
	var st persist.Store = &m
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if err := st.Save(autoip.SavedState{Conflicts: g*rounds + i}); err != nil {
					t.Error(err)
					return
				}
				s, err := st.Load()
				if err != nil || s.Conflicts < 0 || s.Conflicts >= goroutines*rounds {
					t.Errorf("Load = %+v, %v", s, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if m.Saves() != goroutines*rounds {
		t.Errorf("Saves() = %d, want %d", m.Saves(), goroutines*rounds)
	}
}

// TestR04_StatesSurviveEngineRestart: what an engine saves, stored in a
// File and loaded back, is accepted by a new engine unchanged.
func TestR04_StatesSurviveEngineRestart(t *testing.T) {
	s := autoip.SavedState{
		Addr:        netip.MustParseAddr("169.254.77.77"),
		Conflicts:   3,
		LastAttempt: time.Date(2024, 5, 5, 5, 5, 5, 5, time.UTC),
	}
	f := persist.NewFile(stateFile(t))
	if err := f.Save(s); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Check(); err != nil {
		t.Errorf("loaded state fails Check: %v", err)
	}
	e, err := autoip.NewEngine(autoip.Config{HW: [6]byte{2, 0, 0, 0, 0, 1}, Saved: got})
	if err != nil {
		t.Fatal(err)
	}
	if !sameState(e.Saved(), s) {
		t.Errorf("engine's saved state = %+v, want %+v", e.Saved(), s)
	}
}
