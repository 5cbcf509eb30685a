package interop

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// dhcpcd has no option to choose its first IPv4LL address: ipv4ll.c seeds
// glibc's random() (initstate with a 128-byte state, which is glibc's
// TYPE_3, the same generator as srandom) with the last four bytes of the
// hardware address, read as a host-order unsigned int, and draws candidates
// as 169.254.0.0 | (random() % 0xFD00 + 0x0100). So the address it tries
// first, and after each conflict the next one, follow from the MAC. The
// tests use this to make dhcpcd start on an address of their choosing: they
// give our daemon -s dhcpcd's first pick (and check on the wire that dhcpcd
// did probe it).

// glibcRandom reproduces glibc's random() after srandom(seed) (TYPE_3:
// r[i] = r[i-31] + r[i-3], the first 310 outputs discarded, each output
// shifted right by one).
type glibcRandom struct {
	r []int32
}

func newGlibcRandom(seed uint32) *glibcRandom {
	if seed == 0 {
		seed = 1
	}
	r := make([]int32, 34, 400)
	r[0] = int32(seed)
	for i := 1; i < 31; i++ {
		// r[i] = (16807 * r[i-1]) % 2147483647 without overflow, as glibc.
		word := int64(r[i-1])
		hi, lo := word/127773, word%127773
		word = 16807*lo - 2836*hi
		if word < 0 {
			word += 2147483647
		}
		r[i] = int32(word)
	}
	for i := 31; i < 34; i++ {
		r[i] = r[i-31]
	}
	g := &glibcRandom{r: r}
	for range 310 {
		g.next()
	}
	return g
}

func (g *glibcRandom) next() int32 {
	n := len(g.r)
	v := int32(uint32(g.r[n-31]) + uint32(g.r[n-3]))
	g.r = append(g.r, v)
	if len(g.r) > 300 {
		g.r = append(g.r[:0:0], g.r[len(g.r)-34:]...)
	}
	return int32(uint32(v) >> 1)
}

// dhcpcdPicks returns the first n IPv4LL addresses dhcpcd 9 tries on an
// interface with hardware address mac (little-endian hosts).
func dhcpcdPicks(mac net.HardwareAddr, n int) []netip.Addr {
	g := newGlibcRandom(binary.LittleEndian.Uint32(mac[len(mac)-4:]))
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		v := uint32(0xA9FE0000) | (uint32(g.next())%0xFD00 + 0x0100)
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v)
		a := netip.AddrFrom4(b)
		if len(out) > 0 && out[len(out)-1] == a {
			continue // dhcpcd never retries the address that just failed
		}
		out = append(out, a)
	}
	return out
}

func TestGlibcRandom(t *testing.T) {
	// The well-known first outputs of glibc's random() after srandom(1).
	g := newGlibcRandom(1)
	for i, want := range []int32{1804289383, 846930886, 1681692777, 1714636915, 1957747793} {
		if got := g.next(); got != want {
			t.Fatalf("output %d = %d, want %d", i, got, want)
		}
	}
}

func TestDhcpcdPicks(t *testing.T) {
	// Seen from dhcpcd 9.4.1 (Debian 12) on a veth with this MAC.
	mac, _ := net.ParseMAC("02:11:22:33:44:55")
	got := dhcpcdPicks(mac, 2)
	if want := netip.MustParseAddr("169.254.106.114"); got[0] != want {
		t.Errorf("first pick %v, want %v", got[0], want)
	}
	for _, a := range dhcpcdPicks(mac, 50) {
		if b := a.As4(); b[2] == 0 || b[2] == 255 || b[0] != 169 || b[1] != 254 {
			t.Errorf("pick %v outside 169.254.1.0-169.254.254.255", a)
		}
	}
}
