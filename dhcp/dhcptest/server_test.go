package dhcptest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/autoip-project/autoip/dhcp"
)

// TestServerExchange: DISCOVER, REQUEST, DECLINE and the next address,
// through the frames the simulator carries.
func TestServerExchange(t *testing.T) {
	s := &Server{Addr: netip.MustParseAddr("10.0.0.1"), Pool: []netip.Addr{netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.11")}, Lease: time.Minute}
	hw := [6]byte{2, 0, 0, 0, 0, 1}
	ask := func(m dhcp.Message) (dhcp.Message, bool) {
		r, ok := s.Handle(m)
		if !ok {
			return r, false
		}
		frame := ReplyFrame(nil, [6]byte{2, 0, 0, 0, 0, 0x53}, s.Addr, r)
		if p, isReq := RequestPayload(frame); isReq {
			t.Fatalf("a reply parsed as a request: %d bytes", len(p))
		}
		back, err := dhcp.Decode(frame[42:])
		if err != nil {
			t.Fatal(err)
		}
		return back, true
	}
	off, ok := ask(dhcp.Message{Op: dhcp.OpRequest, Type: dhcp.Discover, CHAddr: hw, XID: 7})
	if !ok || off.Type != dhcp.Offer || off.YIAddr != s.Pool[0] {
		t.Fatalf("offer %+v", off)
	}
	req := dhcp.Message{Op: dhcp.OpRequest, Type: dhcp.Request, CHAddr: hw, XID: 7}
	req.SetOption(dhcp.OptRequestedIP, s.Pool[0].AsSlice())
	req.SetOption(dhcp.OptServerID, s.Addr.AsSlice())
	if ack, ok := ask(req); !ok || ack.Type != dhcp.Ack {
		t.Fatalf("ack %+v", ack)
	}
	dec := dhcp.Message{Op: dhcp.OpRequest, Type: dhcp.Decline, CHAddr: hw}
	dec.SetOption(dhcp.OptRequestedIP, s.Pool[0].AsSlice())
	if _, ok := s.Handle(dec); ok || !s.Declined(s.Pool[0]) {
		t.Fatal("decline not recorded")
	}
	if off, _ := ask(dhcp.Message{Op: dhcp.OpRequest, Type: dhcp.Discover, CHAddr: hw, XID: 8}); off.YIAddr != s.Pool[1] {
		t.Fatalf("after the decline offered %v", off.YIAddr)
	}
}
