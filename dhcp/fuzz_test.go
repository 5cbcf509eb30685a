package dhcp

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func decodeSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	srv := &server{pool: pool("192.0.2.10"), lease: time.Hour, t1: time.Minute, t2: 2 * time.Minute, noAuto: true}
	c, _ := NewClient(Config{HW: clientHW, AutoConfigure: true, Hostname: "h"})
	m := c.message(Discover)
	out = append(out, m.Append(nil))
	if r, ok := srv.answer(m); ok {
		out = append(out, r.Append(nil))
	}
	long := Message{Op: OpReply, Type: Ack, YIAddr: netip.MustParseAddr("10.0.0.1")}
	long.SetOption(OptDomainName, bytes.Repeat([]byte("a"), 600)) // split in three
	out = append(out, long.Append(nil))
	// Overloaded file field.
	ov := Message{Op: OpReply, Type: Offer}.Append(nil)
	ov = append(ov[:minLen], OptMessageType, 1, byte(Offer), OptOverload, 1, 3, OptEnd)
	copy(ov[108:], []byte{OptLeaseTime, 4, 0, 0, 1, 0, OptEnd})
	out = append(out, ov)
	return out
}

// FuzzDecode: Decode never panics; what it accepts re-encodes to a message
// that decodes to the same thing.
func FuzzDecode(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		m2, err := Decode(m.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("round trip:\n%+v\n%+v", m, m2)
		}
	})
}

func sameMessage(a, b Message) bool {
	if a.Op != b.Op || a.XID != b.XID || a.Secs != b.Secs || a.Flags != b.Flags || a.CIAddr != b.CIAddr ||
		a.YIAddr != b.YIAddr || a.SIAddr != b.SIAddr || a.GIAddr != b.GIAddr || a.CHAddr != b.CHAddr || a.Type != b.Type {
		return false
	}
	for _, o := range a.Options {
		d, ok := b.Option(o.Code)
		if o.Code != OptMessageType && (!ok || !bytes.Equal(d, o.Data)) {
			return false
		}
	}
	return true
}

// FuzzDecodeVsGopacket: where gopacket's DHCPv4 layer and Decode both
// accept a message without overload or repeated options, they agree on the
// header and on every option.
func FuzzDecodeVsGopacket(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		var g layers.DHCPv4
		if g.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
			return
		}
		seen := map[layers.DHCPOpt]int{}
		for _, o := range g.Options {
			seen[o.Type]++
			if o.Type == layers.DHCPOpt(OptOverload) || seen[o.Type] > 1 {
				return // gopacket neither overloads nor concatenates
			}
		}
		if byte(g.Operation) != byte(m.Op) || g.Xid != m.XID || g.Secs != m.Secs || g.Flags != m.Flags ||
			!bytes.Equal(g.ClientIP.To4(), m.CIAddr.AsSlice()) || !bytes.Equal(g.YourClientIP.To4(), m.YIAddr.AsSlice()) ||
			!bytes.Equal(g.ClientHWAddr, m.CHAddr[:]) {
			t.Fatalf("header differs: gopacket %+v, ours %+v", g, m)
		}
		for _, o := range g.Options {
			if o.Type == layers.DHCPOptPad || o.Type == layers.DHCPOptEnd {
				continue
			}
			d, ok := m.Option(byte(o.Type))
			if !ok || !bytes.Equal(d, o.Data) {
				t.Fatalf("option %d: gopacket %x, ours %x (%v)", o.Type, o.Data, d, ok)
			}
		}
	})
}

// FuzzClient drives a Client with a byte script of timers, server replies
// (well formed or not), ACD results, conflicts, link changes and stops, and
// checks invariants after every step: an address is configured only after
// its check passed, never two at once, never after the lease expired, and
// a deadline never lies in the past.
func FuzzClient(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 1, 1, 9, 9, 9, 9, 3, 3, 3, 8, 8, 2, 0, 1, 1})
	f.Add([]byte{4, 1, 1, 5, 1, 6, 1, 7, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 400 {
			script = script[:400]
		}
		c, err := NewClient(Config{HW: clientHW, AutoConfigure: true, Rand: rand.New(rand.NewPCG(3, 4)), Retransmit: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		var configured Lease
		var passed = map[netip.Addr]bool{}
		var lastTo netip.Addr
		var xid uint32
		perform := func() {
			for _, o := range c.AppendOutputs(nil) {
				switch o.Kind {
				case OutSend:
					xid = o.Message.XID
					if _, err := Decode(o.Message.Append(nil)); err != nil {
						t.Fatalf("sent an undecodable message: %v", err)
					}
					lastTo = o.To
				case OutConfigure:
					if !passed[o.Lease.Addr.Addr()] {
						t.Fatalf("configured %v before its check passed", o.Lease.Addr)
					}
					if configured.Addr.IsValid() && configured.Addr != o.Lease.Addr {
						t.Fatalf("configured %v over %v", o.Lease.Addr, configured.Addr)
					}
					configured = o.Lease
				case OutUnconfigure:
					configured = Lease{}
				}
			}
		}
		c.Start(now)
		perform()
		_ = lastTo
		for i := 0; i+1 < len(script); i += 2 {
			op, arg := script[i], script[i+1]
			switch op % 10 {
			case 0, 1: // timer
				if dl, ok := c.Deadline(); ok {
					if dl.Before(now) {
						t.Fatalf("deadline %v in the past", dl.Sub(now))
					}
					now = dl
					c.HandleTimer(now)
				}
			case 2: // time passes
				now = now.Add(time.Duration(arg) * time.Minute)
				c.HandleTimer(now)
			case 3, 4: // a server reply of some type
				m := Message{Op: OpReply, XID: xid, CHAddr: clientHW, Type: MessageType(arg%8 + 1),
					YIAddr: netip.AddrFrom4([4]byte{192, 0, 2, 10 + arg%3})}
				m.SetOption(OptServerID, serverIP.AsSlice())
				if arg&0x10 == 0 {
					m.SetOption(OptLeaseTime, Uint32(uint32(arg)*60))
				}
				if arg&0x20 != 0 {
					m.SetOption(OptAutoConfigure, []byte{arg >> 7})
				}
				if arg&0x40 != 0 {
					m.XID++
				}
				m2, err := Decode(m.Append(nil))
				if err == nil {
					c.HandleMessage(now, m2, serverHW)
				}
			case 5: // ACD result for the pending address
				if c.State() == StateChecking {
					a := c.pending.Addr.Addr()
					if arg&1 == 0 {
						passed[a] = true
					}
					c.HandleCheck(now, a, arg&1 != 0, "fuzz")
				}
			case 6:
				c.Conflict(now, "fuzz")
			case 7:
				c.SetLink(now, arg&1 == 0)
			case 8:
				c.Stop(now, arg&1 == 0)
			case 9:
				c.Start(now)
			}
			perform()
			if configured.Addr.IsValid() && configured.ExpiredAt(now) && c.State().HasLease() {
				// The expiry timer is due exactly at the end; HandleTimer at
				// now has run, so an expired lease must be gone.
				t.Fatalf("lease %v kept after it expired at %v (now %v)", configured.Addr, configured.Expiry().Sub(t0), now.Sub(t0))
			}
			if c.State().HasLease() != configured.Addr.IsValid() {
				t.Fatalf("state %v but configured %v", c.State(), configured.Addr)
			}
		}
		_ = binary.BigEndian
	})
}
