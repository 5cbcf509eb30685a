//go:build linux

package tap

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// noNotify makes new Links poll instead of subscribing to the kernel's
// link notifications (tests of the fallback set it).
var noNotify bool

// linkNotifier returns an rtnetlink socket in the calling thread's network
// namespace subscribed to RTMGRP_LINK (link created, changed, deleted), as
// a pollable *os.File: reading it blocks in Go's poller, so an idle Link
// costs no wake-ups. It only listens; nothing is sent on it.
func linkNotifier() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_NETLINK", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind RTMGRP_LINK", err)
	}
	return os.NewFile(uintptr(fd), "rtnetlink"), nil
}

// linkMessageConcerns reports whether the rtnetlink datagram b holds an
// RTM_NEWLINK or RTM_DELLINK for the interface called name or with index
// index (0: none). It allocates nothing.
func linkMessageConcerns(b []byte, name string, index int32) bool {
	for len(b) >= unix.SizeofNlMsghdr {
		mlen := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if mlen < unix.SizeofNlMsghdr || mlen > len(b) {
			return false
		}
		msg := b[unix.SizeofNlMsghdr:mlen]
		if (typ == unix.RTM_NEWLINK || typ == unix.RTM_DELLINK) && len(msg) >= unix.SizeofIfInfomsg {
			// struct ifinfomsg: family, pad, type (u16), index (s32), flags, change.
			if idx := int32(binary.NativeEndian.Uint32(msg[4:8])); index != 0 && idx == index {
				return true
			}
			if string(attr(msg[unix.SizeofIfInfomsg:], unix.IFLA_IFNAME)) == name {
				return true
			}
		}
		if a := nlAlign(mlen); a < len(b) {
			b = b[a:]
		} else {
			break
		}
	}
	return false
}

// attr returns the value of the string attribute typ of the rtattr list b
// (nil if absent), without its NUL.
func attr(b []byte, typ uint16) []byte {
	for len(b) >= unix.SizeofRtAttr {
		alen := int(binary.NativeEndian.Uint16(b[0:2]))
		if alen < unix.SizeofRtAttr || alen > len(b) {
			return nil
		}
		if binary.NativeEndian.Uint16(b[2:4])&^unix.NLA_F_NESTED == typ {
			v := b[unix.SizeofRtAttr:alen]
			for i, c := range v {
				if c == 0 {
					v = v[:i]
					break
				}
			}
			return v
		}
		if a := rtaAlign(alen); a < len(b) {
			b = b[a:]
		} else {
			break
		}
	}
	return nil
}

func nlAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}

func rtaAlign(n int) int {
	return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
}
