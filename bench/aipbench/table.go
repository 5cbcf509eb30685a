package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// benchSet holds parsed `go test -bench` results: name -> unit -> values
// (one per run, in order).
type benchSet map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output. Names lose their -GOMAXPROCS
// suffix; "ns/op", "B/op", "allocs/op" and custom metrics are kept by unit.
func parseBench(r io.Reader) (benchSet, error) {
	set := benchSet{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := set[name]
		if m == nil {
			m = map[string][]float64{}
			set[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	return set, sc.Err()
}

func parseBenchFile(path string) (benchSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBench(f)
}

// median of v (the mean of the middle two for an even count); NaN if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// get returns the median of name's unit and how many runs it has.
func (s benchSet) get(name, unit string) (float64, int) {
	v := s[name][unit]
	return median(v), len(v)
}

func (s benchSet) rng(name, unit string) (lo, hi float64) {
	v := s[name][unit]
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(v), slices.Max(v)
}

// row is one line of the table.
type row struct {
	figure, measured, baseline, ratio, target, how string
}

// section state: a results file is there, skipped (*.skip holds why) or
// failed (*.fail holds why).
func sectionState(dir, name string) (ok bool, note string) {
	if b, err := os.ReadFile(filepath.Join(dir, name+".fail")); err == nil {
		return false, "FAILED: " + oneLine(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, name+".skip")); err == nil {
		return false, "skipped: " + oneLine(string(b))
	}
	return true, ""
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

func tableMain(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	dir := fs.String("dir", "", "results directory written by run.sh")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("need -dir")
	}
	meta := readEnvFile(filepath.Join(*dir, "meta.env"))
	var rows []row
	rows = append(rows, engineRows(*dir, meta)...)
	rows = append(rows, tapRows(*dir, meta)...)
	rows = append(rows, tcpRows(*dir, meta)...)
	rows = append(rows, claimRows(*dir, meta)...)
	rows = append(rows, crowdRows(*dir, meta)...)
	rows = append(rows, simRows(*dir, meta)...)
	rows = append(rows, daemonRows(*dir, meta)...)

	mode := "full"
	if meta["quick"] == "1" {
		mode = "quick (BENCH_QUICK=1)"
	}
	fmt.Fprintf(w, "### `make bench` — %s run, %s\n\n", mode, meta["date"])
	fmt.Fprintf(w, "Host: %s CPUs; %s; commit %s; uid %s. Load average %s at the start, %s at the end. ",
		meta["nproc"], meta["goversion"], meta["commit"], meta["uid"], meta["loadavg"], orNA(meta["loadavg_end"]))
	var busy []string
	for _, k := range []struct{ key, what string }{
		{"before", "in the second before the run"}, {"engine", "engine benchmarks"}, {"claim", "claims"},
		{"idle", "daemon idle (ours ≈ 0: this is other tenants)"}, {"flood", "TAP floods"}, {"tcp", "TCP"}, {"crowd", "crowd start-up"}, {"sim", "simulator"},
	} {
		if v := meta["busy_"+k.key]; v != "" {
			busy = append(busy, k.what+" "+v)
		}
	}
	fmt.Fprintf(w, "Host CPU busy (all CPUs, this run included): %s.\n\n", strings.Join(busy, ", "))
	fmt.Fprintln(w, "| # | figure | measured | baseline (same run) | ratio | target | how it was measured |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for i, r := range rows {
		cells := []string{strconv.Itoa(i + 1), r.figure, r.measured, r.baseline, r.ratio, r.target, r.how}
		for j := range cells {
			if cells[j] == "" {
				cells[j] = "—"
			}
			cells[j] = strings.ReplaceAll(cells[j], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians throughout; \"met\"/\"MISSED\" compare the median with the target unless the target says otherwise (\"every daemon\": the worst; \"all\": every run). MB = 10^6 bytes, MiB = 2^20 bytes, kB in /proc = 1024 bytes.")
	return nil
}

// medianMain prints scale × the median of one benchmark metric of a
// `go test -bench` output file, as an integer (run.sh derives the paced
// flood's rate from the measured capacity this way).
func medianMain(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("median", flag.ContinueOnError)
	file := fs.String("file", "", "go test -bench output")
	bench := fs.String("bench", "", "benchmark name without the -N suffix")
	unit := fs.String("unit", "", "metric unit")
	scale := fs.Float64("scale", 1, "factor")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set, err := parseBenchFile(*file)
	if err != nil {
		return err
	}
	v, n := set.get(*bench, *unit)
	if n == 0 {
		return fmt.Errorf("no %s %s in %s", *bench, *unit, *file)
	}
	fmt.Fprintln(w, int64(math.Round(v**scale)))
	return nil
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(path string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// ---- formatting ----

func thousands(v float64) string {
	neg := v < 0
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fnum(v float64, prec int) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fms(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch a := math.Abs(v); {
	case a >= 100:
		return fnum(v, 0) + " ms"
	case a >= 10:
		return fnum(v, 1) + " ms"
	default:
		return fnum(v, 2) + " ms"
	}
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return ""
	}
	r := a / b
	switch {
	case r >= 100:
		return thousands(r) + "×"
	case r >= 10:
		return fnum(r, 1) + "×"
	}
	return fnum(r, 2) + "×"
}

func status(ok bool, target string) string {
	if ok {
		return target + ": met"
	}
	return target + ": MISSED"
}

func runs(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("median of %d runs", n)
}

// ---- engine ----

func engineRows(dir string, meta map[string]string) []row {
	type eb struct{ name, pkg, figure, bench string }
	list := []eb{
		{"BenchmarkEngineFrameUnrelated", "./autoip", "engine: ARP frame that does not concern us (autoip.Engine.HandleFrame, bound)", "EngineFrameUnrelated"},
		{"BenchmarkEngineFrameConflict", "./autoip", "engine: conflicting ARP frame (Engine bound, defend-once; each frame one DEFEND_INTERVAL after the last, so each is defended with an announcement)", "EngineFrameConflict"},
		{"BenchmarkDecodeFrame", "./autoip/acd", "acd: decode an Ethernet+ARP frame", "DecodeFrame"},
		{"BenchmarkClassifyUnrelated", "./autoip/acd", "acd: Classify an unrelated frame", "ClassifyUnrelated"},
		{"BenchmarkDetectorHandleFrameUnrelated", "./autoip/acd", "acd: Detector, unrelated frame (bound)", "DetectorHandleFrameUnrelated"},
		{"BenchmarkDetectorHandleFrameConflict/suppressed", "./autoip/acd", "acd: Detector, conflict inside DEFEND_INTERVAL (suppressed)", "DetectorHandleFrameConflict/suppressed"},
		{"BenchmarkDetectorHandleFrameConflict/defend", "./autoip/acd", "acd: Detector, conflict that is defended (one announcement)", "DetectorHandleFrameConflict/defend"},
	}
	ok, note := sectionState(dir, "engine")
	if !ok {
		return []row{{figure: "engine and acd: ns and allocations per ARP frame", measured: note}}
	}
	set, err := parseBenchFile(filepath.Join(dir, "engine.txt"))
	if err != nil {
		return []row{{figure: "engine and acd: ns and allocations per ARP frame", measured: "FAILED: " + err.Error()}}
	}
	decode, _ := set.get("BenchmarkDecodeFrame", "ns/op")
	var rows []row
	for _, b := range list {
		ns, n := set.get(b.name, "ns/op")
		allocs, _ := set.get(b.name, "allocs/op")
		bytes, _ := set.get(b.name, "B/op")
		r := row{figure: b.figure}
		if n == 0 {
			r.measured = "FAILED: no result in engine.txt"
			rows = append(rows, r)
			continue
		}
		lo, hi := set.rng(b.name, "ns/op")
		r.measured = fmt.Sprintf("%s ns/frame, %s allocs (%s B)", fnum(ns, 1), fnum(allocs, 0), fnum(bytes, 0))
		r.how = fmt.Sprintf("`go test -run '^$' -bench '%s' -benchmem -count %s %s`: %s (%s–%s ns)",
			b.bench, meta["engine_count"], b.pkg, runs(n), fnum(lo, 1), fnum(hi, 1))
		switch b.name {
		case "BenchmarkEngineFrameUnrelated":
			r.baseline = "acd.DecodeFrame alone: " + fnum(decode, 1) + " ns"
			r.ratio = ratio(ns, decode)
			r.target = status(ns <= 100 && allocs == 0, "≤ 100 ns, 0 allocs")
		case "BenchmarkEngineFrameConflict":
			r.baseline = "acd.DecodeFrame alone: " + fnum(decode, 1) + " ns"
			r.ratio = ratio(ns, decode)
			r.target = status(allocs == 0, "0 allocs")
		}
		rows = append(rows, r)
	}
	return rows
}

// ---- TAP flood ----

// pairRatios returns, for the i-th run of num and den (interleaved runs of
// the same script), num[i]/den[i].
func pairRatios(num, den []float64) []float64 {
	var r []float64
	for i := 0; i < len(num) && i < len(den); i++ {
		if den[i] > 0 {
			r = append(r, num[i]/den[i])
		}
	}
	return r
}

func tapRows(dir string, meta map[string]string) []row {
	const (
		pathBlast, pathDrain = "BenchmarkTAPFloodConflictDetection/blast", "BenchmarkTAPFloodConflictDetection/drain"
		rawBlast, rawDrain   = "BenchmarkTAPRawFlood/blast", "BenchmarkTAPRawFlood/drain"
	)
	figCap := "TAP: ARP flood capacity of the whole path (TAP → tap.Link → gVisor NIC → shim → engine), ARP fast path on (as autoipd)"
	figOff := "  the same path with the ARP fast path off (stack.New's default)"
	figDet := "TAP: hidden conflicting frames detected under the floods"
	figBlast := "TAP: ARP frames/s handled while the sender floods (sender and path share the 2 CPUs)"
	figP50 := "TAP: conflict-detection latency p50 under that flood (send → engine event)"
	figP99 := "TAP: conflict-detection latency p99 under that flood"
	ok, note := sectionState(dir, "flood")
	if !ok {
		return []row{{figure: figCap, measured: note, target: "≥ 0.8× the plain reader"}, {figure: figDet, measured: note, target: "all"}}
	}
	fs, err1 := parseBenchFile(filepath.Join(dir, "flood.txt"))
	rs, err2 := parseBenchFile(filepath.Join(dir, "rawflood.txt"))
	if err := errors.Join(err1, err2); err != nil {
		return []row{{figure: figCap, measured: "FAILED: " + err.Error()}}
	}
	offs, _ := parseBenchFile(filepath.Join(dir, "floodoff.txt"))
	frames := meta["flood_frames"]
	capW, n := fs.get(pathDrain, "frames/s")
	if n == 0 {
		return []row{{figure: figCap, measured: "FAILED: no BenchmarkTAPFloodConflictDetection/drain result in flood.txt"}}
	}
	rawW, rn := rs.get(rawDrain, "frames/s")
	capC, _ := fs.get(pathDrain, "cpu-frames/s")
	rawC, _ := rs.get(rawDrain, "cpu-frames/s")
	wr := pairRatios(fs[pathDrain]["frames/s"], rs[rawDrain]["frames/s"])
	cr := pairRatios(fs[pathDrain]["cpu-frames/s"], rs[rawDrain]["cpu-frames/s"])
	lo, hi := fs.rng(pathDrain, "frames/s")
	rlo, rhi := rs.rng(rawDrain, "frames/s")
	ratioW := capW / rawW
	capHow := fmt.Sprintf("drain: `AIP_FLOOD_FRAMES=%s go test -run '^$' -bench TAPFloodConflictDetection/drain -benchtime 1x ./internal/integration/` (%s, %s–%s/s): a bound netstack's TAP is filled with %s ARP requests between other hosts (a conflicting announcement of the bound address every 1,000th) by an AF_PACKET socket while the path is held (the engine's first event blocks the Link's reader), then released; frames/s = frames the shim saw / (release → last frame seen). Baseline, interleaved run by run: `go test -run '^$' -bench TAPRawFlood/drain -benchtime 1x ./bench/` (%s, %s–%s/s), the same frames read by a bare `tap.Device.Read` loop. Ratio of the medians; per-run ratios %s (median %s). Per CPU-second of the process (frames / CPU time over the drain, which other tenants disturb less than the wall clock): path %s, reader %s, ratio %s (per run: median %s)",
		frames, runs(n), thousands(lo), thousands(hi), frames, runs(rn), thousands(rlo), thousands(rhi),
		fmtList(wr, 2), fnum(median(wr), 2), thousands(capC), thousands(rawC), ratio(capC, rawC), fnum(median(cr), 2))
	rows := []row{{
		figure:   figCap,
		measured: thousands(capW) + " frames/s",
		baseline: "plain TAP reader draining the same queue: " + thousands(rawW) + " frames/s",
		ratio:    ratio(capW, rawW),
		target:   status(ratioW >= 0.8, "≥ 0.8× the plain reader"),
		how:      capHow,
	}}
	if offW, on := offs.get(pathDrain, "frames/s"); on > 0 {
		offC, _ := offs.get(pathDrain, "cpu-frames/s")
		rows = append(rows, row{
			figure:   figOff,
			measured: thousands(offW) + " frames/s",
			baseline: "plain TAP reader: " + thousands(rawW) + " frames/s",
			ratio:    ratio(offW, rawW),
			how: fmt.Sprintf("`AIP_ARP_FASTPATH=0` and the same drain (%s, interleaved): every ARP frame still reaches the engine from the Link's read buffer, and then netstack (PacketBuffer, Ethernet, NIC, gVisor's ARP); per CPU-second %s/s (%s of the reader's)",
				runs(on), thousands(offC), ratio(offC, rawC)),
		})
	}
	var detMin = math.Inf(1)
	var detRuns int
	for _, set := range []benchSet{fs, offs} {
		for _, name := range []string{pathBlast, pathDrain} {
			for _, v := range set[name]["conflicts-detected"] {
				detMin = min(detMin, v)
				detRuns++
			}
		}
	}
	if ps, err := parseBenchFile(filepath.Join(dir, "paced.txt")); err == nil {
		for _, v := range ps[pathBlast]["conflicts-detected"] {
			detMin = min(detMin, v)
			detRuns++
		}
	}
	rows = append(rows, row{
		figure:   figDet,
		measured: fmt.Sprintf("%s%% in the worst of %d runs", fnum(detMin*100, 1), detRuns),
		target:   status(detMin >= 1, "all"),
		how:      fmt.Sprintf("every run above and below (drain, flat out and paced): DEFEND events (defend-once with a 1 ns DEFEND_INTERVAL, so that each conflict is one) matched by tag to the %d conflicting frames of a run", atoiOr(frames, 0)/1000),
	})

	bW, bn := fs.get(pathBlast, "frames/s")
	bSent, _ := fs.get(pathBlast, "sent-frames/s")
	bRecv, _ := fs.get(pathBlast, "received/sent")
	rbW, _ := rs.get(rawBlast, "frames/s")
	rbSent, _ := rs.get(rawBlast, "sent-frames/s")
	p50, _ := fs.get(pathBlast, "p50-ms")
	p99, _ := fs.get(pathBlast, "p99-ms")
	rawP50, _ := rs.get(rawBlast, "p50-ms")
	rawP99, _ := rs.get(rawBlast, "p99-ms")
	if bn > 0 {
		rows = append(rows, row{
			figure:   figBlast,
			measured: thousands(bW) + " frames/s",
			baseline: "plain reader, same sender: " + thousands(rbW) + " frames/s",
			ratio:    ratio(bW, rbW),
			how: fmt.Sprintf("blast: the same floods, read while the sender (in the same process, on the other CPU; batches of 32 by sendmmsg, qdisc bypassed: internal/floodsend) sends as fast as it can (%s): frames / (first send → last frame seen); the sender managed %s/s here and %s/s against the plain reader (received/sent %s), so the TAP's queue fills and the reader drains it, at first beside the sender, then alone",
				runs(bn), thousands(bSent), thousands(rbSent), fnum(bRecv, 3)),
		})
		latHow := "same runs: latency = engine DEFEND event time − send time of the tagged conflicting frame; baseline: send → read by the bare loop"
		if p99 > 5 {
			latHow += "; the sender outruns every reader, so conflicts wait behind the backlog in the TAP's queue (latency ≈ backlog / rate): see the paced rows for the path itself"
		}
		rows = append(rows,
			row{figure: figP50, measured: fms(p50), baseline: "plain reader: " + fms(rawP50), ratio: ratio(p50, rawP50), how: latHow},
			row{figure: figP99, measured: fms(p99), baseline: "plain reader: " + fms(rawP99), ratio: ratio(p99, rawP99), how: "same runs"})
	}
	return append(rows, pacedRows(dir, meta)...)
}

// fmtList prints v with prec decimals, comma-separated.
func fmtList(v []float64, prec int) string {
	var s []string
	for _, x := range v {
		s = append(s, fnum(x, prec))
	}
	return strings.Join(s, ", ")
}

// pacedRows: the same flood, paced at 0.8 × the measured capacity.
func pacedRows(dir string, meta map[string]string) []row {
	const full, raw = "BenchmarkTAPFloodConflictDetection/blast", "BenchmarkTAPRawFlood/blast"
	rate := thousands(atof(meta["paced_rate"]))
	fig50 := "TAP: conflict-detection latency p50, flood offered at " + rate + " frames/s (0.8× the path's capacity with the sender running)"
	fig99 := "TAP: conflict-detection latency p99, flood offered at " + rate + " frames/s (0.8× the path's capacity with the sender running)"
	if ok, note := sectionState(dir, "paced"); !ok {
		return []row{{figure: fig50, measured: note}, {figure: fig99, measured: note, target: "≤ 5 ms"}}
	}
	fs, err1 := parseBenchFile(filepath.Join(dir, "paced.txt"))
	rs, err2 := parseBenchFile(filepath.Join(dir, "rawpaced.txt"))
	if err := errors.Join(err1, err2); err != nil {
		return []row{{figure: fig50, measured: "FAILED: " + err.Error()}}
	}
	p50, n := fs.get(full, "p50-ms")
	if n == 0 {
		return []row{{figure: fig50, measured: "FAILED: no paced result"}}
	}
	p99, _ := fs.get(full, "p99-ms")
	handled, _ := fs.get(full, "frames/s")
	sent, _ := fs.get(full, "sent-frames/s")
	rawP50, rn := rs.get(raw, "p50-ms")
	rawP99, _ := rs.get(raw, "p99-ms")
	lo, hi := fs.rng(full, "p99-ms")
	capNote := ""
	if c := meta["path_capacity"]; c != "" {
		capNote = fmt.Sprintf(" = 0.8 × %s/s, the median rate the path sustained in the flat-out runs above, where the sender runs on the other CPU (alone, draining, the path manages more, but not with a sender beside it on 2 CPUs: offered 0.8× the drain capacity, the plain reader falls behind too)", thousands(atof(c)))
	}
	how := fmt.Sprintf("`AIP_FLOOD_RATE=%s AIP_FLOOD_FRAMES=%s go test -run '^$' -bench TAPFloodConflictDetection/blast -benchtime 1x ./internal/integration/` (%s, interleaved with `-bench TAPRawFlood/blast ./bench/` paced the same way, %s): offered %s frames/s%s; the sender kept %s/s, the path handled %s/s; latency = engine DEFEND event − send of each tagged conflict (%d per run)",
		meta["paced_rate"], meta["paced_frames"], runs(n), runs(rn), rate, capNote, thousands(sent), thousands(handled), atoiOr(meta["paced_frames"], 0)/1000)
	return []row{
		{figure: fig50, measured: fms(p50), baseline: "plain reader: " + fms(rawP50), ratio: ratio(p50, rawP50), how: how},
		{figure: fig99, measured: fms(p99), baseline: "plain reader: " + fms(rawP99), ratio: ratio(p99, rawP99),
			target: status(p99 <= 5, "≤ 5 ms"), how: fmt.Sprintf("same runs; p99 of each run %s–%s (%s)", fms(lo), fms(hi), fmtList(fs[full]["p99-ms"], 2))},
	}
}

// ---- TCP ----

func tcpRows(dir string, meta map[string]string) []row {
	fig := map[string]string{
		"send": "TCP throughput, netstack → kernel, stack.New on tap.Link",
		"recv": "TCP throughput, kernel → netstack, stack.New on tap.Link",
	}
	ok, note := sectionState(dir, "tcp")
	if !ok {
		return []row{{figure: fig["send"], measured: note, target: "≥ 0.9× fdbased"}, {figure: fig["recv"], measured: note, target: "≥ 0.9× fdbased"}}
	}
	set, err := parseBenchFile(filepath.Join(dir, "tcp.txt"))
	if err != nil {
		return []row{{figure: fig["send"], measured: "FAILED: " + err.Error()}}
	}
	var rows []row
	for _, dir := range []string{"send", "recv"} {
		t, n := set.get("BenchmarkTCPThroughput/tap/"+dir, "MB/s")
		f, _ := set.get("BenchmarkTCPThroughput/fdbased/"+dir, "MB/s")
		v, _ := set.get("BenchmarkTCPThroughput/veth/"+dir, "MB/s")
		if n == 0 {
			rows = append(rows, row{figure: fig[dir], measured: "FAILED: no result in tcp.txt"})
			continue
		}
		lo, hi := set.rng("BenchmarkTCPThroughput/tap/"+dir, "MB/s")
		flo, fhi := set.rng("BenchmarkTCPThroughput/fdbased/"+dir, "MB/s")
		pr := pairRatios(set["BenchmarkTCPThroughput/tap/"+dir]["MB/s"], set["BenchmarkTCPThroughput/fdbased/"+dir]["MB/s"])
		acks := ""
		if ta, k := set.get("BenchmarkTCPThroughput/tap/"+dir, "segs/ack"); k > 0 {
			fa, _ := set.get("BenchmarkTCPThroughput/fdbased/"+dir, "segs/ack")
			acks = fmt.Sprintf("; the kernel receiver sent one ACK per %s data segments over tap.Link, per %s over fdbased (medians: each ACK is work for netstack)", fnum(ta, 1), fnum(fa, 1))
		}
		rows = append(rows, row{
			figure:   fig[dir],
			measured: fnum(t, 0) + " MB/s",
			baseline: "the same gVisor stack on gVisor's fdbased endpoint, same kind of TAP: " + fnum(f, 0) + " MB/s",
			ratio:    ratio(t, f),
			target:   status(t >= 0.9*f, "≥ 0.9× fdbased"),
			how: fmt.Sprintf("`AIP_TCP_SECONDS=%s go test -run '^$' -bench TCPThroughput/'(tap|fdbased|veth)'/%s -benchtime 1x ./bench/` (%s, the three paths interleaved run by run): one TCP connection between a gVisor stack (static 10.201.0.2/24, MTU 1500, no offloads) and a kernel socket on the TAP's kernel side, 64 KiB writes for %s s, MB/s = bytes / (first write → reader's EOF); tap %s–%s, fdbased %s–%s MB/s, per-run ratios %s%s. Ceiling: kernel to kernel over a veth between two namespaces (MTU 1500, with the kernel's own offloads): %s MB/s, of which tap.Link reaches %s",
				meta["tcp_seconds"], dir, runs(n), meta["tcp_seconds"], fnum(lo, 0), fnum(hi, 0), fnum(flo, 0), fnum(fhi, 0), fmtList(pr, 2), acks, fnum(v, 0), ratio(t, v)),
		})
	}
	return rows
}

// ---- crowd ----

func crowdRows(dir string, meta map[string]string) []row {
	fig := "start-up, " + orNA(meta["crowd"]) + " daemons started at once on one bridge: TAP really up (kernel: IFF_RUNNING) → engine starts probing"
	ok, note := sectionState(dir, "crowd")
	if !ok {
		return []row{{figure: fig, measured: note, target: "≤ 20 ms"}}
	}
	var res CrowdResult
	if err := readJSON(filepath.Join(dir, "crowd.json"), &res); err != nil || len(res.Reps) == 0 {
		return []row{{figure: fig, measured: fmt.Sprintf("FAILED: no results (%v)", err)}}
	}
	col := func(f func(CrowdRep) *float64) []float64 {
		var v []float64
		for _, r := range res.Reps {
			if p := f(r); p != nil {
				v = append(v, *p)
			}
		}
		slices.Sort(v)
		return v
	}
	pct := func(v []float64, p float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return v[int(math.Round(p*float64(len(v)-1)))]
	}
	within := func(v []float64, lim float64) int {
		n := 0
		for _, x := range v {
			if x <= lim {
				n++
			}
		}
		return n
	}
	started := col(func(r CrowdRep) *float64 { return r.Started })
	probe := col(func(r CrowdRep) *float64 { p := r.Probe; return &p })
	opened := col(func(r CrowdRep) *float64 { return r.Opened })
	ours := col(func(r CrowdRep) *float64 {
		if r.Started == nil || r.Opened == nil {
			return nil
		}
		d := *r.Started - *r.Opened
		return &d
	})
	sum := func(v []float64) string {
		return fmt.Sprintf("median %s, p90 %s, p95 %s, max %s; %d of %d within 20 ms", fms(pct(v, 0.5)), fms(pct(v, 0.9)), fms(pct(v, 0.95)), fms(pct(v, 1)), within(v, 20), len(v))
	}
	how := fmt.Sprintf("`aipbench crowd -n %d -rounds %d` (bench/aipbench/crowd.go): a bridge with %d TAP ports in a namespace, %d rounds of %d autoipd (`-o delay=1 -p 1 -a 1 -w 1`, fresh state, own MACs) exec'd at once; a real-time-priority rtnetlink listener takes the time the kernel reports each TAP running, the daemon's JSON log when its engine left link-down (PROBE_WAIT begun); %d daemons without a result. The first probe on the wire (AF_PACKET kernel timestamp, so PROBE_WAIT ≤ 0.5 ms included): %s",
		res.Daemons, res.Rounds, res.Daemons, res.Rounds, res.Daemons, res.Missing, sum(probe))
	rows := []row{{
		figure:   fig,
		measured: sum(started),
		target:   status(len(started) > 0 && pct(started, 1) <= 20, "≤ 20 ms, every daemon"),
		how:      how,
	}}
	if len(opened) > 0 {
		rows = append(rows, row{
			figure:   "  of which TUNSETIFF returning (the kernel sets the TAP running inside that ioctl)",
			measured: sum(opened),
			how:      "TAP running → the daemon's \"TAP opened\" record, written right after TUNSETIFF returns (instrumented runs: TUNSETIFF itself takes this long, everything after it is < 0.5 ms): the carrier goes on inside the ioctl and the kernel's link worker marks the TAP running at once, but the ioctl returns to the daemon only when the daemon gets a CPU again, which with 20 processes starting on 2 CPUs can be tens of ms; the TAP cannot be written before",
		}, row{
			figure:   "  and autoipd's own part: TUNSETIFF returned → engine starts probing",
			measured: sum(ours),
			target:   status(pct(ours, 1) <= 20, "≤ 20 ms"),
			how:      "\"TAP opened\" → the engine's first state after link-down, same logs: the link-state report (rtnetlink notification or the check right after the open) and the engine's step",
		})
	}
	return rows
}

func atoiOr(s string, def int) int {
	if v, err := strconv.Atoi(s); err == nil {
		return v
	}
	return def
}

// ---- claim ----

func claimRows(dir string, meta map[string]string) []row {
	var rows []row
	for _, c := range []struct{ mode, figure, settings string }{
		{"rfc", "claim at RFC defaults: start → BIND hook", "`autoipd -i TAP` (PROBE_WAIT 1 s, 3 probes 1–2 s apart, ANNOUNCE_WAIT 2 s; bound after the first announcement)"},
		{"fast", "claim at the fastest documented settings: start → BIND hook", "`autoipd -i TAP -o delay=1 -p 1 -a 1 -w 1` (PROBE_WAIT ≤ 0.5 ms, 1 probe, ANNOUNCE_WAIT 1 s)"},
		{"wait", "claim at the fastest settings: `autoipd -wait` start → exit", "`autoipd -wait -i TAP -o delay=1 -p 1 -a 1 -w 1`"},
	} {
		ok, note := sectionState(dir, "claim-"+c.mode)
		if !ok {
			rows = append(rows, row{figure: c.figure, measured: note})
			continue
		}
		var res ClaimResult
		if err := readJSON(filepath.Join(dir, "claim-"+c.mode+".json"), &res); err != nil || len(res.Reps) == 0 {
			rows = append(rows, row{figure: c.figure, measured: fmt.Sprintf("FAILED: no results (%v)", err)})
			continue
		}
		col := func(f func(ClaimRep) float64) []float64 {
			var v []float64
			for _, r := range res.Reps {
				v = append(v, f(r))
			}
			return v
		}
		meas := median(col(func(r ClaimRep) float64 { return r.Measured }))
		sched := median(col(func(r ClaimRep) float64 { return r.Scheduled }))
		ov := col(func(r ClaimRep) float64 { return r.Overhead })
		restarts := 0
		for _, r := range res.Reps {
			if r.Restarts > 1 {
				restarts++
			}
		}
		end := "the BIND hook starts (the hook is bench/aipbench/hook, a minimal Go program that stamps the time first thing)"
		if c.mode == "wait" {
			end = "`autoipd -wait` exits 0 having printed the address (it polls the status socket every 50 ms)"
		}
		how := fmt.Sprintf("%s in a namespace on a TAP that is up, fresh state dir and a different MAC per run, %s; measured from just before exec until %s. Baseline: the same autoip.Engine (same MAC → seed, same timing) run in virtual time by aipbench, time from Start to BIND",
			c.settings, runs(len(res.Reps)), end)
		rows = append(rows, row{
			figure:   c.figure,
			measured: fms(meas),
			baseline: "scheduled by the engine's timers: " + fms(sched),
			ratio:    ratio(meas, sched),
			how:      how,
		})
		split := fmt.Sprintf("overhead = measured − scheduled per run, median (min–max %s–%s); its parts (medians): process start → engine starts its first attempt %s (exec, Go runtime, netstack, client, then the TAP opened and reported up at %s), engine BIND event later than scheduled %s (timer slack, plus whatever work is done inside a timer step, by which the next timer is armed late), BIND event → hook running %s = %s until the daemon logs the bound state (the BIND step's outputs: address, route, state save) + %s to fork/exec the hook",
			fms(slices.Min(ov)), fms(slices.Max(ov)),
			fms(median(col(func(r ClaimRep) float64 { return r.Startup }))),
			fms(median(col(func(r ClaimRep) float64 { return r.LinkUp }))),
			fms(median(col(func(r ClaimRep) float64 { return r.TimerLate }))),
			fms(median(col(func(r ClaimRep) float64 { return r.HookDelay }))),
			fms(median(col(func(r ClaimRep) float64 { return r.BindWork }))),
			fms(median(col(func(r ClaimRep) float64 { return r.HookExec }))))
		if c.mode == "wait" {
			split = fmt.Sprintf("overhead = measured − scheduled per run, median (min–max %s–%s); -wait re-executes autoipd in the background and polls its status socket every 50 ms, so it adds 0–50 ms to the BIND", fms(slices.Min(ov)), fms(slices.Max(ov)))
		}
		late := 0
		for _, r := range res.Reps {
			if r.LinkUp >= 500 {
				late++
			}
		}
		if late > 0 {
			split += fmt.Sprintf("; **in %d of %d runs the TAP was reported up only ~1 s after start**: tap.Link's first check, made right after opening the TAP, raced the kernel's asynchronous carrier → IFF_RUNNING update (linkwatch work queue), saw the link down, and the next check comes a -check-interval (1 s) later", late, len(res.Reps))
			var rest []float64
			for _, r := range res.Reps {
				if r.LinkUp < 500 {
					rest = append(rest, r.Overhead)
				}
			}
			switch len(rest) {
			case 0:
			case 1:
				split += fmt.Sprintf(" (overhead of the other run: %s)", fms(rest[0]))
			default:
				split += fmt.Sprintf(" (overhead of the other %d runs: median %s)", len(rest), fms(median(rest)))
			}
		}
		if restarts > 0 {
			split += fmt.Sprintf("; in %d of %d runs the daemon started the engine before the TAP monitor had reported the link up, so the engine was paused and restarted (a second PROBE_WAIT draw, which the virtual run replays)", restarts, len(res.Reps))
		}
		rows = append(rows, row{
			figure:   "  overhead of that claim",
			measured: fms(median(ov)),
			baseline: "",
			how:      split,
		})
	}
	return rows
}

// ---- simulator ----

func simRows(dir string, meta map[string]string) []row {
	ok, note := sectionState(dir, "sim")
	if !ok {
		return []row{{figure: "sim: boot storms of 1,000 and 10,000 hosts", measured: note}}
	}
	set, err := parseBenchFile(filepath.Join(dir, "sim.txt"))
	if err != nil {
		return []row{{figure: "sim: boot storms", measured: "FAILED: " + err.Error()}}
	}
	var rows []row
	wall1, _ := set.get("BenchmarkBootStorm/hosts=1000", "wall-s")
	heap1, _ := set.get("BenchmarkBootStorm/hosts=1000", "heap-KiB/host")
	for _, n := range []int{1000, 10000} {
		name := fmt.Sprintf("BenchmarkBootStorm/hosts=%d", n)
		wall, k := set.get(name, "wall-s")
		if k == 0 {
			rows = append(rows, row{figure: fmt.Sprintf("sim: %s-host boot storm", thousands(float64(n))), measured: "FAILED: no result in sim.txt"})
			continue
		}
		build, _ := set.get(name, "build-s")
		spw, _ := set.get(name, "sim/wall")
		heap, _ := set.get(name, "heap-KiB/host")
		peak, _ := set.get(name, "peak-RSS-MiB")
		frames, _ := set.get(name, "frames")
		how := fmt.Sprintf("`go test -run '^$' -bench BootStorm -benchtime 1x -count %s ./sim/` (%s): %s real gVisor netstacks with the engine boot at the same instant on one ideal segment, run until all are bound (checked: all bound, all unique); %s frames", meta["sim_count"], runs(k), thousands(float64(n)), thousands(frames))
		r := row{
			figure:   fmt.Sprintf("sim: %s-host boot storm, wall time", thousands(float64(n))),
			measured: fnum(wall, 2) + " s",
			how:      how + fmt.Sprintf("; wall = building the netstacks (%s s) + running", fnum(build, 2)),
		}
		if n == 10000 {
			r.baseline = "10 × the 1,000-host run: " + fnum(10*wall1, 2) + " s"
			r.ratio = ratio(wall, 10*wall1)
		}
		rows = append(rows, r)
		rows = append(rows, row{
			figure:   fmt.Sprintf("sim: %s hosts, simulated time / wall time", thousands(float64(n))),
			measured: fnum(spw, 2) + "×",
			how:      "same run: virtual time until the last host bound / wall time",
		})
		mr := row{
			figure:   fmt.Sprintf("sim: %s hosts, memory per host", thousands(float64(n))),
			measured: fnum(heap, 1) + " KiB heap/host",
			how:      fmt.Sprintf("same run: live heap after GC / hosts; the process's peak RSS was %s MiB (%s KiB/host, includes garbage and the runtime)", fnum(peak, 0), fnum(peak*1024/float64(n), 1)),
		}
		if n == 10000 {
			mr.baseline = "1,000-host run: " + fnum(heap1, 1) + " KiB/host"
			mr.ratio = ratio(heap, heap1)
		}
		rows = append(rows, mr)
	}
	return rows
}

// ---- daemon ----

func daemonRows(dir string, meta map[string]string) []row {
	var rows []row
	size := readEnvFile(filepath.Join(dir, "size.env"))
	if ok, note := sectionState(dir, "size"); !ok {
		rows = append(rows, row{figure: "daemon: stripped binary size", measured: note})
	} else {
		s := atof(size["stripped"])
		u := atof(size["unstripped"])
		nc := atof(size["stripped_nocgo"])
		rows = append(rows, row{
			figure:   "daemon: stripped binary size",
			measured: fmt.Sprintf("%s MB (%s MiB)", fnum(s/1e6, 2), fnum(s/(1<<20), 2)),
			baseline: fmt.Sprintf("not stripped (`go build -trimpath`): %s MB", fnum(u/1e6, 2)),
			ratio:    ratio(s, u),
			target:   status(s <= 8e6, "≤ 8 MB"),
			how:      fmt.Sprintf("`go build -trimpath -ldflags=\"-s -w\" ./cmd/autoipd`, file size (%s; %s bytes)", size["linking"], thousands(s)),
		})
		if !math.IsNaN(nc) {
			rows[len(rows)-1].how += fmt.Sprintf("; with CGO_ENABLED=0 as well: %s MB, statically linked", fnum(nc/1e6, 2))
		}
		gp := size["gopacket"]
		rows = append(rows, row{
			figure:   "daemon: gopacket/layers on autoipd's import path",
			measured: map[bool]string{true: "no", false: "YES: " + gp}[gp == "none"],
			target:   status(gp == "none", "not linked"),
			how:      "`go list -deps ./cmd/autoipd | grep gopacket` (notes §7: importing gopacket/layers alone costs ~9–10 MB RSS at init)",
		})
	}
	ok, note := sectionState(dir, "idle")
	if !ok {
		return append(rows,
			row{figure: "daemon: RSS bound and idle", measured: note, target: "≤ 10 MB"},
			row{figure: "daemon: CPU used while bound and idle", measured: note, target: "≈ 0"},
			row{figure: "daemon: wake-ups while bound and idle", measured: note, target: "≤ 1 /s"})
	}
	var res IdleResult
	if err := readJSON(filepath.Join(dir, "idle.json"), &res); err != nil {
		return append(rows, row{figure: "daemon: RSS and idle CPU", measured: "FAILED: " + err.Error()})
	}
	st := res.AtSettle
	rssB := float64(st.VmRSS) * 1024
	how := fmt.Sprintf("VmRSS from /proc/PID/status of the stripped autoipd (`-o delay=1 -p 1 -a 1 -w 1`, TAP in a namespace) %s s after its BIND hook: RssAnon %s MiB (heap, stacks, runtime) + RssFile %s MiB (mapped binary and libc pages); VmHWM %s MiB; %d threads; after the %s s idle period VmRSS was %s MiB",
		fnum(res.SettleS, 0), fnum(float64(st.RssAnon)/1024, 2), fnum(float64(st.RssFile)/1024, 2), fnum(float64(st.VmHWM)/1024, 2), st.Threads,
		fnum(res.IdleS, 0), fnum(float64(res.AtEnd.VmRSS)/1024, 2))
	if a := res.Alt; a != nil {
		how += fmt.Sprintf("; the CGO_ENABLED=0 build, measured the same way: %s MB (RssFile %s MiB: no libc mapped)", fnum(float64(a.VmRSS)*1024/1e6, 2), fnum(float64(a.RssFile)/1024, 2))
	}
	if len(res.Variants) > 0 {
		var parts []string
		for _, v := range res.Variants {
			parts = append(parts, fmt.Sprintf("%s → %s MiB", v.Env, fnum(float64(v.Status.VmRSS)/1024, 2)))
		}
		how += "; investigation: " + strings.Join(parts, ", ")
	}
	if m := res.MemStats; m != nil {
		how += fmt.Sprintf("; runtime.MemStats of internal/daemon run in-process (aipbench memstats): heap in use %s KiB, stacks %s KiB, runtime metadata %s KiB, Sys %s KiB, %d goroutines",
			thousands(float64(m.HeapInuseKB)), thousands(float64(m.StackInuseKB)), thousands(float64(m.OtherSysKB)), thousands(float64(m.SysKB)), m.Goroutines)
	}
	r := row{
		figure:   fmt.Sprintf("daemon: RSS bound and idle %s s", fnum(res.SettleS, 0)),
		measured: fmt.Sprintf("%s MB (%s MiB)", fnum(rssB/1e6, 2), fnum(rssB/(1<<20), 2)),
		target:   status(rssB <= 10e6, "≤ 10 MB"),
		how:      how,
	}
	if b := res.Baseline; b.VmRSS > 0 {
		r.baseline = fmt.Sprintf("a minimal idle Go program: %s MB", fnum(float64(b.VmRSS)*1024/1e6, 2))
		r.ratio = ratio(float64(st.VmRSS), float64(b.VmRSS))
		r.how += fmt.Sprintf(". Baseline: bench/aipbench/hook -idle (Go runtime + package net, %s MiB anon + %s MiB file), read at the same time", fnum(float64(b.RssAnon)/1024, 2), fnum(float64(b.RssFile)/1024, 2))
	}
	rows = append(rows, r)
	ticks := res.CPUAfter.Ticks - res.CPUBefore.Ticks
	cpuMS := float64(ticks) * 1000 / float64(res.ClkTck)
	schedMS := float64(res.CPUAfter.SchedNS-res.CPUBefore.SchedNS) / 1e6
	pct := schedMS / (res.IdleS * 1000) * 100
	rows = append(rows, row{
		figure:   fmt.Sprintf("daemon: CPU used over %s s idle while bound", fnum(res.IdleS, 0)),
		measured: fmt.Sprintf("%s ms (utime+stime: %d %s)", fnum(cpuMS, 0), ticks, map[bool]string{true: "tick", false: "ticks"}[ticks == 1]),
		target:   status(pct <= 0.1 && cpuMS <= res.IdleS*1000*0.001+10, "≈ 0 (≤ 0.1% of a core)"),
		how: fmt.Sprintf("utime+stime from /proc/PID/stat before and after (CLK_TCK %d, so ±%s ms); on-CPU time from /proc/PID/task/*/schedstat: %s ms = %s%% of one core",
			res.ClkTck, fnum(1000/float64(res.ClkTck), 0), fnum(schedMS, 2), fnum(pct, 4)),
	})
	vol := res.CPUAfter.Voluntary - res.CPUBefore.Voluntary
	inv := res.CPUAfter.Involuntar - res.CPUBefore.Involuntar
	perS := float64(vol) / res.IdleS
	rows = append(rows, row{
		figure:   fmt.Sprintf("daemon: wake-ups over %s s bound and idle", fnum(res.IdleS, 0)),
		measured: fmt.Sprintf("%s /s (%d in %s s)", fnum(perS, 2), vol, fnum(res.IdleS, 0)),
		target:   status(perS <= 1, "≤ 1 /s"),
		how: fmt.Sprintf("voluntary context switches summed over the daemon's threads (/proc/PID/task/*/status; %d involuntary), default settings but `-o delay=1 -p 1 -a 1 -w 1`. Nothing in the daemon is periodic any more: the TAP's state comes from the kernel's link notifications (an rtnetlink socket read through Go's poller), the state directory is watched with inotify, and a bound engine under the default policy has no timer; what is left is the Go runtime (sysmon sleeps up to 60 s when nothing is due, a forced GC every 2 min)",
			inv),
	})
	if len(res.Detect) > 0 {
		var parts []string
		worst := 0.0
		for _, d := range res.Detect {
			parts = append(parts, d.Op+" "+fms(d.MS))
			worst = max(worst, d.MS)
		}
		rows = append(rows, row{
			figure:   "daemon: a link change noticed (right after that idle period)",
			measured: strings.Join(parts, ", "),
			target:   status(worst <= 2000, "≤ 2 s"),
			how:      "the same daemon's TAP taken down (`ip link set down`), up, deleted (`ip link del`) and re-created (`ip tuntap add` + `ip link set up`): time from just before the `ip` command(s) to the daemon's \"link state changed\" log record (exec of `ip` included)",
		})
	}
	return rows
}

func atof(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}
