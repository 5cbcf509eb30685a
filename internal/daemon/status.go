package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/autoip-project/autoip/autoip"
	"github.com/autoip-project/autoip/stack"
	"github.com/autoip-project/autoip/tap"
)

// StatusReport is what the status socket answers (and autoipd -status
// prints).
type StatusReport struct {
	Interface    string          `json:"interface"`
	PID          int             `json:"pid"`
	Started      time.Time       `json:"started"`
	MAC          string          `json:"mac"`
	Seed         string          `json:"seed"`
	State        string          `json:"state"`
	Address      string          `json:"address,omitempty"`    // candidate being probed, or the bound address
	Configured   string          `json:"configured,omitempty"` // the address on the netstack NIC, if any
	LinkUp       bool            `json:"link_up"`
	Reason       string          `json:"reason,omitempty"` // why no address is claimed (suspended, link-down)
	Conflicts    int             `json:"conflicts"`        // the count that drives rate limiting
	RateLimited  *time.Time      `json:"rate_limited_until,omitempty"`
	LastConflict *ConflictReport `json:"last_conflict,omitempty"`
	// DHCP is the DHCP client's state (-dhcp); Held says why link-local
	// waits for it.
	DHCP string `json:"dhcp,omitempty"`
	Held string `json:"link_local_held,omitempty"`
	// Addresses lists every other address on the interface: static
	// (-addr), alias (-alias) and the DHCP lease, with their conflict
	// detection state.
	Addresses []AddressReport `json:"addresses,omitempty"`
	Counters  Counters        `json:"counters"`
}

// AddressReport describes one address besides the link-local one.
type AddressReport struct {
	Prefix       string       `json:"prefix"`
	Source       string       `json:"source"` // static, alias, dhcp
	State        string       `json:"state"`  // probing, configured, conflict, link-down
	Conflicts    int          `json:"conflicts"`
	LastConflict string       `json:"last_conflict_mac,omitempty"`
	Lease        *LeaseReport `json:"lease,omitempty"`
}

// LeaseReport is a DHCP lease's details (DNS and domain are reported, not
// applied).
type LeaseReport struct {
	Server  string    `json:"server"`
	Expires time.Time `json:"expires,omitzero"`
	Routers []string  `json:"routers,omitempty"`
	DNS     []string  `json:"dns,omitempty"`
	Domain  string    `json:"domain,omitempty"`
}

// addressReports converts the client's address list.
func addressReports(as []stack.AddressStatus) []AddressReport {
	var out []AddressReport
	for _, a := range as {
		r := AddressReport{Prefix: a.Prefix.String(), Source: a.Source.String(), State: a.State.String(), Conflicts: a.Conflicts}
		if a.LastConflict != nil {
			r.LastConflict = a.LastConflict.From.String()
		}
		if l := a.Lease; l != nil && !l.IsZero() {
			lr := &LeaseReport{Server: addrString(l.Server), Expires: l.Expiry(), Domain: l.Domain}
			for _, x := range l.Routers {
				lr.Routers = append(lr.Routers, x.String())
			}
			for _, x := range l.DNS {
				lr.DNS = append(lr.DNS, x.String())
			}
			r.Lease = lr
		}
		out = append(out, r)
	}
	return out
}

// ConflictReport describes the last conflict: who and what.
type ConflictReport struct {
	Time       time.Time `json:"time"`
	Event      string    `json:"event"` // CONFLICT or DEFEND
	Address    string    `json:"address"`
	Phase      string    `json:"phase"`
	MAC        string    `json:"mac"`
	PacketKind string    `json:"packet_kind"`
}

// Counters groups the engine's, the client's, the shim's and the link's
// counters.
type Counters struct {
	Engine   autoip.Stats    `json:"engine"`
	NotSent  uint64          `json:"not_sent"`
	Reclaims uint64          `json:"reclaims"`
	StackErr uint64          `json:"stack_errors"`
	Shim     stack.ShimStats `json:"shim"`
	Link     tap.LinkStats   `json:"link"`
	Captured uint64          `json:"pcap_frames,omitempty"`
}

// buildReport makes a StatusReport from the client's status.
func buildReport(iface string, started time.Time, mac string, seed uint64, st stack.Status, link tap.LinkStats, linkUp bool, captured uint64) StatusReport {
	r := StatusReport{
		Interface:  iface,
		PID:        os.Getpid(),
		Started:    started,
		MAC:        mac,
		Seed:       fmt.Sprintf("%#x", seed),
		State:      st.State.String(),
		Address:    addrString(st.Addr),
		Configured: addrString(st.Configured),
		LinkUp:     linkUp,
		Conflicts:  st.Conflicts,
		Counters: Counters{
			Engine: st.Stats, NotSent: st.NotSent, Reclaims: st.Reclaims, StackErr: st.StackErrors,
			Shim: st.Shim, Link: link, Captured: captured,
		},
	}
	if !st.RateLimitedUntil.IsZero() {
		t := st.RateLimitedUntil
		r.RateLimited = &t
	}
	if c := st.LastConflict; c != nil {
		r.LastConflict = &ConflictReport{
			Time: c.Time, Event: c.Kind.String(), Address: addrString(c.Addr), Phase: c.Phase.String(),
			MAC: c.From.String(), PacketKind: c.Frame.Packet.Kind().String(),
		}
	}
	return r
}

// statusServer answers every connection on a unix socket with one JSON
// StatusReport and closes it, or, if the peer sends a control request line
// first (autoipd -alias, -delete), with the request's result. The socket is
// 0600: only the daemon's user reaches it, and control requests are
// further limited to that user and root by the peer's credentials.
type statusServer struct {
	path    string
	report  func() StatusReport
	control func(ControlRequest) ControlReply // nil: no control requests
	log     *slog.Logger
	wg      sync.WaitGroup

	mu sync.Mutex
	ln net.Listener
	fi os.FileInfo // the socket file, to notice it was removed or replaced
}

// maxSocketPath is the room in sockaddr_un.sun_path, less the NUL.
const maxSocketPath = 107

// listenStatus listens on path, replacing a stale socket there (the caller
// holds the interface's lock, so no live daemon owns it). control, which may
// be nil, answers control requests; it is set before the first connection
// is served, since serving starts here.
func listenStatus(path string, report func() StatusReport, control func(ControlRequest) ControlReply, log *slog.Logger) (*statusServer, error) {
	s := &statusServer{path: path, report: report, control: control, log: log}
	if err := s.relisten(); err != nil {
		return nil, err
	}
	return s, nil
}

// relisten makes a new socket at the path and serves it, closing the old
// one (whose file was removed or replaced).
func (s *statusServer) relisten() error {
	ln, err := listenPrivate(s.path)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(s.path)
	if err != nil {
		ln.Close()
		return fmt.Errorf("status socket %s: %w", s.path, err)
	}
	s.mu.Lock()
	old := s.ln
	s.ln, s.fi = ln, fi
	s.mu.Unlock()
	s.wg.Add(1)
	go s.serve(ln)
	if old != nil {
		old.Close()
	}
	return nil
}

// intact reports whether the socket file at the path is still ours.
func (s *statusServer) intact() bool {
	fi, err := os.Lstat(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	return err == nil && os.SameFile(fi, s.fi)
}

// listenPrivate makes a unix socket at path that only our user can connect
// to, whatever the umask, without a moment when it is reachable with wider
// permissions: it is bound in a fresh 0700 directory next to path,
// chmodded 0600 there, then renamed into place (atomically replacing a
// stale socket). Changing the umask instead would affect every goroutine,
// and fchmod on a socket before bind does not reach the file bind creates.
func listenPrivate(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("status socket path %s is %d bytes, more than the %d a unix socket allows: use a shorter -state-dir", path, len(path), maxSocketPath)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock")
	if err != nil {
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("status socket path %s needs %d bytes while it is made, more than the %d a unix socket allows: use a shorter -state-dir", path, len(tmp), maxSocketPath)
	}
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // it lives at path now; close removes that
	if err := os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	return ln, nil
}

func (s *statusServer) serve(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("status socket accept failed; status no longer served", "err", err)
			}
			return
		}
		s.answer(c)
	}
}

// close stops serving and removes the socket file.
func (s *statusServer) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.ln.Close()
	s.mu.Unlock()
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// queryStatus asks the daemon listening on path for its StatusReport and
// returns the raw JSON and the decoded report.
func queryStatus(path string, timeout time.Duration) ([]byte, *StatusReport, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "{\"op\":\"status\"}\n"); err != nil {
		return nil, nil, fmt.Errorf("ask for status: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("read status: %w", err)
	}
	var r StatusReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("decode status: %w", err)
	}
	return b, &r, nil
}
