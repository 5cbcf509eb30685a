package stack_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/stack"
)

// TestClientStopsWhenItsNICGoes: an embedder that removes the NIC
// (RemoveNIC) or destroys the gVisor stack under a running client, while
// it is bound or still probing, finds the client stopped: nothing reported
// configured, WaitBound failing with ErrNICRemoved (and ErrClosed), no
// more probes attempted, and Close still fine. It used to report the
// address bound for ever, or retry its probes until Close.
func TestClientStopsWhenItsNICGoes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bound bool // act once bound; else while probing
		gone  func(s *stack.Stack)
	}{
		{"RemoveNIC while bound", true, func(s *stack.Stack) { s.GVisor().RemoveNIC(s.NIC()) }},
		{"Destroy while bound", true, func(s *stack.Stack) { s.GVisor().Destroy() }},
		{"Destroy while probing", false, func(s *stack.Stack) { s.GVisor().Destroy() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := channel.New(256, 1514, tcpip.LinkAddress("\x02\x00\x00\x00\xe1\x01"))
			timing := quickTiming()
			if !tc.bound {
				timing = autoip.Timing{} // the RFC's: seconds of probing to act in
			}
			s, err := stack.New(stack.Options{Link: ch, NoTCP: true, AutoIP: &stack.ClientConfig{Engine: autoip.Config{Timing: timing}}})
			if err != nil {
				t.Fatal(err)
			}
			c := s.Client()
			ctx, cancel := context.WithCancel(context.Background())
			wire := make(chan struct{})
			go func() { // the wire: swallow what the stack sends
				defer close(wire)
				for pkt := ch.ReadContext(ctx); pkt != nil; pkt = ch.ReadContext(ctx) {
					pkt.DecRef()
				}
			}()
			defer func() { cancel(); <-wire; ch.Drain() }()
			if tc.bound {
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				if _, err := c.WaitBound(wctx); err != nil {
					t.Fatal(err)
				}
				wcancel()
			} else {
				deadline := time.Now().Add(10 * time.Second)
				for c.Status().Stats.Sent == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if st := c.Status(); st.State != autoip.StateProbing {
					t.Fatalf("not probing: %+v", st)
				}
			}
			tc.gone(s)
			select {
			case <-c.Done():
			case <-time.After(3 * time.Second):
				t.Fatalf("the client did not stop within 3 s of its NIC going; status %+v", c.Status())
			}

			wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
			defer wcancel()
			a, err := c.WaitBound(wctx)
			if !errors.Is(err, stack.ErrNICRemoved) || !errors.Is(err, stack.ErrClosed) {
				t.Fatalf("WaitBound after the NIC went: %v, %v; want ErrNICRemoved and ErrClosed; status %+v", a, err, c.Status())
			}
			st := c.Status()
			if st.Configured.IsValid() || st.State != autoip.StateStopped {
				t.Errorf("after the NIC went: state %v, configured %v; want stopped, nothing", st.State, st.Configured)
			}
			attempts := st.Stats.Sent + st.Stats.NotSent
			time.Sleep(300 * time.Millisecond)
			if st2 := c.Status(); st2.Stats.Sent+st2.Stats.NotSent != attempts {
				t.Errorf("the client went on sending after its NIC was gone: %d -> %d", attempts, st2.Stats.Sent+st2.Stats.NotSent)
			}
			if st.StackErrors != 0 {
				t.Errorf("%d stack errors counted for a NIC that is gone", st.StackErrors)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Stack.Close: %v", err)
			}
		})
	}
}
