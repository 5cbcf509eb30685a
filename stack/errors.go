package stack

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// Errors returned by this package, matched with errors.Is.
var (
	// ErrNotEthernet: the NIC has no ARP-capable Ethernet link (for
	// example the L3 tunnel NICs of wireguard-go and tailscale), so RFC
	// 3927 cannot run on it.
	ErrNotEthernet = errors.New("NIC is not an Ethernet (ARP) link")
	// ErrNoARP: the gVisor stack was built without the ARP protocol.
	ErrNoARP = errors.New("stack has no ARP protocol (add arp.NewProtocol to NetworkProtocols)")
	// ErrNoIPv4: the gVisor stack was built without IPv4.
	ErrNoIPv4 = errors.New("stack has no IPv4 protocol (add ipv4.NewProtocol to NetworkProtocols)")
	// ErrNoNIC: no NIC has the given ID.
	ErrNoNIC = errors.New("no such NIC")
	// ErrAttached: another open Client owns the NIC's Shim. One NIC has
	// one AutoIP client; close it before attaching another.
	ErrAttached = errors.New("NIC already has an autoip client")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("autoip client closed")
	// ErrNICRemoved: the client's NIC was removed from its stack, or the
	// stack destroyed, while the client ran; the client stopped itself
	// (errors carrying it also match ErrClosed). Close the client before
	// RemoveNIC or Destroy to stop it in order (withdrawal, STOP, save).
	ErrNICRemoved = errors.New("the NIC was removed from its stack")
)

// Error is a gVisor tcpip.Error turned into a Go error, with the operation
// that failed. tcpip.Error never leaves this package any other way.
type Error struct {
	Op  string
	Err tcpip.Error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Err) }

// tcpipErr wraps e, or returns nil if e is nil.
func tcpipErr(op string, e tcpip.Error) error {
	if e == nil {
		return nil
	}
	return &Error{Op: op, Err: e}
}
