package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/autoip/acd"
)

// crowdArgs: the fastest settings, so that the first probe follows the
// start of probing within PROBE_WAIT = 0.5 ms.
var crowdArgs = []string{"-o", "delay=1", "-p", "1", "-a", "1", "-w", "1"}

// CrowdRep is one daemon of one round. Times are in milliseconds.
type CrowdRep struct {
	Round int    `json:"round"`
	Iface string `json:"iface"`
	// LinkUp: the round's start (all daemons exec'd at once) to the kernel
	// reporting the TAP running (IFF_RUNNING in an RTM_NEWLINK seen by a
	// real-time-priority netlink listener).
	LinkUp float64 `json:"link_up_ms"`
	// Probe: the TAP running to the daemon's first ARP probe arriving on
	// the TAP (kernel receive timestamp). This is "probing started after
	// the link came up" plus PROBE_WAIT (at most 0.5 ms here).
	Probe float64 `json:"probe_ms"`
	// Noticed: the TAP running to the daemon logging "link state changed"
	// up.
	Noticed *float64 `json:"noticed_ms,omitempty"`
	// Started: the TAP running to the daemon logging the engine's first
	// state other than stopped and link-down (waiting: PROBE_WAIT begun):
	// the start of probing. Absent if the log lacks it. Both may be a
	// little negative: the daemon may read IFF_RUNNING before the kernel's
	// notification of it reaches the listener.
	Started *float64 `json:"started_ms,omitempty"`
	// Opened: the TAP running to the daemon logging "TAP opened", right
	// after its TUNSETIFF returned: the kernel sets the TAP running inside
	// that ioctl, so this is the part of Started spent in the kernel.
	Opened *float64 `json:"opened_ms,omitempty"`
}

// CrowdResult is what crowd writes.
type CrowdResult struct {
	Daemons int        `json:"daemons"`
	Rounds  int        `json:"rounds"`
	Args    []string   `json:"args"`
	Reps    []CrowdRep `json:"reps"`
	// Missing counts daemons of which no probe (or no link-up) was seen
	// within the round's timeout.
	Missing int `json:"missing"`
}

// crowdMain starts n daemons at once, each on its own TAP port of one
// bridge, rounds times, and measures how long after its TAP is really up
// each one starts probing. It creates the bridge and TAPs in the current
// network namespace (run.sh runs it in its own).
func crowdMain(args []string) error {
	fs := flag.NewFlagSet("crowd", flag.ContinueOnError)
	bin := fs.String("autoipd", "", "autoipd binary")
	n := fs.Int("n", 20, "daemons started together")
	rounds := fs.Int("rounds", 3, "rounds")
	work := fs.String("work", "", "work directory")
	out := fs.String("out", "", "JSON result file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *work == "" || *out == "" || *n < 1 || *n > 99 || *rounds < 1 {
		return errors.New("need -autoipd, -work, -out, -n 1..99, -rounds >= 1")
	}
	const br = "aipbbr0"
	ifaces := make([]string, *n)
	index := map[int]int{} // ifindex -> daemon
	ipc := func(a ...string) error {
		if out, err := exec.Command("ip", a...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(a, " "), err, out)
		}
		return nil
	}
	if err := ipc("link", "add", br, "type", "bridge"); err != nil {
		return err
	}
	defer ipc("link", "del", br)
	if err := ipc("link", "set", br, "up"); err != nil {
		return err
	}
	for i := range ifaces {
		ifaces[i] = fmt.Sprintf("aipbd%02d", i)
		if err := ipc("tuntap", "add", "dev", ifaces[i], "mode", "tap"); err != nil {
			return err
		}
		defer ipc("link", "del", ifaces[i])
		if err := ipc("link", "set", ifaces[i], "master", br); err != nil {
			return err
		}
		if err := ipc("link", "set", ifaces[i], "up"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(ifaces[i])
		if err != nil {
			return err
		}
		index[ifi.Index] = i
	}
	mon, err := newCrowdMonitor(index)
	if err != nil {
		return err
	}
	defer mon.close()

	res := CrowdResult{Daemons: *n, Rounds: *rounds, Args: crowdArgs}
	for r := 1; r <= *rounds; r++ {
		// The kernel reports a lost carrier up to a second late (linkwatch
		// delays non-urgent events): wait until no TAP looks running.
		if err := waitNotRunning(ifaces, 5*time.Second); err != nil {
			return err
		}
		macs := make([]acd.MAC, *n)
		procs := make([]*daemonProc, *n)
		logs := make([]string, *n)
		for i := range macs {
			macs[i] = acd.MAC{0x02, 0xb1, byte(os.Getpid()), byte(r), 0, byte(i + 1)}
		}
		mon.reset(macs)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, *n)
		for i := range procs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				dir := filepath.Join(*work, fmt.Sprintf("crowd-%d-%02d", r, i))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					errs[i] = err
					return
				}
				logs[i] = filepath.Join(dir, "daemon.log")
				a := append([]string{"-i", ifaces[i], "-state-dir", filepath.Join(dir, "state"), "-mac", macs[i].String(), "-log-format", "json"}, crowdArgs...)
				procs[i], _, errs[i] = startDaemon(*bin, a, logs[i], "")
			}(i)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			for _, p := range procs {
				if p != nil {
					p.stop()
				}
			}
			return err
		}
		mon.waitAll(10 * time.Second)
		var stopErr error
		for _, p := range procs {
			if err := p.stop(); err != nil && stopErr == nil {
				stopErr = err
			}
		}
		if stopErr != nil {
			return stopErr
		}
		ups, probes := mon.snapshot()
		var lat []float64
		for i := range procs {
			up, probe := ups[i], probes[i]
			if up.IsZero() || probe.IsZero() {
				res.Missing++
				progress("crowd round %d: %s: no link-up (%v) or no probe (%v) seen", r, ifaces[i], !up.IsZero(), !probe.IsZero())
				continue
			}
			rep := CrowdRep{Round: r, Iface: ifaces[i], LinkUp: ms(up.Sub(start)), Probe: ms(probe.Sub(up))}
			if lg, err := crowdLog(logs[i]); err == nil {
				if !lg.linkUp.IsZero() {
					v := ms(lg.linkUp.Sub(up))
					rep.Noticed = &v
				}
				if !lg.started.IsZero() {
					v := ms(lg.started.Sub(up))
					rep.Started = &v
				}
				if !lg.opened.IsZero() {
					v := ms(lg.opened.Sub(up))
					rep.Opened = &v
				}
			}
			res.Reps = append(res.Reps, rep)
			lat = append(lat, rep.Probe)
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			progress("crowd round %d/%d: %d daemons; TAP running → first probe on the wire: median %.1f ms, max %.1f ms", r, *rounds, len(lat), lat[len(lat)/2], lat[len(lat)-1])
		}
	}
	return writeJSON(*out, res)
}

// waitNotRunning waits until none of ifaces has IFF_RUNNING.
func waitNotRunning(ifaces []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		running := ""
		for _, name := range ifaces {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			if ifi.Flags&net.FlagRunning != 0 {
				running = name
				break
			}
		}
		if running == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still running %v after its daemon stopped", running, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crowdLogTimes is what crowd reads from a daemon's JSON log.
type crowdLogTimes struct {
	linkUp  time.Time // first "link state changed" up=true
	started time.Time // first "state" record to a state other than stopped and link-down
	opened  time.Time // "TAP opened"
}

func crowdLog(path string) (crowdLogTimes, error) {
	var lg crowdLogTimes
	f, err := os.Open(path)
	if err != nil {
		return lg, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Up   *bool     `json:"up"`
			From string    `json:"from"`
			To   string    `json:"to"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch {
		case rec.Msg == "link state changed" && rec.Up != nil && *rec.Up && lg.linkUp.IsZero():
			lg.linkUp = rec.Time
		case rec.Msg == "state" && rec.To != "stopped" && rec.To != "link-down" && lg.started.IsZero():
			lg.started = rec.Time
		case rec.Msg == "TAP opened" && lg.opened.IsZero():
			lg.opened = rec.Time
		}
	}
	return lg, sc.Err()
}

// crowdMonitor watches the TAPs' link state (rtnetlink) and the ARP frames
// arriving on them (AF_PACKET, kernel timestamps).
type crowdMonitor struct {
	index  map[int]int
	nl, pk int

	mu     sync.Mutex
	macs   []acd.MAC
	ups    []time.Time
	probes []time.Time
	all    chan struct{} // closed when every daemon has probed
	done   sync.WaitGroup
}

func newCrowdMonitor(index map[int]int) (*crowdMonitor, error) {
	m := &crowdMonitor{index: index}
	var err error
	m.nl, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(m.nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(m.nl)
		return nil, err
	}
	_ = unix.SetsockoptInt(m.nl, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	// ETH_P_ALL: a bridge port's frames reach only the taps that see every
	// protocol (the bridge consumes them before per-protocol handlers).
	m.pk, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		unix.Close(m.nl)
		return nil, err
	}
	if err := unix.SetsockoptInt(m.pk, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(m.nl)
		unix.Close(m.pk)
		return nil, err
	}
	_ = unix.SetsockoptInt(m.pk, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	m.done.Add(2)
	go m.readLinks()
	go m.readFrames()
	return m, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// realtime puts the calling goroutine's thread at SCHED_FIFO priority, so
// that the time it takes on receipt is close to the kernel's event; the
// thread stays locked and dies with the goroutine.
func realtime() {
	runtime.LockOSThread()
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 10}, 0); err != nil {
		progress("crowd: no real-time priority for the listener (%v); its times may be late under load", err)
	}
}

func (m *crowdMonitor) reset(macs []acd.MAC) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.macs = macs
	m.ups = make([]time.Time, len(macs))
	m.probes = make([]time.Time, len(macs))
	m.all = make(chan struct{})
}

func (m *crowdMonitor) snapshot() (ups, probes []time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ups), slices.Clone(m.probes)
}

func (m *crowdMonitor) waitAll(timeout time.Duration) {
	m.mu.Lock()
	all := m.all
	m.mu.Unlock()
	select {
	case <-all:
	case <-time.After(timeout):
	}
}

func (m *crowdMonitor) readLinks() {
	defer m.done.Done()
	realtime()
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(m.nl, buf, 0)
		now := time.Now()
		if errors.Is(err, unix.ENOBUFS) {
			progress("crowd: the netlink listener lost messages (ENOBUFS)")
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, msg := range msgs {
			if msg.Header.Type != unix.RTM_NEWLINK || len(msg.Data) < unix.SizeofIfInfomsg {
				continue
			}
			ifi := (*unix.IfInfomsg)(unsafe.Pointer(&msg.Data[0]))
			i, ok := m.index[int(ifi.Index)]
			if !ok || ifi.Flags&unix.IFF_RUNNING == 0 {
				continue
			}
			m.mu.Lock()
			if m.ups != nil && m.ups[i].IsZero() {
				m.ups[i] = now
			}
			m.mu.Unlock()
		}
	}
}

func (m *crowdMonitor) readFrames() {
	defer m.done.Done()
	realtime()
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := unix.Recvmsg(m.pk, buf, oob, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING || n < 42 || binary.BigEndian.Uint16(buf[12:14]) != unix.ETH_P_ARP {
			continue
		}
		i, ok := m.index[ll.Ifindex]
		if !ok {
			continue
		}
		at := time.Now()
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_TIMESTAMPNS && len(cm.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(cm.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(cm.Data[8:16]))
					at = time.Unix(sec, nsec)
				}
			}
		}
		m.mu.Lock()
		if m.probes != nil && m.probes[i].IsZero() && string(buf[6:12]) == string(m.macs[i][:]) {
			m.probes[i] = at
			all := true
			for _, p := range m.probes {
				all = all && !p.IsZero()
			}
			if all {
				close(m.all)
			}
		}
		m.mu.Unlock()
	}
}

func (m *crowdMonitor) close() {
	unix.Close(m.nl)
	unix.Close(m.pk)
}
