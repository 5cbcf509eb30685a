package scenario

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/library.sha256")

// goldenFile pins the SHA-256 of every library scenario's outputs.
const goldenFile = "testdata/library.sha256"

// TestLibraryGolden: every library scenario's capture, report (JSON, with
// host detail), picture and trace hash to the values in testdata, which
// were recorded before the simulator moved onto the public segment
// (issue 12) and must only change when behaviour does, on purpose:
//
//	go test ./sim/scenario -run LibraryGolden -update
func TestLibraryGolden(t *testing.T) {
	var got strings.Builder
	for _, f := range scenarioFiles(t) {
		o := run(t, load(t, f))
		for _, c := range []struct {
			what string
			b    []byte
		}{{"pcap", o.pcap}, {"report", o.report}, {"svg", o.svg}, {"trace", o.trace}} {
			h := sha256.Sum256(c.b)
			fmt.Fprintf(&got, "%s  %s.%s\n", hex.EncodeToString(h[:]), strings.TrimSuffix(filepath.Base(f), ".json"), c.what)
		}
	}
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, []byte(got.String())) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
		for i := range max(len(wl), len(gl)) {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Errorf("output changed:\n want %s\n  got %s", w, g)
			}
		}
	}
}

// TestLeanStacksChangeNothing: hosts built without gVisor's neighbour
// cache and with shared protocol state (the default) and hosts built as
// stack.New builds them (FullStacks) put the same frames on the segment at
// the same times and end the same way, in every library scenario.
func TestLeanStacksChangeNothing(t *testing.T) {
	for _, f := range scenarioFiles(t) {
		sc := load(t, f)
		if testing.Short() && sc.NumHosts() > 50 {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			lean := run(t, sc)
			full := runWith(t, load(t, f), Options{FullStacks: true})
			for _, c := range []struct {
				what string
				x, y []byte
			}{{"pcap", lean.pcap, full.pcap}, {"trace", lean.trace, full.trace}, {"report", lean.report, full.report}, {"svg", lean.svg, full.svg}} {
				if !bytes.Equal(c.x, c.y) {
					t.Errorf("%s differs: lean %s, full %s", c.what, digest(c.x), digest(c.y))
				}
			}
		})
	}
}
