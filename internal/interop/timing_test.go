package interop

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// timingRow is one measured interval of one case, taken from the bridge
// capture (and, for hook events, autoipd's AUTOIPD_TIME): one clock.
type timingRow struct {
	peer, kase, side, metric string
	d                        time.Duration
}

var timings struct {
	mu   sync.Mutex
	rows []timingRow
}

// caseName is the last element of t's name.
func caseName(t *testing.T) string {
	n := t.Name()
	return n[strings.LastIndexByte(n, '/')+1:]
}

// record adds the interval from..to to the timing table.
func record(t *testing.T, peer, side, metric string, from, to time.Time) {
	t.Helper()
	if from.IsZero() || to.IsZero() {
		t.Logf("timing %s %s %q: not measured", peer, side, metric)
		return
	}
	r := timingRow{peer: peer, kase: caseName(t), side: side, metric: metric, d: to.Sub(from)}
	t.Logf("timing: %s: %.1f ms", metric, float64(r.d.Microseconds())/1000)
	timings.mu.Lock()
	timings.rows = append(timings.rows, r)
	timings.mu.Unlock()
}

// logTimings prints the table (verbose mode only, like every t.Log).
func logTimings(t *testing.T) {
	timings.mu.Lock()
	rows := append([]timingRow(nil), timings.rows...)
	timings.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].peer != rows[j].peer {
			return rows[i].peer < rows[j].peer
		}
		return rows[i].kase < rows[j].kase
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "peer\tcase\tside\tinterval\ttime")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f ms\n", r.peer, r.kase, r.side, r.metric, float64(r.d.Microseconds())/1000)
	}
	tw.Flush()
	t.Logf("claim and move-off times (from the bridge capture; autoipd fast timing = -o delay=100 -w 1 unless marked RFC):\n%s", b.String())
}
