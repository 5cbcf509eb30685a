// Package pcapfile is the project's one pcap writer: the classic capture
// format of libpcap, tcpdump and Wireshark
// (https://wiki.wireshark.org/Development/LibpcapFileFormat), little-endian,
// link type Ethernet, with microsecond or nanosecond timestamps: the layout
// gopacket's pcapgo writer produces, without pcapgo, which would pull
// golang.org/x/net into the module.
//
// The daemon's -pcap capture uses it with real microsecond timestamps, the
// simulated segment with virtual nanosecond ones.
package pcapfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// Resolution is the timestamp resolution of a capture.
type Resolution uint8

// Resolutions.
const (
	Microsecond Resolution = iota
	Nanosecond
)

// File format constants.
const (
	MagicMicro       = 0xa1b2c3d4 // microsecond timestamps
	MagicNano        = 0xa1b23c4d // nanosecond timestamps
	LinkTypeEthernet = 1
	SnapLen          = 65535 // frames longer than this are cut
	HeaderLen        = 24    // file header
	RecordHeaderLen  = 16    // per-packet header
)

// Writer writes a capture. Every call writes with one Write call on the
// underlying writer. It is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	nano bool
	buf  []byte
}

// NewWriter writes the file header to w and returns a Writer for the
// packets.
func NewWriter(w io.Writer, res Resolution) (*Writer, error) {
	var h [HeaderLen]byte
	magic := uint32(MagicMicro)
	if res == Nanosecond {
		magic = MagicNano
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	// h[8:16]: time zone offset and timestamp accuracy, both zero (UTC).
	binary.LittleEndian.PutUint32(h[16:], SnapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeEthernet)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	return &Writer{w: w, nano: res == Nanosecond}, nil
}

// WritePacket writes frame captured at t, cut to SnapLen.
func (p *Writer) WritePacket(t time.Time, frame []byte) error {
	n := min(len(frame), SnapLen)
	frac := uint32(t.Nanosecond())
	if !p.nano {
		frac /= 1000
	}
	b := p.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Unix()))
	b = binary.LittleEndian.AppendUint32(b, frac)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = append(b, frame[:n]...)
	p.buf = b
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("pcap packet: %w", err)
	}
	return nil
}

// IsCapture reports whether b starts with a pcap magic number, in either
// byte order and either resolution.
func IsCapture(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	m := binary.LittleEndian.Uint32(b)
	for _, magic := range []uint32{MagicMicro, MagicNano} {
		if m == magic || m == bits.ReverseBytes32(magic) {
			return true
		}
	}
	return false
}
