//go:build linux

package tap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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

	// CheckInterval is how often the monitor polls the TAP's state with one
	// SIOCGIFFLAGS ioctl when the kernel's link notifications cannot be
	// had (0: the default, 1s; negative is refused). Normally the Link
	// subscribes to them (an rtnetlink socket bound to the RTMGRP_LINK
	// group in the TAP's namespace: it only listens, it configures nothing) and checks the TAP only when the
	// kernel reports a change of a link of the TAP's name or index, when a
	// read or write fails, and when the notifications overflow: it then
	// does no periodic work at all. CheckInterval also bounds how long a
	// change takes to be noticed once the Link has fallen back to polling.
	CheckInterval time.Duration

	// DeferOpen makes NewLink touch no TAP: the Link is down, its Endpoint
	// can be given to a stack, and Open makes the first open. A TAP comes
	// up (the kernel marks it running) when a reader attaches, so a program
	// that opens it last, once everything else is ready, starts working
	// within moments of the link really being up.
	DeferOpen bool

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
	RxFrames    uint64 `json:"rx_frames"`    // frames handed to the endpoint's inbound hook or dispatcher
	RxHooked    uint64 `json:"rx_hooked"`    // of those, frames the inbound hook consumed (the AutoIP shim: conflicts, ARP netstack need not see)
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
	// notify is an rtnetlink socket subscribed to link changes in that
	// namespace; nil when none could be had (the monitor then polls).
	notify  *os.File
	polling atomic.Bool  // the monitor polls every CheckInterval
	index   atomic.Int32 // ifindex of the TAP last opened

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // asks the monitor for an immediate check

	mu      sync.Mutex
	dev     *Device       // current TAP fd; nil while there is none
	broken  bool          // dev failed; the monitor will close it
	changed chan struct{} // closed (and replaced) whenever dev/broken change
	closed  bool
	started bool // the first open was made and the goroutines run

	up atomic.Bool

	watchMu  sync.Mutex // serialises link-state reports, so watchers see them in order
	watchers map[int]func(up bool)
	watchSeq int

	// Monitor-goroutine state.
	opened     bool          // some open has succeeded
	failing    bool          // the last check could not open or read the TAP: retry
	retry      time.Duration // the current retry delay
	openedAt   time.Time     // when the TAP was last opened
	lastOpenEr string        // last open error logged, to log each distinct one once

	rxFrames, rxHooked, rxFiltered, txFrames, txNotSent, reopens, linkChanges atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// NewLink opens the TAP described by cfg.Device in the network namespace of
// the calling OS thread and starts the Link's reader and monitor
// goroutines. If the TAP does not exist and cfg.Device.Create is false, it
// returns a Link that is down and opens the TAP when it appears. Other open
// errors (bad name, permissions, not a TAP, busy) are returned. With
// cfg.DeferOpen, NewLink only checks cfg and records the namespace; Open
// makes the first open.
//
// The Link is initially down even if the TAP is usable: the monitor's
// first check, made right after the open, reports up through OnLinkChange
// (or, if the kernel has not marked the TAP running yet, the kernel's
// notification does a few milliseconds later).
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
	if cfg.CheckInterval < 0 {
		return nil, opErr("open", name, fmt.Errorf("LinkConfig.CheckInterval %v is negative (0 means the default, %v)", cfg.CheckInterval, DefaultCheckInterval))
	}
	if cfg.CheckInterval == 0 {
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
	l.ctx, l.cancel = context.WithCancel(context.Background())
	// Subscribe before the first open, so that the kernel's report of the
	// TAP becoming running (a few ms after a reader attaches) is not missed.
	if f, err := linkNotifier(); err == nil && !noNotify {
		l.notify = f
	} else {
		if f != nil {
			f.Close()
		}
		if err == nil {
			err = errors.New("disabled")
		}
		l.polling.Store(true)
		log.Info("no link notifications from the kernel; polling the TAP's state", "check_interval", cfg.CheckInterval, "err", err)
	}
	if cfg.DeferOpen {
		return l, nil
	}
	if err := l.Open(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Open makes the first open of the TAP and starts the Link's goroutines,
// in the namespace NewLink was called in (see NewLink for what it returns:
// a missing TAP is not an error). It checks the TAP's state once itself
// before it returns, so the first link-state report (OnLinkChange and the
// watchers) may come on the caller's goroutine. NewLink calls it unless
// LinkConfig.DeferOpen is set. Later calls do nothing and return nil; after
// Close it returns an error matching net.ErrClosed.
func (l *Link) Open() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return opErr("open", l.name, net.ErrClosed)
	}
	if l.started {
		l.mu.Unlock()
		return nil
	}
	var dev *Device
	err := l.ns.do(func() (err error) {
		dev, err = openWith(l.ctl, l.cfg.Device)
		return err
	})
	switch {
	case err == nil:
		l.dev = dev
		l.opened = true
		l.openedAt = time.Now()
		l.index.Store(int32(dev.Index()))
		l.log.Info("TAP opened", "created", dev.Created(), "ifindex", dev.Index())
	case errors.Is(err, ErrNotExist):
		how := "the kernel's link notifications"
		if l.polling.Load() {
			how = "a check every " + l.cfg.CheckInterval.String()
		}
		l.log.Info("TAP does not exist yet; waiting for it", "noticed_by", how)
		l.lastOpenEr = err.Error()
	default:
		l.mu.Unlock()
		return err
	}
	l.started = true
	n := 2
	if l.notify != nil {
		n++
	}
	l.wg.Add(n) // before the unlock: a concurrent Close waits for them
	l.mu.Unlock()
	// The first check right here, on the caller's goroutine (which has a
	// CPU now), before the monitor starts: when the machine is busy the
	// kernel has often marked the TAP running by the time TUNSETIFF
	// returns, and the link-state report then waits for no other goroutine
	// to be scheduled.
	if dev != nil {
		l.check()
	}
	go l.reader()
	go l.monitor()
	if l.notify != nil {
		go l.watchKernel()
	}
	return nil
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
		RxHooked:    l.rxHooked.Load(),
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
		started := l.started
		dev := l.dev
		l.setDevLocked(nil)
		l.mu.Unlock()
		if dev != nil {
			l.closeErr = dev.Close() // unblocks the reader
		}
		if l.notify != nil {
			l.notify.Close() // unblocks watchKernel
		}
		l.wg.Wait()
		unix.Close(l.ctl)
		l.ns.close()
		l.up.Store(false)
		if started {
			l.log.Info("link closed")
		}
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

// reader pumps frames from the TAP into the endpoint.
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
			n, err := dev.readWait(buf)
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

// deliver filters one inbound frame by destination MAC and hands it to
// the endpoint's inbound hook, then (unless the hook consumed it) to the
// dispatcher.
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
	d := l.ep.dispatcher()
	if d == nil {
		l.rxFiltered.Add(1) // no stack attached yet
		return
	}
	l.rxFrames.Add(1) // before delivery, so that a dispatcher never sees more than RxFrames
	if h := l.ep.hook.Load(); h != nil && !(*h)(frame) {
		l.rxHooked.Add(1)
		return
	}
	proto := tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(frame[12:14]))
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// write writes one frame to the TAP on the caller's goroutine and says why
// it could not.
func (l *Link) write(pkt *stack.PacketBuffer) tcpip.Error {
	dev, _ := l.current()
	if dev == nil {
		l.txNotSent.Add(1)
		return &tcpip.ErrClosedForSend{}
	}
	if _, err := dev.writePacket(pkt); err != nil {
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

// monitor checks the TAP's state at start, whenever something asks for it
// (a kernel link notification, a failed read or write) and, only while
// polling, every CheckInterval, until Close.
func (l *Link) monitor() {
	defer l.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		l.check()
		var tick <-chan time.Time
		if d := l.nextPoll(); d > 0 {
			t.Reset(d)
			tick = t.C
		}
		select {
		case <-l.ctx.Done():
			return
		case <-tick:
		case <-l.kick:
			t.Stop()
		}
	}
}

// settleWindow is how long after an open a polling monitor re-checks a TAP
// that is up but not yet running every settlePoll: the kernel marks it
// running a few milliseconds after the open, just too late for the check
// made right after it.
const (
	settleWindow = time.Second
	settlePoll   = 10 * time.Millisecond
)

// nextPoll is the wait before the next periodic check; 0 means none (the
// kernel's notifications say when to check). A check that failed to open
// or read the TAP is retried after 10 ms, doubling up to CheckInterval,
// whether or not the Link polls.
func (l *Link) nextPoll() time.Duration {
	if l.failing {
		// 10 ms, 20 ms, ... up to CheckInterval.
		l.retry = min(max(2*l.retry, settlePoll), l.cfg.CheckInterval)
		return l.retry
	}
	l.retry = 0
	if !l.polling.Load() {
		return 0
	}
	l.mu.Lock()
	settling := l.dev != nil && time.Since(l.openedAt) < settleWindow
	l.mu.Unlock()
	if settling && !l.up.Load() && l.cfg.CheckInterval > settlePoll {
		return settlePoll
	}
	return l.cfg.CheckInterval
}

// watchKernel reads the kernel's link notifications and asks the monitor
// for a check whenever one concerns the TAP (by name, or by the index of
// the TAP last opened: a rename, a deletion). If the notifications fail,
// it switches the monitor to polling.
func (l *Link) watchKernel() {
	defer l.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := l.notify.Read(buf)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOBUFS) {
				// The socket overflowed: some notifications are lost,
				// so look at the TAP anyway.
				l.kickMonitor()
				continue
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			l.log.Warn("link notifications failed; polling the TAP's state from now on", "err", err, "check_interval", l.cfg.CheckInterval)
			l.polling.Store(true)
			l.kickMonitor()
			return
		}
		if linkMessageConcerns(buf[:n], l.name, l.index.Load()) {
			l.kickMonitor()
		}
	}
}

// check makes one state check: one SIOCGIFFLAGS ioctl, plus an open when
// there is no fd and the TAP exists (or Create is set).
func (l *Link) check() {
	if l.ctx.Err() != nil {
		return
	}
	l.failing = false
	l.mu.Lock()
	dev, broken := l.dev, l.broken
	l.mu.Unlock()

	flags, err := ifFlags(l.ctl, l.name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotExist) {
		// Not expected for a valid name; keep the fd, report down, retry.
		l.log.Warn("SIOCGIFFLAGS failed", "err", err)
		l.failing = true
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
		if err := l.reopen(); err != nil {
			// A TAP that exists (or is to be created) but cannot be
			// opened now, typically busy for a moment (`ip tuntap add`
			// still holds it): no notification may follow, so retry.
			l.failing = !errors.Is(err, ErrNotExist)
			l.setUp(false)
			return
		}
		flags, err = ifFlags(l.ctl, l.name)
		exists = err == nil
	}
	l.setUp(exists && flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0)
}

// reopen opens the TAP in the Link's namespace and installs it.
func (l *Link) reopen() error {
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
		return err
	}
	l.lastOpenEr = ""
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = dev.Close()
		return net.ErrClosed
	}
	l.setDevLocked(dev)
	l.openedAt = time.Now()
	l.mu.Unlock()
	l.index.Store(int32(dev.Index()))
	if l.opened {
		l.reopens.Add(1)
	}
	l.opened = true
	l.log.Info("TAP opened", "created", dev.Created(), "ifindex", dev.Index())
	return nil
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
