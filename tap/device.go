//go:build linux

package tap

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unicode"

	"golang.org/x/sys/unix"
)

// ErrNotExist is returned (wrapped) by Open when the TAP does not exist and
// Config.Create is false, and by Flags for a missing interface. It also
// matches fs.ErrNotExist (errors.Is(err, os.ErrNotExist) is true).
var ErrNotExist error = notExistError{}

type notExistError struct{}

func (notExistError) Error() string        { return "interface does not exist" }
func (notExistError) Is(target error) bool { return target == fs.ErrNotExist }

// errInvalidName is wrapped by name-validation errors.
var errInvalidName = errors.New("invalid interface name")

// Config says which TAP device Open attaches to.
type Config struct {
	// Name is the interface name: 1..15 bytes, no '/', ':', NUL or
	// whitespace, not "." or "..". Required.
	Name string

	// Create creates the TAP if it does not exist. A TAP created this way is
	// not persistent: it lives only while the Device is open. Whether or not
	// Create is set, an existing TAP is attached to and its persistence left
	// as it is (Open issues TUNSETIFF only: no TUNSETPERSIST, which would
	// take the kernel's RTNL lock a second time).
	//
	// With Create false, Open fails with ErrNotExist if the TAP is missing.
	Create bool
}

// Addr is the net.Addr of a TAP interface: its name. It appears in the
// *net.OpError values returned by this package.
type Addr string

// Network returns "tap".
func (Addr) Network() string { return "tap" }

// String returns the interface name.
func (a Addr) String() string { return string(a) }

// opErr wraps err with the operation and the interface name, e.g.
// "open tap aipt0: interface does not exist".
func opErr(op, name string, err error) error {
	return &net.OpError{Op: op, Net: "tap", Addr: Addr(name), Err: err}
}

// ValidateName reports whether name is acceptable as a Linux interface name:
// 1..15 bytes, not "." or "..", no '/', ':', white space or control
// characters (the kernel's dev_valid_name rules, plus control characters).
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", errInvalidName)
	case len(name) > unix.IFNAMSIZ-1:
		return fmt.Errorf("%w %q: longer than %d bytes", errInvalidName, name, unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return fmt.Errorf("%w %q", errInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w %q: contains %q", errInvalidName, name, c)
		}
	}
	if strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%w %q: contains white space", errInvalidName, name)
	}
	return nil
}

// Device is an open TAP device: Read and Write move one Ethernet frame (no
// packet-info header) per call. It is safe for one reader and one writer to
// use it concurrently with each other and with Close.
type Device struct {
	name    string
	index   int
	created bool
	f       *os.File // /dev/net/tun attached to the TAP: non-blocking; Read and Write go through Go's poller
	rfd     *rawFD   // the data path's raw descriptor (readWait, writev)

	closeOnce sync.Once
	closeErr  error
}

// Open attaches to the TAP named cfg.Name in the network namespace of the
// calling OS thread, creating it if cfg.Create is set and it does not exist.
//
// Errors are *net.OpError values naming the interface. A missing TAP with
// Create false matches errors.Is(err, ErrNotExist); lacking privileges
// (CAP_NET_ADMIN, or not owning the TAP) matches errors.Is(err,
// os.ErrPermission); a name that belongs to a TUN or to a non-TUN/TAP
// interface gives EINVAL, a TAP already held by another process EBUSY.
func Open(cfg Config) (*Device, error) {
	if err := ValidateName(cfg.Name); err != nil {
		return nil, opErr("open", cfg.Name, err)
	}
	// The existence check and the open must happen in the same namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctl, err := ctlSocket()
	if err != nil {
		return nil, opErr("open", cfg.Name, err)
	}
	defer unix.Close(ctl)
	return openWith(ctl, cfg)
}

// openWith implements Open with an ioctl socket ctl that belongs to the
// namespace of the calling thread (which must not change during the call).
func openWith(ctl int, cfg Config) (*Device, error) {
	name := cfg.Name
	before, err := ifIndex(ctl, name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotExist) {
		return nil, opErr("open", name, err)
	}
	if !exists && !cfg.Create {
		return nil, opErr("open", name, ErrNotExist)
	}
	f, err := attachTAP(name)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == unix.EINVAL && exists {
			err = fmt.Errorf("%w (the interface exists but is not a single-queue TAP)", err)
		}
		return nil, opErr("open", name, err)
	}
	rfd, err := newRawFD(f)
	if err != nil {
		f.Close()
		return nil, opErr("open", name, err)
	}
	d := &Device{name: name, created: !exists, f: f, rfd: rfd}
	after, err := ifIndex(ctl, name)
	if err == nil {
		d.index = after
	}
	if exists && err == nil && after != before {
		// The TAP was deleted between the check and TUNSETIFF: either
		// TUNSETIFF created a new one, which is not persistent and
		// disappears with our fd, or someone made it again in between
		// (ip tuntap add: persistent), which we attached to as to any
		// existing TAP.
		if persistent, perr := d.persistent(); perr != nil || !persistent {
			if !cfg.Create {
				_ = d.Close()
				return nil, opErr("open", name, ErrNotExist)
			}
			d.created = true
		}
	}
	return d, nil
}

// Name returns the interface name.
func (d *Device) Name() string { return d.name }

// Index returns the interface index seen right after the open (0 if the TAP
// vanished before it could be read).
func (d *Device) Index() int { return d.index }

// Created reports whether Open created the TAP (it then disappears when the
// Device is closed) rather than attaching to an existing one.
func (d *Device) Created() bool { return d.created }

// Read reads one Ethernet frame into b, blocking until one arrives; b should
// hold at least MTU+14 bytes. A TAP that is down or has no traffic just
// blocks. Close unblocks it with an error matching os.ErrClosed. If the TAP
// is deleted, Read fails (EBADFD, "file descriptor in bad state").
func (d *Device) Read(b []byte) (int, error) {
	n, err := d.f.Read(b)
	if err != nil {
		return n, opErr("read", d.name, err)
	}
	return n, nil
}

// Write writes one Ethernet frame. It fails (EIO) while the TAP is down and
// (EBADFD) after it was deleted; it does not block.
func (d *Device) Write(b []byte) (int, error) {
	n, err := d.f.Write(b)
	if err != nil {
		return n, opErr("write", d.name, err)
	}
	return n, nil
}

// Close closes the file descriptor, unblocking Read and Write. A TAP that Open
// created disappears; an existing persistent TAP stays. Close is idempotent:
// later calls return the first call's result.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.rfd.beginClose() // no raw call in progress or to come
		if err := d.f.Close(); err != nil {
			d.closeErr = opErr("close", d.name, err)
		}
		d.rfd.endClose()
	})
	return d.closeErr
}

// attachTAP opens /dev/net/tun (non-blocking, close-on-exec) and attaches
// it to the TAP name with TUNSETIFF (IFF_TAP|IFF_NO_PI), creating the TAP
// if it does not exist. An open(2) error comes as an *os.PathError, an
// ioctl error as an *os.SyscallError.
func attachTAP(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %v", errInvalidName, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("ioctl TUNSETIFF", err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// persistent reports whether the TAP is persistent (TUNGETIFF's
// IFF_PERSIST). It uses SyscallConn rather than os.File.Fd, which would
// switch the fd to blocking mode.
func (d *Device) persistent() (bool, error) {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return false, err
	}
	var flags uint16
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(d.name)
		if err != nil {
			ierr = err
			return
		}
		if ierr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); ierr == nil {
			flags = ifr.Uint16()
		}
	}); err != nil {
		return false, err
	}
	if ierr != nil {
		return false, os.NewSyscallError("ioctl TUNGETIFF", ierr)
	}
	return flags&unix.IFF_PERSIST != 0, nil
}

// Exists reports whether an interface called name exists in the network
// namespace of the calling OS thread.
//
// It asks the kernel with an ioctl rather than looking at /sys/class/net:
// sysfs shows the namespace it was mounted in, which differs from the
// thread's namespace after setns(2) (as in tests that switch one thread into
// a namespace). /sys/class/net is used only if no socket can be created.
func Exists(name string) bool {
	if ValidateName(name) != nil {
		return false
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctl, err := ctlSocket()
	if err != nil {
		_, err := os.Stat("/sys/class/net/" + name)
		return err == nil
	}
	defer unix.Close(ctl)
	_, err = ifIndex(ctl, name)
	return err == nil
}

// Flags returns the IFF_UP (administratively up) and IFF_RUNNING (operational:
// up with carrier; for a TAP, carrier means some fd is attached) flags of
// interface name, using SIOCGIFFLAGS on a datagram socket in the network
// namespace of the calling OS thread. A missing interface gives an error
// matching ErrNotExist.
func Flags(name string) (up, running bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, false, opErr("flags", name, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctl, err := ctlSocket()
	if err != nil {
		return false, false, opErr("flags", name, err)
	}
	defer unix.Close(ctl)
	f, err := ifFlags(ctl, name)
	if err != nil {
		return false, false, opErr("flags", name, err)
	}
	return f&unix.IFF_UP != 0, f&unix.IFF_RUNNING != 0, nil
}

// ctlSocket returns a datagram socket for interface ioctls, in the network
// namespace of the calling thread.
func ctlSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		var err2 error
		fd, err2 = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err2 != nil {
			return -1, os.NewSyscallError("socket", err)
		}
	}
	return fd, nil
}

// ifFlags issues SIOCGIFFLAGS; ENODEV becomes ErrNotExist.
func ifFlags(ctl int, name string) (uint16, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errInvalidName, err)
	}
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, ioctlErr("SIOCGIFFLAGS", err)
	}
	return ifr.Uint16(), nil
}

// ifIndex issues SIOCGIFINDEX; ENODEV becomes ErrNotExist.
func ifIndex(ctl int, name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errInvalidName, err)
	}
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, ioctlErr("SIOCGIFINDEX", err)
	}
	return int(ifr.Uint32()), nil
}

func ioctlErr(what string, err error) error {
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
		return ErrNotExist
	}
	return os.NewSyscallError("ioctl "+what, err)
}
