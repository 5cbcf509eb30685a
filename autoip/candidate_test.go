package autoip

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/splitmix"
)

var update = flag.Bool("update", false, "rewrite testdata/candidates.golden")

// TestR01_CandidateInRange: Candidate never leaves 169.254.1.0-169.254.254.255.
func TestR01_CandidateInRange(t *testing.T) {
	seeds := []uint64{0, 1, 2, 42, 0xffffffffffffffff, 0x8000000000000000, splitmix.Golden, SeedFromMAC(ourMAC)}
	for s := uint64(0); s < 64; s++ {
		seeds = append(seeds, s*0x100000001b3+7)
	}
	for _, seed := range seeds {
		for _, n := range []uint64{0, 1, 2, 3, 1 << 32, 1<<64 - 1, 1<<64 - 2} {
			if a := Candidate(seed, n); !InRange(a) {
				t.Fatalf("Candidate(%#x, %d) = %v, outside the range", seed, n, a)
			}
		}
		for n := uint64(0); n < 4096; n++ {
			if a := Candidate(seed, n); !InRange(a) {
				t.Fatalf("Candidate(%#x, %d) = %v, outside the range", seed, n, a)
			}
		}
	}
}

// TestR01_CandidateUniform: a chi-square check on both octets. With about
// 1M draws the statistic has mean df and standard deviation sqrt(2 df);
// the bound is far out (df + 8 sd), so a correct generator never fails,
// and a skewed or truncated one (a missing third octet, a low octet that
// is never 255, modulo-256 folding) fails by orders of magnitude.
func TestR01_CandidateUniform(t *testing.T) {
	const seeds, perSeed = 128, 8128 // 1,040,384 draws = 16 per address
	var third [256]int
	var low [256]int
	seen := make(map[netip.Addr]bool, NumCandidates)
	for s := uint64(0); s < seeds; s++ {
		seed := SeedFromMAC(acd.MAC{0x02, 0, 0, byte(s >> 8), byte(s), 1})
		for n := uint64(0); n < perSeed; n++ {
			b := Candidate(seed, n).As4()
			third[b[2]]++
			low[b[3]]++
			seen[Candidate(seed, n)] = true
		}
	}
	total := float64(seeds * perSeed)
	if third[0] != 0 || third[255] != 0 {
		t.Fatalf("third octet 0 drawn %d times, 255 drawn %d times: reserved", third[0], third[255])
	}
	chi := func(counts []int) float64 {
		exp := total / float64(len(counts))
		var x float64
		for _, c := range counts {
			d := float64(c) - exp
			x += d * d / exp
		}
		return x
	}
	check := func(name string, counts []int) {
		t.Helper()
		df := float64(len(counts) - 1)
		bound := df + 8*math.Sqrt(2*df)
		x := chi(counts)
		t.Logf("%s: chi-square %.1f (df %.0f, bound %.1f)", name, x, df, bound)
		if x > bound {
			t.Errorf("%s: chi-square %.1f exceeds %.1f: not uniform", name, x, bound)
		}
		for i, c := range counts {
			if c == 0 {
				t.Errorf("%s: value at index %d never drawn", name, i)
			}
		}
	}
	check("third octet 1..254", third[1:255])
	check("low octet 0..255", low[:])
	// 16 draws per address on average: missing more than a sliver of the
	// range means the generator cannot reach part of it.
	if len(seen) < NumCandidates*99/100 {
		t.Errorf("only %d of %d addresses drawn", len(seen), NumCandidates)
	}
}

// TestR01_InRange pins the edges of the usable range.
func TestR01_InRange(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"169.254.0.0", false},
		{"169.254.0.255", false},
		{"169.254.1.0", true},
		{"169.254.1.1", true},
		{"169.254.128.7", true},
		{"169.254.254.254", true},
		{"169.254.254.255", true},
		{"169.254.255.0", false},
		{"169.254.255.255", false},
		{"169.253.1.1", false},
		{"170.254.1.1", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"fe80::1", false},
		{"::ffff:169.254.1.1", false}, // IPv4-mapped IPv6 is not an IPv4 address
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := InRange(mustAddr(tt.addr)); got != tt.want {
				t.Errorf("InRange(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if InRange(netip.Addr{}) {
		t.Error("InRange(zero Addr) = true")
	}
	if !InRange(FirstAddr) || !InRange(LastAddr) {
		t.Errorf("FirstAddr %v / LastAddr %v not in range", FirstAddr, LastAddr)
	}
	if FirstAddr.Prev() != mustAddr("169.254.0.255") || LastAddr.Next() != mustAddr("169.254.255.0") {
		t.Errorf("FirstAddr %v / LastAddr %v are not the edges", FirstAddr, LastAddr)
	}
}

// TestR01_RogueNeverPushesOutOfRange: a host that claims every address we
// probe drives the engine through many attempts (rate limited after
// MAX_CONFLICTS); no probe, announcement or configured address ever leaves
// the range.
func TestR01_RogueNeverPushesOutOfRange(t *testing.T) {
	for _, seed := range []uint64{1, 42, 0xffffffffffffffff} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := testConfig()
			cfg.Seed = seed
			h := startedHarness(t, cfg)
			h.responders = append(h.responders, rogueReplier(rogueMAC))
			const attempts = 300
			for len(events(h.outs, EventProbe)) < attempts {
				if !h.next() {
					t.Fatalf("engine went idle:\n%s", h.dump())
				}
			}
			for _, s := range h.outs {
				switch s.Kind {
				case OutSendARP:
					if !InRange(s.Frame.TargetIP) || (s.Frame.SenderIP != zeroIP && !InRange(s.Frame.SenderIP)) {
						t.Fatalf("frame outside the range: %v", s)
					}
				case OutAddAddress:
					t.Fatalf("address configured despite conflicts: %v", s)
				case OutEvent:
					if s.Event.Kind == EventProbe && !InRange(s.Event.Addr) {
						t.Fatalf("attempt outside the range: %v", s)
					}
				}
			}
			if got := len(events(h.outs, EventConflict)); got < attempts-1 {
				t.Errorf("%d conflicts for %d attempts", got, attempts)
			}
		})
	}
}

// TestR01_CandidateMatchesDocumentedFormula recomputes Candidate from the
// package doc with big integers.
func TestR01_CandidateMatchesDocumentedFormula(t *testing.T) {
	mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
	mul := func(a, b uint64) uint64 { // a*b mod 2^64
		p := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
		return p.And(p, mask).Uint64()
	}
	docMix := func(z uint64) uint64 {
		z = mul(z^(z>>30), 0xBF58476D1CE4E5B9)
		z = mul(z^(z>>27), 0x94D049BB133111EB)
		return z ^ (z >> 31)
	}
	for _, seed := range []uint64{0, 1, 42, 1<<64 - 1, SeedFromMAC(ourMAC)} {
		for n := uint64(0); n < 64; n++ {
			k := docMix(seed)
			sum := new(big.Int).Add(new(big.Int).SetUint64(k), new(big.Int).Mul(new(big.Int).SetUint64(n+1), new(big.Int).SetUint64(0x9E3779B97F4A7C15)))
			h := docMix(sum.And(sum, mask).Uint64())
			v := new(big.Int).Mul(new(big.Int).SetUint64(h), big.NewInt(65024))
			v.Rsh(v, 64)
			vi := v.Uint64()
			want := netip.AddrFrom4([4]byte{169, 254, byte(1 + vi/256), byte(vi % 256)})
			if got := Candidate(seed, n); got != want {
				t.Fatalf("Candidate(%#x, %d) = %v, documented formula gives %v", seed, n, got, want)
			}
		}
	}
}

// TestR02_SeedFromMACIsFNV1a64 checks SeedFromMAC against hash/fnv.
func TestR02_SeedFromMACIsFNV1a64(t *testing.T) {
	macs := []acd.MAC{ourMAC, rogueMAC, {0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e}, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x02, 0, 0, 0, 0, 0}}
	for _, m := range macs {
		h := fnv.New64a()
		h.Write(m[:])
		if got, want := SeedFromMAC(m), h.Sum64(); got != want {
			t.Errorf("SeedFromMAC(%v) = %#x, FNV-1a 64 gives %#x", m, got, want)
		}
	}
	e, err := NewEngine(Config{HW: ourMAC})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seed() != SeedFromMAC(ourMAC) {
		t.Errorf("default Seed() = %#x, want SeedFromMAC = %#x", e.Seed(), SeedFromMAC(ourMAC))
	}
	e, err = NewEngine(Config{HW: ourMAC, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seed() != 99 {
		t.Errorf("explicit Seed() = %d, want 99", e.Seed())
	}
}

// probeSequence runs an engine for mac against a host claiming every
// address and returns the addresses of its first n attempts.
func probeSequence(t *testing.T, mac acd.MAC, n int) []netip.Addr {
	t.Helper()
	h := startedHarness(t, Config{HW: mac})
	h.responders = append(h.responders, rogueReplier(rogueMAC))
	for len(events(h.outs, EventProbe)) < n {
		if !h.next() {
			t.Fatalf("engine went idle")
		}
	}
	return probedAddrs(h.outs)[:n]
}

// TestR02_SameMACSameSequence: two engines with the same MAC probe the same
// addresses in the same order; different MACs walk different sequences.
func TestR02_SameMACSameSequence(t *testing.T) {
	const n = 20
	a := probeSequence(t, ourMAC, n)
	b := probeSequence(t, ourMAC, n)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same MAC, different sequences:\n%v\n%v", a, b)
	}
	if want := candidates(SeedFromMAC(ourMAC), n); fmt.Sprint(a) != fmt.Sprint(want) {
		t.Fatalf("probed %v, want Candidate(SeedFromMAC(mac), 0..) = %v", a, want)
	}
	for _, other := range []acd.MAC{{0x02, 0, 0, 0, 0, 0x02}, {0x02, 0, 0, 0, 1, 0x01}, {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc}} {
		c := probeSequence(t, other, n)
		if c[0] == a[0] {
			t.Errorf("MAC %v and %v start at the same address %v", other, ourMAC, c[0])
		}
		same := 0
		for i := range c {
			if c[i] == a[i] {
				same++
			}
		}
		if same > 1 {
			t.Errorf("MAC %v shares %d of %d positions with %v", other, same, n, ourMAC)
		}
	}
}

// goldenSeeds are the seeds pinned by testdata/candidates.golden.
func goldenSeeds() []uint64 {
	return []uint64{
		0, 1, 42,
		SeedFromMAC(acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}),
		SeedFromMAC(acd.MAC{0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e}),
		SeedFromMAC(acd.MAC{0xa4, 0x5e, 0x60, 0xe8, 0x1f, 0x02}),
		1<<64 - 1,
	}
}

func renderGolden() []byte {
	var b bytes.Buffer
	b.WriteString("# Candidate(seed, n) for n = 0..15. Fixed forever: a change here changes\n")
	b.WriteString("# every host's address. Regenerate only on purpose: go test ./autoip -run TestGoldenCandidates -update\n")
	for _, seed := range goldenSeeds() {
		for n := uint64(0); n < 16; n++ {
			fmt.Fprintf(&b, "%#016x %2d %v\n", seed, n, Candidate(seed, n))
		}
	}
	return b.Bytes()
}

// TestGoldenCandidates (R01, R02) pins Candidate with golden vectors.
func TestGoldenCandidates(t *testing.T) {
	path := filepath.Join("testdata", "candidates.golden")
	got := renderGolden()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := lines(got), lines(want)
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("line %d: got %q, golden %q", i+1, g, w)
		}
	}
}

func lines(b []byte) []string {
	var r []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		r = append(r, strings.TrimRight(sc.Text(), "\r"))
	}
	return r
}
