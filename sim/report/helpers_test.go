package report_test

import (
	"bytes"
	"os"
	"testing"

	"gvisor.dev/gvisor/pkg/refs"

	"github.com/autoip-project/autoip/sim"
	"github.com/autoip-project/autoip/sim/report"
	"github.com/autoip-project/autoip/sim/scenario"
)

// TestMain turns on gVisor's reference-count leak checking.
func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

// runOut is a library scenario's run and its picture.
type runOut struct {
	sim *sim.Sim
	rep *report.Report
	svg []byte
}

// run runs library scenario name; the simulation is closed when the test
// ends.
func run(t *testing.T, name string) runOut {
	t.Helper()
	sc, err := scenario.Load("../testdata/scenarios/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	s, r, err := scenario.Run(sc, scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var svg bytes.Buffer
	if err := report.WriteSVG(&svg, s, report.SVGOptions{}); err != nil {
		t.Fatal(err)
	}
	return runOut{sim: s, rep: r, svg: svg.Bytes()}
}
