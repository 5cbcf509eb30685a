package daemon

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/autoip/persist"
)

// macFileLimit bounds the MAC file: one line of 17 characters is all it
// holds.
const macFileLimit = 256

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

// loadMAC returns the MAC kept in path, and found false when there is no
// file yet. A file that is there but unusable (not a regular file, too
// big, not a unicast MAC, or the kernel TAP's own MAC, avoid) is an error
// naming the file and what is wrong, never its content: picking a new MAC
// would silently change the host's identity on the link, and with it the
// address it claims (the candidates are seeded from the MAC).
func loadMAC(path string, avoid acd.MAC) (m acd.MAC, found bool, err error) {
	b, err := readRegular(path, macFileLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	refuse := func(what string) (acd.MAC, bool, error) {
		return acd.MAC{}, true, fmt.Errorf("MAC file %s: autoipd does not pick a new MAC by itself, as that changes the host's identity "+
			"and address: fix or remove the file, or give -mac", what)
	}
	if err != nil {
		return refuse(err.Error())
	}
	m, err = acd.ParseMAC(strings.TrimSpace(string(b)))
	switch {
	case err != nil:
		return refuse(path + " is not a MAC address (want one line like 02:00:5e:12:34:56)")
	case !m.IsUnicast():
		return refuse(path + " holds a MAC that is not a unicast MAC")
	case !avoid.IsZero() && m == avoid:
		return refuse(path + " holds the kernel TAP's own MAC; the netstack needs one of its own")
	}
	return m, true, nil
}

// newMAC generates a MAC other than avoid (the kernel TAP's).
func newMAC(avoid acd.MAC) (acd.MAC, error) {
	for {
		m, err := generateMAC()
		if err != nil || avoid.IsZero() || m != avoid {
			return m, err
		}
	}
}

// storeMAC keeps m in path (atomically, 0600).
func storeMAC(path string, m acd.MAC) error {
	if err := persist.WriteFileAtomic(path, []byte(m.String()+"\n")); err != nil {
		return fmt.Errorf("store MAC in %s: %w", path, err)
	}
	return nil
}
