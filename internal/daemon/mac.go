package daemon

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
)

// generateMAC returns a random locally administered unicast MAC.
func generateMAC() (acd.MAC, error) {
	var m acd.MAC
	if _, err := rand.Read(m[:]); err != nil {
		return m, fmt.Errorf("generate MAC: %w", err)
	}
	m[0] = m[0]&^0x01 | 0x02 // unicast, locally administered
	if m == (acd.MAC{0x02}) {
		m[5] = 1 // all-zero tail: still unicast, but unlikely to look deliberate
	}
	return m, nil
}

// loadOrCreateMAC returns the MAC kept in path, generating and storing a
// new one if the file is missing or unusable (which is reported through
// note). avoid, if set, is the kernel TAP's MAC: a stored or generated MAC
// equal to it is replaced.
func loadOrCreateMAC(path string, avoid acd.MAC, note func(msg string, args ...any)) (acd.MAC, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		m, perr := acd.ParseMAC(strings.TrimSpace(string(b)))
		switch {
		case perr != nil:
			note("ignoring unusable MAC file; generating a new MAC", "file", path, "err", perr)
		case !m.IsUnicast():
			note("ignoring MAC file with a non-unicast MAC; generating a new MAC", "file", path, "mac", m.String())
		case !avoid.IsZero() && m == avoid:
			note("stored MAC equals the kernel TAP's MAC; generating a new MAC", "file", path, "mac", m.String())
		default:
			return m, nil
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return acd.MAC{}, fmt.Errorf("read MAC file: %w", err)
	}
	var m acd.MAC
	for {
		if m, err = generateMAC(); err != nil {
			return m, err
		}
		if avoid.IsZero() || m != avoid {
			break
		}
	}
	if err := persist.WriteFileAtomic(path, []byte(m.String()+"\n")); err != nil {
		return m, fmt.Errorf("store MAC: %w", err)
	}
	note("generated the netstack's MAC", "mac", m.String(), "file", path)
	return m, nil
}
