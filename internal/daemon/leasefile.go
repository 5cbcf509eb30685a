package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/autoip-project/autoip/autoip/persist"
	"github.com/autoip-project/autoip/dhcp"
	"github.com/autoip-project/autoip/stack"
)

// leaseFileLimit bounds the lease file; a real one is well under 2 KiB.
const leaseFileLimit = 16 << 10

// leaseFile is the DHCP lease in the state directory (IFACE.lease.json):
// read with the same care as the state file (no links, no FIFOs, size
// capped, content never quoted), written atomically.
type leaseFile struct {
	path string
	log  *slog.Logger
}

// savedLease is the file's format.
type savedLease struct {
	Version  int           `json:"version"`
	Addr     netip.Prefix  `json:"addr"`
	Server   netip.Addr    `json:"server"`
	ServerHW string        `json:"server_mac"`
	Routers  []netip.Addr  `json:"routers,omitempty"`
	DNS      []netip.Addr  `json:"dns,omitempty"`
	Domain   string        `json:"domain,omitempty"`
	Acquired time.Time     `json:"acquired"`
	Duration time.Duration `json:"duration_ns"`
	T1       time.Duration `json:"t1_ns"`
	T2       time.Duration `json:"t2_ns"`
}

// LoadLease implements stack.LeaseStore.
func (f *leaseFile) LoadLease() (dhcp.Lease, error) {
	b, err := readRegular(f.path, leaseFileLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return dhcp.Lease{}, stack.ErrNoLease
	}
	if err != nil {
		return dhcp.Lease{}, err
	}
	var s savedLease
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 || !s.Addr.IsValid() || !s.Addr.Addr().Is4() || s.Duration <= 0 {
		return dhcp.Lease{}, fmt.Errorf("%s is not a lease this autoipd wrote (%d bytes)", f.path, len(b))
	}
	l := dhcp.Lease{Addr: s.Addr, Server: s.Server, Routers: s.Routers, DNS: s.DNS, Domain: s.Domain,
		Acquired: s.Acquired, Duration: s.Duration, T1: s.T1, T2: s.T2}
	if hw, err := parseMAC(s.ServerHW); err == nil {
		l.ServerHW = hw
	}
	return l, nil
}

// SaveLease implements stack.LeaseStore; a zero lease removes the file.
func (f *leaseFile) SaveLease(l dhcp.Lease) error {
	if l.IsZero() {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("forget lease: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(savedLease{Version: 1, Addr: l.Addr, Server: l.Server, ServerHW: macString(l.ServerHW),
		Routers: l.Routers, DNS: l.DNS, Domain: l.Domain, Acquired: l.Acquired, Duration: l.Duration, T1: l.T1, T2: l.T2}, "", "  ")
	if err != nil {
		return err
	}
	return persist.WriteFileAtomic(f.path, append(b, '\n'))
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	_, err := fmt.Sscanf(s, "%02x:%02x:%02x:%02x:%02x:%02x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5])
	return m, err
}
