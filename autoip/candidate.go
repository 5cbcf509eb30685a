package autoip

import (
	"math/bits"
	"net/netip"

	"github.com/autoip-project/autoip/internal/splitmix"
)

// The usable link-local range (RFC 3927 §2.1).
var (
	FirstAddr = netip.AddrFrom4([4]byte{169, 254, 1, 0})
	LastAddr  = netip.AddrFrom4([4]byte{169, 254, 254, 255})
)

// LinkLocalPrefix is 169.254.0.0/16, the prefix claimed addresses carry.
var LinkLocalPrefix = netip.MustParsePrefix("169.254.0.0/16")

// NumCandidates is the number of usable link-local addresses.
const NumCandidates = 254 * 256

// InRange reports whether a is a usable link-local address:
// 169.254.1.0 through 169.254.254.255.
func InRange(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] == 169 && b[1] == 254 && b[2] >= 1 && b[2] <= 254
}

// Candidate returns the n-th pseudo-random candidate for seed. It is pure
// and total, uniform over the usable range, and never changes between
// releases; the package doc gives the formula.
func Candidate(seed, n uint64) netip.Addr {
	h := splitmix.Mix(splitmix.Mix(seed) + (n+1)*splitmix.Golden)
	v, _ := bits.Mul64(h, NumCandidates)
	return netip.AddrFrom4([4]byte{169, 254, byte(1 + v/256), byte(v % 256)})
}

// SeedFromMAC returns the default seed for a hardware address: the 64-bit
// FNV-1a hash of its six bytes.
func SeedFromMAC(mac [6]byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range mac {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}
