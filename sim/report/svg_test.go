package report_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"github.com/autoip-project/autoip/sim/report"
)

// TestSVG checks the picture is well-formed XML with one row per host and
// actor.
func TestSVG(t *testing.T) {
	o := run(t, "partition-merge")
	d := xml.NewDecoder(bytes.NewReader(o.svg))
	texts := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
			texts++
		}
	}
	for i := 0; i < o.sim.NumHosts(); i++ {
		if !bytes.Contains(o.svg, []byte(fmt.Sprintf(">h%d ", i))) {
			t.Errorf("no row for host %d", i)
		}
	}
	if !bytes.Contains(o.svg, []byte("conflict 169.254.")) {
		t.Error("no conflict marker")
	}
	var small bytes.Buffer
	if err := report.WriteSVG(&small, o.sim, report.SVGOptions{Hosts: []int{1, 0}}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(small.Bytes(), []byte(">h2 ")) || !bytes.Contains(small.Bytes(), []byte("showing 2 of 8 hosts")) {
		t.Error("host selection ignored")
	}
	if err := report.WriteSVG(io.Discard, o.sim, report.SVGOptions{Hosts: []int{99}}); err == nil {
		t.Error("out-of-range host accepted")
	}
}
