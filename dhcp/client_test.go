package dhcp

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func pool(addrs ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestRFC2131_4_4_1_Acquire: INIT waits at most InitDelay, then DISCOVER
// (broadcast), OFFER, REQUEST naming the server and the offered address,
// ACK, then the address is probed (RFC 5227) and only then configured, with
// the server's mask.
func TestRFC2131_4_4_1_Acquire(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10"), lease: time.Hour}
	h := newHarness(t, Config{}, srv)
	h.start()
	if len(h.sent) != 0 {
		t.Fatal("sent before the initial delay")
	}
	got := h.runUntilBound(time.Minute)
	if got != netip.MustParsePrefix("192.0.2.10/24") {
		t.Fatalf("configured %v", got)
	}
	d := h.sentOf(Discover)
	if len(d) != 1 || d[0].at > DefaultInitDelay || d[0].to != broadcast4 || d[0].toHW != broadcastHW {
		t.Fatalf("discover %+v", d)
	}
	r := h.sentOf(Request)
	if len(r) != 1 {
		t.Fatalf("requests %+v", r)
	}
	if a, _ := r[0].msg.Addr4(OptRequestedIP); a != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("requested %v", a)
	}
	if s, _ := r[0].msg.Addr4(OptServerID); s != serverIP || r[0].msg.CIAddr.IsValid() && !r[0].msg.CIAddr.IsUnspecified() {
		t.Errorf("request server id %v ciaddr %v", s, r[0].msg.CIAddr)
	}
	if r[0].msg.XID != d[0].msg.XID {
		t.Error("request is not in the discover's transaction")
	}
	if len(h.checked) != 1 || h.checked[0] != got.Addr() {
		t.Errorf("checked %v before configuring", h.checked)
	}
	// Configure comes after the check, never before.
	ci, cf := -1, -1
	for i, o := range h.outs {
		switch o.Kind {
		case OutCheck:
			ci = i
		case OutConfigure:
			cf = i
		}
	}
	if ci < 0 || cf < ci {
		t.Errorf("check at output %d, configure at %d", ci, cf)
	}
	b := h.eventsOf(EventLeaseBound)
	if len(b) != 1 || len(b[0].Lease.Routers) != 1 || b[0].Lease.Routers[0] != routerIP || len(b[0].Lease.DNS) != 2 {
		t.Errorf("bound events %+v", b)
	}
	if h.saved.Addr != got {
		t.Errorf("saved lease %v", h.saved.Addr)
	}
}

// TestR32_DeclineAddressInUse: an acknowledged address that the RFC 5227
// probe finds in use is never configured; DHCPDECLINE goes to the server
// (broadcast, requested IP and server id), and after ten seconds another
// address is requested and configured.
func TestR32_DeclineAddressInUse(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10", "192.0.2.11"), lease: time.Hour}
	h := newHarness(t, Config{}, srv)
	h.inUse[netip.MustParseAddr("192.0.2.10")] = true
	h.start()
	got := h.runUntilBound(time.Minute)
	if got.Addr() != netip.MustParseAddr("192.0.2.11") {
		t.Fatalf("configured %v, want the second address", got)
	}
	dec := h.sentOf(Decline)
	if len(dec) != 1 {
		t.Fatalf("declines %+v\n%s", dec, h.dump())
	}
	if a, _ := dec[0].msg.Addr4(OptRequestedIP); a != netip.MustParseAddr("192.0.2.10") || dec[0].to != broadcast4 {
		t.Errorf("decline for %v to %v", a, dec[0].to)
	}
	if s, _ := dec[0].msg.Addr4(OptServerID); s != serverIP {
		t.Errorf("decline server id %v", s)
	}
	var afterDecline time.Duration
	for _, s := range h.sent {
		if s.msg.Type == Discover && s.at > dec[0].at {
			afterDecline = s.at - dec[0].at
			break
		}
	}
	if afterDecline < DeclineWait {
		t.Errorf("new discover %v after the decline, want at least %v (RFC 2131 §3.1.5)", afterDecline, DeclineWait)
	}
	if ev := h.eventsOf(EventDeclined); len(ev) != 1 || ev[0].Lease.Addr.Addr() != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("declined events %+v", ev)
	}
	for _, o := range h.outs {
		if o.Kind == OutConfigure && o.Lease.Addr.Addr() == netip.MustParseAddr("192.0.2.10") {
			t.Fatal("the address in use was configured")
		}
	}
}

// TestRFC2131_4_4_5_RenewRebindExpire: with a silent server after binding,
// the client renews at T1 (unicast to the server), rebinds at T2
// (broadcast), retransmits at least 60 s apart, and gives the lease up at
// its end, then starts over.
func TestRFC2131_4_4_5_RenewRebindExpire(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10"), lease: time.Hour}
	h := newHarness(t, Config{}, srv)
	h.start()
	h.runUntilBound(time.Minute)
	l := h.c.Lease()
	if l.T1 < l.Duration*95/200 || l.T1 > l.Duration/2 || l.T2 < l.Duration*7/8*95/100 || l.T2 > l.Duration*7/8 {
		t.Fatalf("T1 %v T2 %v for a %v lease: want the RFC's defaults less at most 5%%", l.T1, l.T2, l.Duration)
	}
	srv.silent = true
	mark := len(h.sent)
	h.runUntil(l.Acquired.Add(l.Duration+time.Second), nil)
	var renew, rebind []sent
	for _, s := range h.sent[mark:] {
		if s.msg.Type != Request {
			continue
		}
		if s.to == serverIP && s.toHW == serverHW {
			renew = append(renew, s)
		} else if s.to == broadcast4 && s.msg.CIAddr == l.Addr.Addr() {
			rebind = append(rebind, s)
		}
	}
	if len(renew) == 0 || renew[0].at != l.Acquired.Add(l.T1).Sub(t0) {
		t.Fatalf("renewals %+v, want the first at T1 %v", renew, l.T1)
	}
	if len(rebind) == 0 || rebind[0].at != l.Acquired.Add(l.T2).Sub(t0) {
		t.Fatalf("rebinds %+v, want the first at T2 %v", rebind, l.T2)
	}
	for _, ss := range [][]sent{renew, rebind} {
		for i := 1; i < len(ss); i++ {
			if gap := ss[i].at - ss[i-1].at; gap < MinRenewRetransmit && ss[i].at != l.Duration {
				t.Errorf("retransmission gap %v < %v", gap, MinRenewRetransmit)
			}
		}
	}
	lost := h.eventsOf(EventLeaseLost)
	if len(lost) != 1 || lost[0].Reason != "expired" || !lost[0].Time.Equal(l.Expiry()) {
		t.Fatalf("lost events %+v, want expired at %v", lost, l.Expiry().Sub(t0))
	}
	if h.configured.IsValid() || h.c.State() != StateSelecting && h.c.State() != StateInit {
		t.Errorf("after expiry: configured %v, state %v", h.configured, h.c.State())
	}
	if !h.saved.IsZero() {
		t.Error("expired lease still saved")
	}
}

// TestRFC2131_4_4_5_RenewSucceeds: a server that answers the renewal extends
// the lease without reconfiguring it from scratch: no second check.
func TestRFC2131_4_4_5_RenewSucceeds(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10"), lease: 10 * time.Minute, t1: 5 * time.Minute, t2: 8 * time.Minute}
	h := newHarness(t, Config{}, srv)
	h.start()
	h.runUntilBound(time.Minute)
	first := h.c.Lease()
	if first.T1 != 5*time.Minute || first.T2 != 8*time.Minute {
		t.Fatalf("server T1/T2 not used: %v %v", first.T1, first.T2)
	}
	h.runFor(30 * time.Minute)
	if n := len(h.eventsOf(EventLeaseRenewed)); n < 5 {
		t.Errorf("%d renewals in 30 minutes of 10-minute leases", n)
	}
	if len(h.checked) != 1 || len(h.eventsOf(EventLeaseLost)) != 0 {
		t.Errorf("checks %v, lost %v", h.checked, h.eventsOf(EventLeaseLost))
	}
}

// TestRFC2131_3_2_InitReboot: a saved, unexpired lease is asked for again
// first (DHCPREQUEST, requested IP, no server id), checked, configured.
func TestRFC2131_3_2_InitReboot(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10", "192.0.2.20"), lease: time.Hour}
	saved := Lease{Addr: netip.MustParsePrefix("192.0.2.20/24"), Server: serverIP, Acquired: t0.Add(-time.Minute), Duration: time.Hour}
	h := newHarness(t, Config{Saved: saved}, srv)
	h.start()
	got := h.runUntilBound(time.Minute)
	if got.Addr() != netip.MustParseAddr("192.0.2.20") || len(h.sentOf(Discover)) != 0 {
		t.Fatalf("configured %v after %d discovers, want the saved address without discovering", got, len(h.sentOf(Discover)))
	}
	r := h.sentOf(Request)[0]
	if _, ok := r.msg.Option(OptServerID); ok || r.at != 0 {
		t.Errorf("INIT-REBOOT request at %v with server id", r.at)
	}
	// An expired saved lease is not asked for.
	h2 := newHarness(t, Config{Saved: Lease{Addr: saved.Addr, Acquired: t0.Add(-2 * time.Hour), Duration: time.Hour}}, &server{pool: pool("192.0.2.10"), lease: time.Hour})
	h2.start()
	if got := h2.runUntilBound(time.Minute); got.Addr() != netip.MustParseAddr("192.0.2.10") || len(h2.sentOf(Discover)) == 0 {
		t.Errorf("with an expired saved lease: %v", got)
	}
	// A NAK to the reboot request starts over in INIT.
	h3 := newHarness(t, Config{Saved: Lease{Addr: netip.MustParsePrefix("192.0.2.99/24"), Acquired: t0, Duration: time.Hour}}, &server{pool: pool("192.0.2.10"), lease: time.Hour})
	h3.start()
	if got := h3.runUntilBound(time.Minute); got.Addr() != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("after NAK: %v", got)
	}
}

// TestRFC2131_4_1_Retransmission: with no server, DISCOVERs are
// retransmitted after about 4, 8, 16, 32, 64, 64 s (±1 s).
func TestRFC2131_4_1_Retransmission(t *testing.T) {
	h := newHarness(t, Config{}, &server{silent: true})
	h.start()
	h.runFor(5 * time.Minute)
	d := h.sentOf(Discover)
	want := []time.Duration{4, 8, 16, 32, 64, 64}
	if len(d) < len(want)+1 {
		t.Fatalf("%d discovers in 5 minutes", len(d))
	}
	for i, w := range want {
		gap := d[i+1].at - d[i].at
		if gap < w*time.Second-time.Second || gap > w*time.Second+time.Second {
			t.Errorf("gap %d: %v, want %v ±1s", i, gap, w*time.Second)
		}
	}
}

// TestR33_OptionAutoConfigure: with AutoConfigure, DISCOVER carries option
// 116 = 1; an offer with 116 = 0 turns link-local off, and a whole
// unanswered DISCOVER cycle turns it back on (RFC 2563).
func TestR33_OptionAutoConfigure(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10"), lease: time.Hour, noAuto: true}
	h := newHarness(t, Config{AutoConfigure: true}, srv)
	h.start()
	h.runUntilBound(time.Minute)
	if v, _ := h.sentOf(Discover)[0].msg.Option(OptAutoConfigure); len(v) != 1 || v[0] != 1 {
		t.Errorf("discover option 116 %v", v)
	}
	ev := h.eventsOf(EventAutoConfigure)
	if len(ev) != 1 || ev[0].Allowed || h.c.AutoConfigureAllowed() {
		t.Fatalf("autoconfigure events %+v", ev)
	}
	// The server vanishes; the lease runs out; nobody answers.
	srv.silent = true
	h.runFor(3 * time.Hour)
	ev = h.eventsOf(EventAutoConfigure)
	if len(ev) != 2 || !ev[1].Allowed || !h.c.AutoConfigureAllowed() {
		t.Fatalf("autoconfigure events %+v after the server went", ev)
	}
}

// TestReleaseAndKeepAtStop: Stop with release sends DHCPRELEASE to the
// server and forgets the lease; without, it keeps it saved for INIT-REBOOT.
func TestReleaseAndKeepAtStop(t *testing.T) {
	for _, release := range []bool{true, false} {
		srv := &server{pool: pool("192.0.2.10"), lease: time.Hour}
		h := newHarness(t, Config{}, srv)
		h.start()
		got := h.runUntilBound(time.Minute)
		h.c.Stop(h.now, release)
		h.drain()
		if h.configured.IsValid() {
			t.Errorf("release=%v: still configured", release)
		}
		rel := h.sentOf(Release)
		if release && (len(rel) != 1 || rel[0].to != serverIP || rel[0].msg.CIAddr != got.Addr() || !h.saved.IsZero()) {
			t.Errorf("release: %+v, saved %v", rel, h.saved.Addr)
		}
		if !release && (len(rel) != 0 || h.saved.Addr != got) {
			t.Errorf("keep: %+v, saved %v", rel, h.saved.Addr)
		}
	}
}

// TestConflictWhileBoundDeclines: a conflict on the configured address
// removes it at once, declines it and gets another.
func TestConflictWhileBoundDeclines(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10", "192.0.2.11"), lease: time.Hour}
	h := newHarness(t, Config{}, srv)
	h.start()
	h.runUntilBound(time.Minute)
	h.c.Conflict(h.now, "announced by 02:99:00:00:00:01")
	h.drain()
	if h.configured.IsValid() {
		t.Fatal("still configured after the conflict")
	}
	if got := h.runUntilBound(time.Minute); got.Addr() != netip.MustParseAddr("192.0.2.11") {
		t.Fatalf("then configured %v", got)
	}
	if lost := h.eventsOf(EventLeaseLost); len(lost) != 1 || lost[0].Reason != "conflict" {
		t.Errorf("lost %+v", lost)
	}
}

// TestLinkDownUp: link down gives the lease up (kept saved); link up asks
// for it again (INIT-REBOOT).
func TestLinkDownUp(t *testing.T) {
	srv := &server{pool: pool("192.0.2.10"), lease: time.Hour}
	h := newHarness(t, Config{}, srv)
	h.start()
	got := h.runUntilBound(time.Minute)
	h.c.SetLink(h.now, false)
	h.drain()
	if h.configured.IsValid() || h.c.State() != StateLinkDown {
		t.Fatalf("link down: configured %v state %v", h.configured, h.c.State())
	}
	if _, ok := h.c.Deadline(); ok {
		t.Error("deadline while the link is down")
	}
	h.runFor(time.Minute)
	h.c.SetLink(h.now, true)
	h.drain()
	if got2 := h.runUntilBound(time.Minute); got2 != got {
		t.Fatalf("after link up %v, want %v", got2, got)
	}
	if n := len(h.sentOf(Discover)); n != 1 {
		t.Errorf("%d discovers: link up should INIT-REBOOT", n)
	}
}

func TestNewClientRefuses(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{HW: [6]byte{1, 2, 3, 4, 5, 6}},
		{HW: clientHW, InitDelay: 11 * time.Second},
		{HW: clientHW, Retransmit: -1},
	} {
		if _, err := NewClient(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewClient(%+v) = %v", cfg, err)
		}
	}
}

// TestCheckOutlastingTheLease: an RFC 5227 check that ends after T1 leaves
// the client renewing at once (no deadline in the past), and one that ends
// after the lease's end configures nothing and starts over (the fuzz
// target found the expired lease configured).
func TestCheckOutlastingTheLease(t *testing.T) {
	for _, tc := range []struct {
		name      string
		checkTook time.Duration
		wantBound bool
	}{
		{"before T1", time.Second, true},
		{"after T1", 40 * time.Minute, true},
		{"after the end", 61 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server{pool: pool("192.0.2.10"), lease: time.Hour}
			c, err := NewClient(Config{HW: clientHW, Rand: rand.New(rand.NewPCG(1, 2))})
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			var check netip.Addr
			var configured []netip.Prefix
			var discovers int
			perform := func() {
				for _, o := range c.AppendOutputs(nil) {
					switch o.Kind {
					case OutSend:
						if o.Message.Type == Discover {
							discovers++
						}
						m, _ := Decode(o.Message.Append(nil))
						if r, ok := srv.answer(m); ok && check == (netip.Addr{}) {
							r2, _ := Decode(r.Append(nil))
							c.HandleMessage(now, r2, serverHW)
						}
					case OutCheck:
						check = o.Lease.Addr.Addr()
					case OutConfigure:
						configured = append(configured, o.Lease.Addr)
					}
				}
			}
			c.Start(now)
			for i := 0; i < 20 && !check.IsValid(); i++ {
				perform()
				if dl, ok := c.Deadline(); ok && !check.IsValid() {
					now = dl
					c.HandleTimer(now)
				}
			}
			perform()
			if !check.IsValid() {
				t.Fatalf("no check asked for; state %v", c.State())
			}
			now = now.Add(tc.checkTook)
			discovers = 0
			c.HandleCheck(now, check, false, "")
			perform()
			if got := len(configured) > 0; got != tc.wantBound {
				t.Fatalf("configured %v after a check of %v, want bound %v", configured, tc.checkTook, tc.wantBound)
			}
			if dl, ok := c.Deadline(); !ok || dl.Before(now) {
				t.Fatalf("state %v, deadline %v (ok %v) at now %v", c.State(), dl.Sub(t0), ok, now.Sub(t0))
			}
			if !tc.wantBound && (c.State().HasLease() || c.Lease().Addr.IsValid()) {
				t.Fatalf("state %v, lease %v after the lease ended", c.State(), c.Lease().Addr)
			}
			c.HandleTimer(now)
			perform()
			if !tc.wantBound && discovers == 0 && c.State() != StateSelecting {
				t.Errorf("state %v: not starting over", c.State())
			}
			if tc.name == "after T1" && c.State() != StateRenewing {
				t.Errorf("state %v at once after a check that outlasted T1, want renewing", c.State())
			}
		})
	}
}
