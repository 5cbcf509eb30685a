package daemon

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ifControl asks the kernel about the TAP, and brings it up, through a
// datagram socket made in the daemon's network namespace at start: the
// socket keeps that namespace, so the status goroutine may use it too.
type ifControl struct{ fd int }

func newIfControl() (*ifControl, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("interface control socket: %w", err)
	}
	return &ifControl{fd: fd}, nil
}

// flags returns the interface's flags; exists is false when there is no
// such interface.
func (c *ifControl) flags(name string) (flags uint16, exists bool, err error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, false, err
	}
	if err := unix.IoctlIfreq(c.fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("SIOCGIFFLAGS %s: %w", name, err)
	}
	return ifr.Uint16(), true, nil
}

// bringUp sets IFF_UP on the interface.
func (c *ifControl) bringUp(name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(c.fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(c.fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring %s up (SIOCSIFFLAGS): %w", name, err)
	}
	return nil
}

// linkReason says why the TAP is not usable, for the log and -status.
func (c *ifControl) linkReason(name string) string {
	f, exists, err := c.flags(name)
	switch {
	case err != nil:
		return fmt.Sprintf("the state of the TAP %s cannot be read: %v", name, err)
	case !exists:
		return fmt.Sprintf("the TAP %s does not exist yet: waiting for it to appear (or give -create)", name)
	case f&unix.IFF_UP == 0:
		return fmt.Sprintf("the TAP %s is down: waiting for someone to bring it up (ip link set %s up)", name, name)
	case f&unix.IFF_RUNNING == 0:
		return fmt.Sprintf("the TAP %s has no carrier", name)
	}
	return ""
}

func (c *ifControl) close() {
	if c != nil {
		unix.Close(c.fd)
	}
}
