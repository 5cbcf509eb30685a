package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoip-project/autoip/stack"
)

// ControlRequest is one line of JSON a client sends on the status socket:
// {"op":"status"}, {"op":"alias","prefix":"10.0.0.1/24"} or
// {"op":"delete","addr":"10.0.0.1"}. A client that sends nothing gets the
// status report (older clients).
type ControlRequest struct {
	Op     string `json:"op"`
	Prefix string `json:"prefix,omitempty"`
	Addr   string `json:"addr,omitempty"`
}

// ControlReply answers a control request.
type ControlReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// requestWait is how long the server waits for a request line before it
// answers with the status report, as it did before requests existed.
const requestWait = 100 * time.Millisecond

// maxRequest bounds a request line.
const maxRequest = 4096

func (s *statusServer) answer(c net.Conn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(requestWait))
	line, err := bufio.NewReader(io.LimitReader(c, maxRequest)).ReadBytes('\n')
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var req ControlRequest
	if len(line) > 0 {
		if jerr := json.Unmarshal(line, &req); jerr != nil {
			s.reply(c, ControlReply{Error: fmt.Sprintf("request is not JSON: %v", jerr)})
			return
		}
	} else if err != nil && !errors.Is(err, io.EOF) && !os.IsTimeout(err) {
		return
	}
	if req.Op == "" || req.Op == "status" {
		enc := json.NewEncoder(c)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.report()); err != nil {
			s.log.Debug("status write failed", "err", err)
		}
		return
	}
	if s.control == nil {
		s.reply(c, ControlReply{Error: "this daemon takes no control requests"})
		return
	}
	if uid, ok := peerUID(c); !ok || (uid != 0 && uid != os.Geteuid()) {
		s.log.Warn("control request refused: peer is not root or the daemon's user", "op", req.Op, "uid", uid)
		s.reply(c, ControlReply{Error: fmt.Sprintf("permission denied: uid %d may not change addresses", uid)})
		return
	}
	s.reply(c, s.control(req))
}

func (s *statusServer) reply(c net.Conn, r ControlReply) {
	if err := json.NewEncoder(c).Encode(r); err != nil {
		s.log.Debug("control reply failed", "err", err)
	}
}

// peerUID returns the uid of the process at the other end of c.
func peerUID(c net.Conn) (int, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || cerr != nil {
		return -1, false
	}
	return int(cred.Uid), true
}

// sendControl sends req to the daemon listening on path and returns its
// reply.
func sendControl(path string, req ControlRequest, timeout time.Duration) (ControlReply, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return ControlReply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return ControlReply{}, fmt.Errorf("send request: %w", err)
	}
	var r ControlReply
	if err := json.NewDecoder(io.LimitReader(c, 1<<16)).Decode(&r); err != nil {
		return ControlReply{}, fmt.Errorf("read reply: %w", err)
	}
	return r, nil
}

// handleControl performs a control request on the running daemon.
func (d *daemon) handleControl(req ControlRequest) ControlReply {
	fail := func(err error) ControlReply { return ControlReply{Error: err.Error()} }
	switch req.Op {
	case "alias":
		p, err := parseRoutablePrefix(req.Prefix)
		if err != nil {
			return fail(fmt.Errorf("alias %q: %w", req.Prefix, err))
		}
		if err := d.client.AddAddress(p, stack.SourceAlias); err != nil {
			return fail(err)
		}
		d.log.Info("alias requested: probing before it is configured", "addr", p.String())
		return ControlReply{OK: true}
	case "delete":
		a, err := netip.ParseAddr(req.Addr)
		if err != nil || !a.Is4() {
			return fail(fmt.Errorf("delete %q: want an IPv4 address", req.Addr))
		}
		if err := d.client.RemoveAddress(a); err != nil {
			return fail(err)
		}
		d.log.Info("address deleted", "addr", a.String())
		return ControlReply{OK: true}
	}
	return fail(fmt.Errorf("unknown request %q: want status, alias or delete", req.Op))
}
