package segment

import (
	"net/netip"
	"slices"

	"github.com/autoip-project/autoip/autoip"
)

// filterIndex knows which endpoint ports a frame can concern: by MAC for
// unicast, by address for broadcast ARP to filtered ports.
type filterIndex struct {
	// ll lists, for each address 169.254.x.y (index x<<8|y), the filtered
	// ports concerned with it, in index order. Allocated with the first
	// filtered port's first concern.
	ll [][]int32
	// macs lists the ports plugged with each MAC, in index order.
	macs map[[6]byte][]int32
	// unfiltered lists the ports that receive every frame, in index order.
	unfiltered []int32
	filtered   int // number of filtered ports
}

func (x *filterIndex) init() { x.macs = make(map[[6]byte][]int32) }

// list adds port id under a and reports whether a can be listed (a usable
// link-local address).
func (x *filterIndex) list(a netip.Addr, id int32) bool {
	if !a.IsValid() || !autoip.InRange(a) {
		return false
	}
	if x.ll == nil {
		x.ll = make([][]int32, 1<<16)
	}
	k := llKey(a)
	l := x.ll[k]
	i, _ := slices.BinarySearch(l, id)
	x.ll[k] = slices.Insert(l, i, id)
	return true
}

func (x *filterIndex) unlist(a netip.Addr, id int32) {
	k := llKey(a)
	l := x.ll[k]
	if i, ok := slices.BinarySearch(l, id); ok {
		x.ll[k] = slices.Delete(l, i, i+1)
	}
}

func llKey(a netip.Addr) int {
	b := a.As4()
	return int(b[2])<<8 | int(b[3])
}

func (x *filterIndex) addMAC(mac [6]byte, id int32) {
	l := x.macs[mac]
	i, _ := slices.BinarySearch(l, id)
	x.macs[mac] = slices.Insert(l, i, id)
}

func (x *filterIndex) delMAC(mac [6]byte, id int32) {
	l := x.macs[mac]
	if i, ok := slices.BinarySearch(l, id); ok {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(x.macs, mac)
	} else {
		x.macs[mac] = l
	}
}

// holders returns the filtered ports concerned with a. all is true when
// the filter cannot tell (a is neither 0.0.0.0 nor a usable link-local
// address: subnet broadcasts, reserved or routable addresses), and the
// frame must go to everyone.
func (x *filterIndex) holders(a netip.Addr) (list []int32, all bool) {
	if a == zeroAddr {
		return nil, false
	}
	if autoip.InRange(a) {
		if x.ll == nil {
			return nil, false
		}
		return x.ll[llKey(a)], false
	}
	return nil, true
}

var zeroAddr = netip.AddrFrom4([4]byte{})

// mergeSorted appends the sorted union of a and b to dst.
func mergeSorted(dst, a, b []int32) []int32 {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			dst = append(dst, a[i])
			i++
		case i >= len(a) || b[j] < a[i]:
			dst = append(dst, b[j])
			j++
		default:
			dst = append(dst, a[i])
			i++
			j++
		}
	}
	return dst
}
