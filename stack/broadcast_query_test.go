package stack

import (
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
)

// ARP requests for a broadcast address reach no netstack: gVisor would
// answer them, turning one request into a reply from every bound host and a
// bogus "broadcast is-at <MAC>" for everyone.
func TestBroadcastQueriesAreNotAnswered(t *testing.T) {
	for _, target := range []string{"169.254.255.255", "255.255.255.255"} {
		t.Run(target, func(t *testing.T) {
			h, a := boundHost(t, ClientConfig{})
			mark := len(h.trace)
			h.peerSend(a, peerARP(acd.BroadcastMAC, acd.Packet{Op: acd.OpRequest, SenderHW: peerMAC, SenderIP: ip("169.254.99.99"), TargetIP: ip(target)}))
			h.pump()
			if out := h.framesFrom(mark, a.idx); len(out) != 0 {
				t.Fatalf("host answered a request for %s:\n%s", target, h.dump(mark))
			}
			if n := a.status().BroadcastQueries; n != 1 {
				t.Fatalf("BroadcastQueries = %d, want 1", n)
			}
		})
	}
}
