package acd

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// MAC is a 48-bit Ethernet hardware address. It is comparable, so it can be
// used as a map key and compared with ==.
type MAC [6]byte

// BroadcastMAC is the Ethernet broadcast address ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether the group bit of m is set (this includes
// broadcast).
func (m MAC) IsMulticast() bool { return m[0]&0x01 != 0 }

// IsUnicast reports whether m could be the address of a real interface: not
// zero and not a group address.
func (m MAC) IsUnicast() bool { return !m.IsZero() && !m.IsMulticast() }

// String formats m as six colon-separated lower-case hex bytes.
func (m MAC) String() string {
	var b [17]byte
	const hexDigits = "0123456789abcdef"
	for i, x := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		b[i*3] = hexDigits[x>>4]
		b[i*3+1] = hexDigits[x&0x0f]
	}
	return string(b[:])
}

// ParseMAC parses six hex bytes separated by ':' or '-'.
func ParseMAC(s string) (MAC, error) {
	var m MAC
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 || len(s) != 17 || strings.Count(s, s[2:3]) != 5 {
		return m, fmt.Errorf("parse MAC %q: want six hex bytes like 02:00:00:00:00:01", s)
	}
	for i, p := range parts {
		if len(p) != 2 {
			return m, fmt.Errorf("parse MAC %q: byte %d is %q, want two hex digits", s, i+1, p)
		}
		if _, err := hex.Decode(m[i:i+1], []byte(p)); err != nil {
			return m, fmt.Errorf("parse MAC %q: byte %d is %q, want two hex digits", s, i+1, p)
		}
	}
	return m, nil
}
