package autoip_test

import (
	"fmt"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/autoip/acd"
)

// Example drives an engine in virtual time, as a daemon's loop or a
// simulator does: handle the timer at each deadline, then perform the
// outputs in order. Nothing sleeps; the run takes microseconds.
func Example() {
	e, err := autoip.NewEngine(autoip.Config{
		HW:   acd.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		Seed: 2025, // fixed: the same run every time
	})
	if err != nil {
		panic(err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	e.Start(now)
	var outs []autoip.Output
	for bound := false; !bound; {
		d, ok := e.Deadline()
		if !ok {
			break
		}
		now = d
		e.HandleTimer(now)
		outs = e.AppendOutputs(outs[:0])
		for _, o := range outs {
			at := now.Sub(start).Round(time.Millisecond)
			switch o.Kind {
			case autoip.OutSendARP:
				fmt.Printf("%-7v send %v %v -> %v\n", at, o.Frame.Packet.Kind(), o.Frame.SenderIP, o.Frame.TargetIP)
			case autoip.OutAddAddress:
				fmt.Printf("%-7v add %v\n", at, o.Prefix)
			case autoip.OutEvent:
				fmt.Printf("%-7v %v %v\n", at, o.Event.Kind, o.Event.Addr)
				bound = bound || o.Event.Kind == autoip.EventBind
			}
		}
	}
	// Output:
	// 286ms   send probe 0.0.0.0 -> 169.254.94.248
	// 286ms   PROBE 169.254.94.248
	// 1.525s  send probe 0.0.0.0 -> 169.254.94.248
	// 2.878s  send probe 0.0.0.0 -> 169.254.94.248
	// 4.878s  send announcement 169.254.94.248 -> 169.254.94.248
	// 4.878s  add 169.254.94.248/16
	// 4.878s  BIND 169.254.94.248
}
