package pcapfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestLayout: the file header and records are laid out as libpcap's
// format says, with the timestamp fraction in the chosen resolution.
func TestLayout(t *testing.T) {
	at := time.Date(2000, 1, 1, 0, 0, 1, 123456789, time.UTC)
	frame := []byte{1, 2, 3, 4, 5}
	for _, c := range []struct {
		res   Resolution
		magic uint32
		frac  uint32
	}{{Microsecond, 0xa1b2c3d4, 123456}, {Nanosecond, 0xa1b23c4d, 123456789}} {
		var b bytes.Buffer
		w, err := NewWriter(&b, c.res)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(at, frame); err != nil {
			t.Fatal(err)
		}
		want := le32(c.magic)
		want = append(want, 2, 0, 4, 0)         // version 2.4
		want = append(want, make([]byte, 8)...) // zone, accuracy
		want = append(want, le32(65535)...)
		want = append(want, le32(1)...) // Ethernet
		want = append(want, le32(uint32(at.Unix()))...)
		want = append(want, le32(c.frac)...)
		want = append(want, le32(5)...)
		want = append(want, le32(5)...)
		want = append(want, frame...)
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("resolution %d:\n got % x\nwant % x", c.res, b.Bytes(), want)
		}
		if !IsCapture(b.Bytes()) {
			t.Error("IsCapture(our file) = false")
		}
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// TestSnapLen: a frame longer than SnapLen is cut, with its original
// length recorded.
func TestSnapLen(t *testing.T) {
	var b bytes.Buffer
	w, _ := NewWriter(&b, Nanosecond)
	if err := w.WritePacket(time.Unix(0, 0), make([]byte, SnapLen+10)); err != nil {
		t.Fatal(err)
	}
	if got := b.Len(); got != HeaderLen+RecordHeaderLen+SnapLen {
		t.Errorf("file is %d bytes, want %d", got, HeaderLen+RecordHeaderLen+SnapLen)
	}
}

func TestIsCapture(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1}, true},
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4}, true},
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1}, true},
		{[]byte("root:x:0:0"), false},
		{[]byte{0xd4}, false},
	} {
		if got := IsCapture(c.b); got != c.want {
			t.Errorf("IsCapture(% x) = %v", c.b, got)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestErrors: write errors are returned, saying what was being written.
func TestErrors(t *testing.T) {
	if _, err := NewWriter(failWriter{}, Microsecond); err == nil || err.Error() != "pcap file header: disk full" {
		t.Errorf("NewWriter: %v", err)
	}
}
