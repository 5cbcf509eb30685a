package scenario

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/pcapfile"
	"github.com/autoip-project/autoip/sim"
)

// readPCAP parses a pcap file (nanosecond format) into timestamps and
// frames.
func readPCAP(t *testing.T, b []byte) ([]time.Time, [][]byte) {
	t.Helper()
	if len(b) < pcapfile.HeaderLen || binary.LittleEndian.Uint32(b) != pcapfile.MagicNano {
		t.Fatalf("not a nanosecond pcap file")
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != uint32(layers.LinkTypeEthernet) {
		t.Fatalf("link type %d, want Ethernet", lt)
	}
	var ts []time.Time
	var frames [][]byte
	for off := pcapfile.HeaderLen; off < len(b); {
		if off+16 > len(b) {
			t.Fatalf("truncated record header at %d", off)
		}
		sec, nsec := binary.LittleEndian.Uint32(b[off:]), binary.LittleEndian.Uint32(b[off+4:])
		capLen, origLen := int(binary.LittleEndian.Uint32(b[off+8:])), int(binary.LittleEndian.Uint32(b[off+12:]))
		if capLen != origLen || off+16+capLen > len(b) {
			t.Fatalf("bad record at %d: caplen %d, len %d", off, capLen, origLen)
		}
		ts = append(ts, time.Unix(int64(sec), int64(nsec)).UTC())
		frames = append(frames, b[off+16:off+16+capLen])
		off += 16 + capLen
	}
	return ts, frames
}

// TestPCAP checks the capture: one record per frame put on the segment
// (plus duplicate and echoed copies), timestamps in virtual time and in
// order, every ARP frame decodable by gopacket, and readable by tcpdump
// when it is installed.
func TestPCAP(t *testing.T) {
	sc := load(t, libraryDir+"/kitchen-sink.json")
	o := run(t, sc)
	ts, frames := readPCAP(t, o.pcap)
	r := o.rep
	if want := r.Frames.Total + r.Delivery.Duplicated + r.Delivery.Echoed; uint64(len(frames)) != want {
		t.Errorf("%d records, want %d (frames %d + duplicates %d + echoes %d)", len(frames), want, r.Frames.Total, r.Delivery.Duplicated, r.Delivery.Echoed)
	}
	for i := 1; i < len(ts); i++ {
		if ts[i].Before(ts[i-1]) {
			t.Fatalf("record %d at %v is before record %d at %v", i, ts[i], i-1, ts[i-1])
		}
	}
	if ts[0].Before(sim.DefaultStart) || ts[len(ts)-1].After(sim.DefaultStart.Add(o.sim.Now())) {
		t.Errorf("timestamps %v..%v outside the run", ts[0], ts[len(ts)-1])
	}
	arps := 0
	for i, f := range frames {
		if _, err := acd.DecodeFrame(f); err != nil {
			continue
		}
		arps++
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok {
			t.Fatalf("record %d: gopacket finds no ARP layer: %v", i, p.ErrorLayer())
		}
		ours, _ := acd.DecodeFrame(f)
		if !bytes.Equal(a.SourceProtAddress, ours.SenderIP.AsSlice()) || !bytes.Equal(a.DstProtAddress, ours.TargetIP.AsSlice()) {
			t.Errorf("record %d: gopacket and acd disagree", i)
		}
	}
	if arps == 0 {
		t.Fatal("no ARP frames")
	}
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not installed; not checking that it reads the file")
		return
	}
	cmd := exec.Command(tcpdump, "-nn", "-r", "-")
	cmd.Stdin = bytes.NewReader(o.pcap)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump: %v: %s", err, stderr.Bytes())
	}
	records := 0
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > 0 && l[0] >= '0' && l[0] <= '9' { // a record's line starts with its time stamp
			records++
		}
	}
	if records != len(frames) {
		t.Errorf("tcpdump printed %d records, the file has %d", records, len(frames))
	}
	if !strings.Contains(out.String(), "ARP, Request who-has 169.254.") {
		t.Errorf("tcpdump shows no ARP requests:\n%.500s", out.String())
	}
}

// TestTrace checks the per-host trace selection.
func TestTrace(t *testing.T) {
	var tr bytes.Buffer
	sc := load(t, libraryDir+"/static-incumbent.json")
	s, _, err := Run(sc, Options{Trace: &tr, TraceHosts: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := tr.String()
	if !strings.Contains(out, " h1    START") || !strings.Contains(out, " h1    CONFLICT   169.254.20.20 (probing)") {
		t.Errorf("trace lacks host 1's story:\n%s", out)
	}
	if strings.Contains(out, " h0 ") || strings.Contains(out, " h2 ") {
		t.Errorf("trace has other hosts:\n%s", out)
	}
}

// TestProgress checks the progress line appears for a run and names the
// counts.
func TestProgress(t *testing.T) {
	var p bytes.Buffer
	sc := load(t, libraryDir+"/simultaneous-probe.json")
	s, _, err := Run(sc, Options{Progress: &p, ProgressEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(p.String(), "bound 4") || !strings.Contains(p.String(), "booted 4/4") {
		t.Errorf("progress: %q", p.String())
	}
}
