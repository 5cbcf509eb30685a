//go:build linux

package tap

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Endpoint is the gVisor link endpoint of a Link: raw Ethernet frames, no
// headers added or parsed (wrap it in ethernet.New, as stack.NewShim does).
// Inbound frames are handed to the attached dispatcher on the Link's reader
// goroutine, with the frame's EtherType as protocol number; outbound frames
// are written to the TAP on the caller's goroutine, so a frame the TAP
// refuses (down, deleted, not yet there) is reported to the caller as an
// error instead of vanishing from a queue. Its LinkAddress is
// LinkConfig.MAC and its MTU is LinkConfig.MTU+14.
//
// The endpoint stays valid across TAP re-opens; the Link's Close ends it.
// It is safe for concurrent use.
type Endpoint struct {
	l   *Link
	mtu uint32

	disp atomic.Pointer[dispatcherBox] // nil: not attached
	hook atomic.Pointer[func(frame []byte) bool]

	mu  sync.RWMutex
	mac tcpip.LinkAddress // set by SetLinkAddress; empty means the Link's MAC
}

// dispatcherBox holds an attached dispatcher (an interface value cannot be
// stored in an atomic.Pointer directly).
type dispatcherBox struct{ d stack.NetworkDispatcher }

var _ stack.LinkEndpoint = (*Endpoint)(nil)

func (e *Endpoint) dispatcher() stack.NetworkDispatcher {
	if b := e.disp.Load(); b != nil {
		return b.d
	}
	return nil
}

// SetInboundHook installs h (nil removes it). While a dispatcher is
// attached, h sees every inbound frame that passed the MAC filter, on the
// Link's reader goroutine, before any gVisor PacketBuffer is made for it:
// if h returns false the frame is consumed there and never reaches the
// dispatcher. The frame is valid only during the call and must not be
// modified. The stack package's Shim installs one, so that ARP reaches the
// AutoIP engine straight from the read buffer and frames that netstack
// must not see (or does not need to) cost no PacketBuffer.
func (e *Endpoint) SetInboundHook(h func(frame []byte) (deliver bool)) {
	if h == nil {
		e.hook.Store(nil)
		return
	}
	e.hook.Store(&h)
}

// WatchLinkState calls f with whether the TAP is usable now and again at
// every change, in order and never concurrently, until stop is called. The
// first call happens before WatchLinkState returns; later ones come from
// the Link's monitor goroutine (or from Open's caller, for the check Open
// makes). f must not block for long and must not
// call the Link's Close. The stack package finds this method and wires the
// link state into its client by itself.
func (e *Endpoint) WatchLinkState(f func(up bool)) (stop func()) { return e.l.watchLinkState(f) }

// Up reports whether the TAP is usable now.
func (e *Endpoint) Up() bool { return e.l.Up() }

// WritePackets implements stack.LinkEndpoint: each frame is written to the
// TAP at once. It stops at the first frame the TAP refuses and returns how
// many were written and why.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		// The packet's pieces, written as they are (writev): no copy.
		if err := e.l.write(pkt); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcherBox{d: d})
}

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool { return e.dispatcher() != nil }

// Wait implements stack.LinkEndpoint. The Link's Close waits for its
// goroutines.
func (*Endpoint) Wait() {}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return e.mtu }

// SetMTU implements stack.LinkEndpoint; the MTU is fixed by LinkConfig.
func (*Endpoint) SetMTU(uint32) {}

// MaxHeaderLength implements stack.LinkEndpoint.
func (*Endpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.mac != "" {
		return e.mac
	}
	return e.l.mac
}

// SetLinkAddress implements stack.LinkEndpoint. The reader keeps filtering
// on LinkConfig.MAC.
func (e *Endpoint) SetLinkAddress(a tcpip.LinkAddress) {
	e.mu.Lock()
	e.mac = a
	e.mu.Unlock()
}

// Capabilities implements stack.LinkEndpoint.
func (*Endpoint) Capabilities() stack.LinkEndpointCapabilities { return 0 }

// ARPHardwareType implements stack.LinkEndpoint: none, as for any raw
// endpoint; ethernet.New over it says Ethernet.
func (*Endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint: frames carry their own.
func (*Endpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint.
func (*Endpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.LinkEndpoint: the stack is done with the endpoint
// (its NIC was removed or the stack destroyed), so inbound frames stop. The
// TAP stays open until the Link's Close.
func (e *Endpoint) Close() { e.Attach(nil) }

// SetOnCloseAction implements stack.LinkEndpoint.
func (*Endpoint) SetOnCloseAction(func()) {}
