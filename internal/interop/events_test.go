package interop

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// event is one line of a hook or action script log (testdata/*.sh): what
// happened to which address, and when.
type event struct {
	at    time.Time  // when it happened: AUTOIPD_TIME if the daemon gave it, else ran
	ran   time.Time  // when the script ran
	ev    string     // BIND, CONFLICT, UNBIND, STOP; dhcpcd: its reason (IPV4LL, ...)
	iface string     //
	addr  netip.Addr // the address; dhcpcd: new_ip_address (invalid when dropped)
	old   netip.Addr // dhcpcd: old_ip_address
	cmac  string     // autoipd: AUTOIPD_CONFLICT_MAC
	kind  string     // autoipd: AUTOIPD_PACKET_KIND
	phase string     // autoipd: AUTOIPD_PHASE
}

// parseEvent parses "ts=SEC.NSEC ev=... if=... addr=... [t=RFC3339] ...".
func parseEvent(s string) (event, bool) {
	var e event
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "ts":
			sec, frac, _ := strings.Cut(v, ".")
			si, err := strconv.ParseInt(sec, 10, 64)
			if err != nil {
				return e, false
			}
			var ns int64
			if frac != "" {
				frac = (frac + "000000000")[:9]
				ns, _ = strconv.ParseInt(frac, 10, 64)
			}
			e.ran = time.Unix(si, ns)
		case "t":
			if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
				e.at = ts
			}
		case "ev":
			e.ev = v
		case "if":
			e.iface = v
		case "addr":
			e.addr, _ = netip.ParseAddr(v)
		case "old":
			e.old, _ = netip.ParseAddr(v)
		case "cmac":
			e.cmac = v
		case "kind":
			e.kind = v
		case "phase":
			e.phase = v
		}
	}
	if e.ev == "" || e.ran.IsZero() {
		return e, false
	}
	if e.at.IsZero() {
		e.at = e.ran
	}
	return e, true
}

// readEvents reads an event log; a missing file is no events.
func readEvents(path string) []event {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []event
	for _, l := range strings.Split(string(b), "\n") {
		if e, ok := parseEvent(l); ok {
			out = append(out, e)
		}
	}
	return out
}

// heldAfter returns the address an avahi-style event sequence (BIND, then
// CONFLICT/UNBIND/STOP) leaves held, if any.
func heldAfter(evs []event) netip.Addr {
	var cur netip.Addr
	for _, e := range evs {
		switch e.ev {
		case "BIND":
			cur = e.addr
		case "CONFLICT", "UNBIND", "STOP":
			if e.addr == cur {
				cur = netip.Addr{}
			}
		}
	}
	return cur
}

func countEvents(evs []event, ev string, addr netip.Addr) int {
	n := 0
	for _, e := range evs {
		if e.ev == ev && (!addr.IsValid() || e.addr == addr) {
			n++
		}
	}
	return n
}

func firstEvent(evs []event, ev string, addr netip.Addr) (event, bool) {
	for _, e := range evs {
		if e.ev == ev && (!addr.IsValid() || e.addr == addr) {
			return e, true
		}
	}
	return event{}, false
}

func TestParseEvent(t *testing.T) {
	e, ok := parseEvent("ts=1795434757.027565239 ev=CONFLICT if=aipt0 addr=169.254.20.20 t=2026-11-23T11:52:37.021145253Z cmac=02:11:22:33:44:55 kind=announcement phase=bound")
	if !ok || e.ev != "CONFLICT" || e.iface != "aipt0" || e.addr != netip.MustParseAddr("169.254.20.20") ||
		e.cmac != "02:11:22:33:44:55" || e.kind != "announcement" || e.phase != "bound" {
		t.Fatalf("parsed %+v, %v", e, ok)
	}
	if want := time.Date(2026, 11, 23, 11, 52, 37, 21145253, time.UTC); !e.at.Equal(want) {
		t.Errorf("at = %v, want AUTOIPD_TIME %v", e.at, want)
	}
	if want := time.Unix(1795434757, 27565239); !e.ran.Equal(want) {
		t.Errorf("ran = %v, want %v", e.ran, want)
	}
	d, ok := parseEvent("ts=1795434588.4 ev=IPV4LL if=aipv1 addr= old=169.254.1.2")
	if !ok || d.addr.IsValid() || d.old != netip.MustParseAddr("169.254.1.2") || !d.at.Equal(d.ran) ||
		d.ran.Nanosecond() != 400000000 {
		t.Fatalf("parsed %+v, %v", d, ok)
	}
	if _, ok := parseEvent("garbage"); ok {
		t.Error("garbage parsed")
	}
	evs := []event{{ev: "BIND", addr: netip.MustParseAddr("169.254.1.1")}, {ev: "CONFLICT", addr: netip.MustParseAddr("169.254.1.1")},
		{ev: "BIND", addr: netip.MustParseAddr("169.254.2.2")}}
	if got := heldAfter(evs); got != netip.MustParseAddr("169.254.2.2") {
		t.Errorf("heldAfter = %v", got)
	}
	if got := heldAfter(evs[:2]); got.IsValid() {
		t.Errorf("heldAfter(BIND, CONFLICT) = %v", got)
	}
}
