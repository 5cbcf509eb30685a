//go:build linux

package tap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Defaults for LinkConfig fields left zero.
const (
	DefaultMTU           = 1500
	MinMTU               = 68    // IPv4's minimum (RFC 791)
	MaxMTU               = 65521 // the largest frame a TAP carries, less the Ethernet header
	DefaultCheckInterval = time.Second
)

// readBufSize is the reader's buffer: enough for any frame a TAP can hand
// out (the kernel side's MTU may be larger than ours).
const readBufSize = 65536 + header.EthernetMinimumSize

// LinkConfig configures NewLink.
type LinkConfig struct {
	// Device selects the TAP. With Create false and the TAP missing, NewLink
	// still succeeds and the Link waits for the TAP to appear. A TAP made
	// with Create is down, as the kernel makes every new interface: bring
	// it up (ip link set NAME up), or the Link stays down (autoipd -create
	// does bring up the TAP it made).
	Device Config

	// MAC is the netstack's own MAC address (not the kernel TAP's). Inbound
	// unicast frames addressed to any other MAC are dropped, as fdbased
	// does; broadcast and multicast frames pass. Required (6 bytes).
	MAC tcpip.LinkAddress

	// MTU is the IP MTU, MinMTU..MaxMTU, default 1500. The endpoint reports MTU+14 so that
	// ethernet.New(l.Endpoint()).MTU() reports MTU.
	MTU uint32

	// CheckInterval is how often the monitor checks the TAP with one
	// SIOCGIFFLAGS ioctl (default 1s). This is the only periodic work a Link
	// does; it bounds how long a down/up/delete/re-create that produces no
	// read or write error takes to be noticed.
	CheckInterval time.Duration

	// OnLinkChange, if set, is called when the TAP becomes usable (it
	// exists and is IFF_UP and IFF_RUNNING) or stops being usable (down, no
	// carrier, deleted, fd failed). It is called from the Link's monitor
	// goroutine, never concurrently with itself, only on transitions (the
	// initial state is down, and Close reports nothing). It must not block
	// for long and must not call Close. Endpoint().WatchLinkState gives the
	// same reports to any number of watchers (the stack package uses it).
	OnLinkChange func(up bool)

	// Logger receives state changes (Info) and errors (Warn/Debug). Nil
	// discards.
	Logger *slog.Logger
}

// LinkStats are cumulative counters of a Link.
type LinkStats struct {
	RxFrames    uint64 `json:"rx_frames"`    // frames handed to the channel endpoint
	RxFiltered  uint64 `json:"rx_filtered"`  // frames dropped: unicast to another MAC, or shorter than an Ethernet header
	TxFrames    uint64 `json:"tx_frames"`    // frames written to the TAP
	TxNotSent   uint64 `json:"tx_not_sent"`  // frames refused to the stack: no usable TAP fd, or the write failed (link down, TAP deleted, ...)
	Reopens     uint64 `json:"reopens"`      // successful opens after the first one
	LinkChanges uint64 `json:"link_changes"` // up/down transitions (as reported to OnLinkChange)
}

// Link is a gVisor link endpoint over a TAP device that survives the TAP
// going down, being deleted and being re-created. See the package
// documentation.
type Link struct {
	cfg  LinkConfig
	name string
	mac  tcpip.LinkAddress
	ep   *Endpoint
	log  *slog.Logger
	ns   *netnsHandle // namespace NewLink was called in
	ctl  int          // ioctl socket in that namespace

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // asks the monitor for an immediate check

	mu      sync.Mutex
	dev     *Device       // current TAP fd; nil while there is none
	broken  bool          // dev failed; the monitor will close it
	changed chan struct{} // closed (and replaced) whenever dev/broken change
	closed  bool

	up atomic.Bool

	watchMu  sync.Mutex // serialises link-state reports, so watchers see them in order
	watchers map[int]func(up bool)
	watchSeq int

	// Monitor-goroutine state.
	opened     bool   // some open has succeeded
	lastOpenEr string // last open error logged, to log each distinct one once

	rxFrames, rxFiltered, txFrames, txNotSent, reopens, linkChanges atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// NewLink opens the TAP described by cfg.Device in the network namespace of
// the calling OS thread and starts the Link's reader and monitor
// goroutines. If the TAP does not exist and cfg.Device.Create is false, it
// returns a Link that is down and checks every CheckInterval for the TAP to
// appear. Other open errors (bad name, permissions, not a TAP, busy) are
// returned.
//
// The Link is initially down even if the TAP is usable: the first check,
// made right away by the monitor, reports up through OnLinkChange.
func NewLink(cfg LinkConfig) (*Link, error) {
	name := cfg.Device.Name
	if err := ValidateName(name); err != nil {
		return nil, opErr("open", name, err)
	}
	if len(cfg.MAC) != header.EthernetAddressSize {
		return nil, opErr("open", name, fmt.Errorf("LinkConfig.MAC %q is not a 6-byte MAC address", cfg.MAC))
	}
	if cfg.MAC[0]&1 != 0 || cfg.MAC == "\x00\x00\x00\x00\x00\x00" {
		return nil, opErr("open", name, fmt.Errorf("LinkConfig.MAC %v is not a unicast MAC address", cfg.MAC))
	}
	if cfg.MTU != 0 && (cfg.MTU < MinMTU || cfg.MTU > MaxMTU) {
		return nil, opErr("open", name, fmt.Errorf("LinkConfig.MTU %d is out of range %d..%d", cfg.MTU, MinMTU, MaxMTU))
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("tap", name)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctl, err := ctlSocket()
	if err != nil {
		return nil, opErr("open", name, err)
	}
	l := &Link{
		cfg:     cfg,
		name:    name,
		mac:     cfg.MAC,
		log:     log,
		ns:      captureNetns(),
		ctl:     ctl,
		kick:    make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	l.ep = &Endpoint{l: l, mtu: cfg.MTU + header.EthernetMinimumSize}
	dev, err := openWith(ctl, cfg.Device)
	switch {
	case err == nil:
		l.dev = dev
		l.opened = true
		log.Info("TAP opened", "created", dev.Created(), "ifindex", dev.Index())
	case errors.Is(err, ErrNotExist):
		log.Info("TAP does not exist yet; waiting for it", "check_interval", cfg.CheckInterval)
		l.lastOpenEr = err.Error()
	default:
		unix.Close(ctl)
		l.ns.close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.reader()
	go l.monitor()
	return l, nil
}

// Endpoint returns the gVisor link endpoint carrying the TAP's raw Ethernet
// frames. See the Endpoint type.
func (l *Link) Endpoint() *Endpoint { return l.ep }

// Up reports whether the TAP is currently usable (as last reported to
// OnLinkChange).
func (l *Link) Up() bool { return l.up.Load() }

// Name returns the TAP's interface name.
func (l *Link) Name() string { return l.name }

// Stats returns a snapshot of the Link's counters.
func (l *Link) Stats() LinkStats {
	return LinkStats{
		RxFrames:    l.rxFrames.Load(),
		RxFiltered:  l.rxFiltered.Load(),
		TxFrames:    l.txFrames.Load(),
		TxNotSent:   l.txNotSent.Load(),
		Reopens:     l.reopens.Load(),
		LinkChanges: l.linkChanges.Load(),
	}
}

// Close stops the Link's goroutines and waits for them and closes the TAP
// fd (a TAP the Link created disappears; an existing one stays); later
// writes by the stack fail with ErrClosedForSend. It is idempotent. It must
// not be called from OnLinkChange or a link-state watcher.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.mu.Lock()
		l.closed = true
		dev := l.dev
		l.setDevLocked(nil)
		l.mu.Unlock()
		if dev != nil {
			l.closeErr = dev.Close() // unblocks the reader
		}
		l.wg.Wait()
		unix.Close(l.ctl)
		l.ns.close()
		l.up.Store(false)
		l.log.Info("link closed")
	})
	return l.closeErr
}

// setDevLocked installs dev (nil: none) and wakes goroutines waiting for a
// change. l.mu must be held.
func (l *Link) setDevLocked(dev *Device) {
	l.dev = dev
	l.broken = false
	close(l.changed)
	l.changed = make(chan struct{})
}

// current returns the usable device, or nil and a channel that is closed on
// the next change.
func (l *Link) current() (*Device, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev == nil || l.broken {
		return nil, l.changed
	}
	return l.dev, l.changed
}

// markBroken records that dev failed, if it still is the current device, and
// asks the monitor to handle it.
func (l *Link) markBroken(dev *Device, op string, err error) {
	l.mu.Lock()
	mark := l.dev == dev && !l.broken && !l.closed
	if mark {
		l.broken = true
	}
	l.mu.Unlock()
	if mark {
		l.log.Warn("TAP "+op+" failed; dropping the fd", "err", err)
		l.kickMonitor()
	}
}

func (l *Link) kickMonitor() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// reader pumps frames from the TAP into the channel endpoint.
func (l *Link) reader() {
	defer l.wg.Done()
	buf := make([]byte, readBufSize)
	for {
		dev, changed := l.current()
		if dev == nil {
			select {
			case <-changed:
				continue
			case <-l.ctx.Done():
				return
			}
		}
		for {
			n, err := dev.Read(buf)
			if err != nil {
				if l.ctx.Err() != nil {
					return
				}
				// Any read error means the fd is unusable: EBADFD after the
				// TAP was deleted, or ErrClosed because the monitor (which
				// then has already replaced it) closed it.
				l.markBroken(dev, "read", err)
				break
			}
			l.deliver(buf[:n])
		}
	}
}

// deliver filters one inbound frame by destination MAC and injects it.
func (l *Link) deliver(frame []byte) {
	if len(frame) < header.EthernetMinimumSize {
		l.rxFiltered.Add(1)
		return
	}
	dst := frame[:header.EthernetAddressSize]
	if dst[0]&1 == 0 && string(dst) != string(l.mac) { // unicast, not ours
		l.rxFiltered.Add(1)
		return
	}
	proto := tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(frame[12:14]))
	d := l.ep.dispatcher()
	if d == nil {
		l.rxFiltered.Add(1) // no stack attached yet
		return
	}
	l.rxFrames.Add(1) // before delivery, so that a dispatcher never sees more than RxFrames
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// write writes one frame to the TAP on the caller's goroutine and says why
// it could not.
func (l *Link) write(frame []byte) tcpip.Error {
	dev, _ := l.current()
	if dev == nil {
		l.txNotSent.Add(1)
		return &tcpip.ErrClosedForSend{}
	}
	if _, err := dev.Write(frame); err != nil {
		l.txNotSent.Add(1)
		if errors.Is(err, unix.EBADFD) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			l.markBroken(dev, "write", err)
			return &tcpip.ErrClosedForSend{}
		}
		// EIO: the TAP is down. Anything else (EINVAL for a bad frame,
		// ErrClosed during a re-open) is not a reason to drop the fd; let
		// the monitor look at the flags.
		l.log.Debug("TAP write failed", "err", err)
		l.kickMonitor()
		var errno unix.Errno
		if errors.As(err, &errno) && errno != unix.EIO {
			return tcpip.TranslateErrno(errno)
		}
		return &tcpip.ErrClosedForSend{}
	}
	l.txFrames.Add(1)
	if !l.up.Load() {
		l.kickMonitor() // the TAP just came up (the write worked): notice it now
	}
	return nil
}

// monitor checks the TAP's state at start, every CheckInterval and on
// request, until Close.
func (l *Link) monitor() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.CheckInterval)
	defer t.Stop()
	for {
		l.check()
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
	}
}

// check makes one state check: one SIOCGIFFLAGS ioctl, plus an open when
// there is no fd and the TAP exists (or Create is set).
func (l *Link) check() {
	if l.ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	dev, broken := l.dev, l.broken
	l.mu.Unlock()

	flags, err := ifFlags(l.ctl, l.name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotExist) {
		// Not expected for a valid name; keep the fd, report down, retry.
		l.log.Warn("SIOCGIFFLAGS failed", "err", err)
		l.setUp(false)
		return
	}
	if dev != nil && (broken || !exists) {
		// Deleted (or the fd failed): the fd is useless even if a TAP of
		// the same name appears again. Drop it.
		l.mu.Lock()
		if l.dev == dev {
			l.setDevLocked(nil)
		}
		l.mu.Unlock()
		_ = dev.Close()
		l.log.Info("TAP fd dropped", "exists", exists, "broken", broken)
		dev = nil
		l.setUp(false)
	}
	if dev == nil {
		if !exists && !l.cfg.Device.Create {
			l.setUp(false)
			return
		}
		if !l.reopen() {
			l.setUp(false)
			return
		}
		flags, err = ifFlags(l.ctl, l.name)
		exists = err == nil
	}
	l.setUp(exists && flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0)
}

// reopen opens the TAP in the Link's namespace and installs it.
func (l *Link) reopen() bool {
	var dev *Device
	err := l.ns.do(func() (err error) {
		dev, err = openWith(l.ctl, l.cfg.Device)
		return err
	})
	if err != nil {
		if msg := err.Error(); msg != l.lastOpenEr {
			l.lastOpenEr = msg
			if errors.Is(err, ErrNotExist) {
				l.log.Info("TAP does not exist; waiting for it")
			} else {
				l.log.Warn("TAP open failed; will retry", "err", err)
			}
		}
		return false
	}
	l.lastOpenEr = ""
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = dev.Close()
		return false
	}
	l.setDevLocked(dev)
	l.mu.Unlock()
	if l.opened {
		l.reopens.Add(1)
	}
	l.opened = true
	l.log.Info("TAP opened", "created", dev.Created(), "ifindex", dev.Index())
	return true
}

// setUp records the usable state and reports a transition.
func (l *Link) setUp(up bool) {
	if l.ctx.Err() != nil || l.up.Load() == up {
		return
	}
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	l.up.Store(up)
	l.linkChanges.Add(1)
	l.log.Info("link state changed", "up", up)
	if l.cfg.OnLinkChange != nil {
		l.cfg.OnLinkChange(up)
	}
	for _, id := range l.watcherIDs() {
		l.watchers[id](up)
	}
}

// watcherIDs returns the watchers' ids in the order they subscribed.
func (l *Link) watcherIDs() []int {
	ids := make([]int, 0, len(l.watchers))
	for id := range l.watchers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// watchLinkState implements Endpoint.WatchLinkState.
func (l *Link) watchLinkState(f func(up bool)) (stop func()) {
	l.watchMu.Lock()
	defer l.watchMu.Unlock()
	if l.watchers == nil {
		l.watchers = make(map[int]func(bool))
	}
	l.watchSeq++
	id := l.watchSeq
	l.watchers[id] = f
	f(l.up.Load())
	return func() {
		l.watchMu.Lock()
		delete(l.watchers, id)
		l.watchMu.Unlock()
	}
}
