package stack

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/autoip-project/autoip/autoip"
)

// OnEvent may call back into the client: closing it from inside the BIND
// callback must neither deadlock nor lose or reorder events.
func TestOnEventMayCallBackIntoClient(t *testing.T) {
	h := newHub(t)
	var got []autoip.EventKind
	var c *Client
	ho := h.addHost(hostCfg{cfg: ClientConfig{OnEvent: func(ev autoip.Event) {
		got = append(got, ev.Kind)
		if ev.Kind == autoip.EventBind {
			c.Close() // re-entrant
			c.SetLink(false)
			_ = c.Reannounce()
		}
	}}})
	c = ho.client()
	h.runFor(30 * time.Second)
	want := []autoip.EventKind{autoip.EventProbe, autoip.EventBind, autoip.EventStop}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if ho.bound().IsValid() {
		t.Fatal("address still configured after Close from OnEvent")
	}
}

// R22: Close in Route mode leaves no 169.254/16 route behind, although a
// routable address still exists.
func TestR22_CloseRemovesRouteModeRoute(t *testing.T) {
	h := newHub(t)
	ho := h.addHost(hostCfg{cfg: ClientConfig{Route: true}, beforeStart: func(s *Stack) {
		if err := s.AddAddress(netip.MustParsePrefix("10.0.0.1/24")); err != nil {
			t.Fatal(err)
		}
	}})
	h.runUntilBound(30*time.Second, ho)
	if len(ho.llRoutes()) != 1 {
		t.Fatalf("routes before Close: %v", ho.llRoutes())
	}
	ho.client().Close()
	if r := ho.llRoutes(); len(r) != 0 {
		t.Fatalf("169.254/16 routes left after Close: %v", r)
	}
}

// OnState reports every state change, including those without an event
// (probing -> announcing -> bound), in order with the events.
func TestOnStateReportsEveryChange(t *testing.T) {
	h := newHub(t)
	var got []string
	ho := h.addHost(hostCfg{cfg: ClientConfig{
		OnState: func(from, to autoip.State, addr netip.Addr) { got = append(got, from.String()+">"+to.String()) },
		OnEvent: func(ev autoip.Event) { got = append(got, ev.Kind.String()) },
	}})
	h.runUntilBound(30*time.Second, ho)
	h.runFor(10 * time.Second)
	ho.client().Close()
	want := "stopped>waiting PROBE waiting>probing BIND probing>announcing announcing>bound STOP bound>stopped"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
}
