package hardening

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/persist"
)

// checkStateFile reads the daemon's state file as a restart would. It
// returns the saved state and whether the file exists; a file that exists
// but is not valid JSON accepted by persist's Load fails the test.
func checkStateFile(t testing.TB, path string) (autoip.SavedState, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return autoip.SavedState{}, false
	}
	if err != nil {
		t.Fatalf("read state file: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("R04: torn state file %s: %q", path, b)
	}
	s, err := persist.NewFile(path).Load()
	if err != nil {
		t.Fatalf("R04: state file %s refused by Load: %v\n%s", path, err, b)
	}
	return s, true
}

// TestR04_KillNineNeverTearsState: autoipd is killed with SIGKILL at random
// moments of its life (starting, probing, announcing, bound), 50 times
// (short form: 10). After every kill the state file is absent (only before
// the first save ever) or valid JSON that persist's Load accepts, and the
// next start's first probe targets the address the file holds (R04), or
// the MAC-seeded first candidate when it holds none. The kernel side holds
// that first candidate, so the remembered address is a different one; and
// now and then it takes the remembered address too, so that the daemon must
// move on and remember another. Finally a start left alone binds the
// remembered address.
func TestR04_KillNineNeverTearsState(t *testing.T) {
	t.Parallel()
	kills := size(t, "AIP_HARDEN_KILLS", 10, 50)
	sd := seed(t)
	rng := rand.New(rand.NewPCG(sd, 4))
	e := newDenv(t, 0x04, 0)
	c0 := autoip.Candidate(autoip.SeedFromMAC(e.mac), 0)
	e.ns.IP(t, "addr", "add", c0.String()+"/16", "dev", e.tap) // the kernel holds the first candidate
	path := e.statePath()

	// expectFirst is what the next start must probe first.
	expectFirst := func() netip.Addr {
		if s, ok := checkStateFile(t, path); ok && s.Addr.IsValid() {
			return s.Addr
		}
		return c0
	}

	checked, conflictCycles := 0, 0
	var leftovers []string
	for i := 0; i < kills; i++ { // start i, then kill -9 (start 0 is killed once bound)
		want := expectFirst()
		taken := netip.Addr{}
		if i%8 == 4 && want != c0 && conflictCycles < 3 { // each costs two conflicts; stay below MAX_CONFLICTS
			// The kernel takes the remembered address for this cycle.
			taken = want
			e.ns.IP(t, "addr", "add", taken.String()+"/16", "dev", e.tap)
			conflictCycles++
		}
		mark := e.wire.mark()
		p := e.start(fastArgs...)
		if i == 0 {
			e.waitBound(20 * time.Second) // something to remember
		} else {
			time.Sleep(time.Duration(rng.Int64N(int64(2500 * time.Millisecond))))
		}
		p.kill()
		if ps := e.wire.probes(mark, e.mac); len(ps) > 0 {
			checked++
			if got := ps[0].f.TargetIP; got != want {
				t.Errorf("R04: start %d: first probe for %v, want %v (the state file's address, else the MAC-seeded %v)", i, got, want, c0)
			}
		}
		s, ok := checkStateFile(t, path)
		if !ok && i > 0 {
			t.Fatalf("R04: state file gone after kill %d", i)
		}
		if i == 0 && (!ok || !s.Addr.IsValid() || s.Addr == c0) {
			t.Fatalf("after the first bind the state is %+v (exists %v), want an address other than %v", s, ok, c0)
		}
		if taken.IsValid() {
			e.ns.IP(t, "addr", "del", taken.String()+"/16", "dev", e.tap)
		}
		tmps, _ := filepath.Glob(filepath.Join(e.state, ".*.tmp*"))
		leftovers = tmps
	}
	s, _ := checkStateFile(t, path)
	t.Logf("%d kill -9s, %d starts probed before the kill, %d with the remembered address taken; state now %+v; temporary files left: %d",
		kills, checked, conflictCycles, s, len(leftovers))
	if checked < max(2, kills/4) {
		t.Errorf("only %d of %d starts probed before being killed: the kill moments are too early to test anything", checked, kills)
	}
	if s.Conflicts >= 10 {
		t.Fatalf("state counts %d conflicts: the last start would be rate limited", s.Conflicts)
	}
	mark := e.wire.mark()
	p := e.start(fastArgs...)
	a := e.waitBound(20 * time.Second)
	if ps := e.wire.probes(mark, e.mac); a != s.Addr || len(ps) == 0 || ps[0].f.TargetIP != s.Addr {
		t.Errorf("R04: last start bound %v, want the remembered %v first", a, s.Addr)
	}
	p.stop(t, 15*time.Second)
}
