package acd_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/autoip-project/autoip/autoip/acd"
)

// TestFrame_MarshalPadsTo60 checks the Ethernet header, the ARP body and the
// zero padding of a marshalled frame.
func TestFrame_MarshalPadsTo60(t *testing.T) {
	f := acd.Frame{Dst: otherMAC, Src: bridgeMAC, Packet: pkt(acd.OpReply, selfMAC, candIP, otherMAC, otherIP)}
	b := wire(t, f)
	if len(b) != acd.MinFrameLen || acd.MinFrameLen != 60 {
		t.Fatalf("len = %d, want 60", len(b))
	}
	want := mustHex(t, "020000000002 02bbbbbbbbbb 0806 0001 0800 06 04 0002 020000000001 a9fe0a14 020000000002 a9fe212c")
	if !bytes.Equal(b[:42], want) {
		t.Errorf("frame = % x\nwant    % x", b[:42], want)
	}
	if !bytes.Equal(b[42:], make([]byte, 18)) {
		t.Errorf("padding = % x, want 18 zeros", b[42:])
	}

	// AppendBinary pads the frame itself, not the whole buffer.
	prefix := bytes.Repeat([]byte{0xaa}, 70)
	app := f.AppendBinary(append([]byte(nil), prefix...))
	if len(app) != 70+60 || !bytes.Equal(app[:70], prefix) || !bytes.Equal(app[70:], b) {
		t.Errorf("AppendBinary after a 70-byte prefix gave %d bytes: % x", len(app), app)
	}
}

// TestFrame_RoundTrip decodes marshalled frames, unpadded, padded and with
// trailing bytes, and gets them back.
func TestFrame_RoundTrip(t *testing.T) {
	frames := []acd.Frame{
		acd.BroadcastFrame(acd.Probe(selfMAC, candIP)),
		acd.BroadcastFrame(acd.Announcement(otherMAC, otherIP)),
		{Dst: selfMAC, Src: bridgeMAC, Packet: pkt(acd.OpReply, otherMAC, otherIP, selfMAC, candIP)},
		{Dst: acd.BroadcastMAC, Src: mcastMAC, Packet: pkt(acd.OpRequest, acd.MAC{}, thirdIP, acd.BroadcastMAC, zeroIP)},
	}
	for _, f := range frames {
		b := wire(t, f)
		for _, n := range []int{42, 60} {
			got, err := acd.DecodeFrame(b[:n])
			if err != nil {
				t.Fatalf("DecodeFrame(%d bytes of %+v): %v", n, f, err)
			}
			if got != f {
				t.Errorf("DecodeFrame(%d bytes) = %+v, want %+v", n, got, f)
			}
		}
		long := append(append([]byte(nil), b...), bytes.Repeat([]byte{0x5a}, 1454)...)
		if got, err := acd.DecodeFrame(long); err != nil || got != f {
			t.Errorf("DecodeFrame(1514-byte frame) = %+v, %v; want %+v", got, err, f)
		}
		if got, err := acd.DecodeFrame(b[:41]); !errors.Is(err, acd.ErrTruncated) {
			t.Errorf("DecodeFrame(41 bytes) = %+v, %v; want ErrTruncated", got, err)
		}
	}
}

// TestR14_BroadcastFrame checks that the frames this package sends are
// link-layer broadcast from the sender hardware address.
func TestR14_BroadcastFrame(t *testing.T) {
	for _, p := range []acd.Packet{acd.Probe(selfMAC, candIP), acd.Announcement(selfMAC, candIP), pkt(acd.OpReply, selfMAC, candIP, otherMAC, otherIP)} {
		f := acd.BroadcastFrame(p)
		if f.Dst != acd.BroadcastMAC || f.Src != selfMAC || f.Packet != p {
			t.Errorf("BroadcastFrame(%v) = %+v", p.Kind(), f)
		}
		b := wire(t, f)
		if !bytes.Equal(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
			t.Errorf("%v: destination on the wire = % x", p.Kind(), b[0:6])
		}
	}
}

func TestDecodeFrame_ZeroAllocs(t *testing.T) {
	good := wire(t, bcast(otherMAC, acd.Announcement(otherMAC, otherIP)))
	notARP := edit(good, func(b []byte) { b[13] = 0 })
	badHW := edit(good, func(b []byte) { b[15] = 6 })
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{{"valid", good, nil}, {"not ARP", notARP, acd.ErrNotARP}, {"bad hardware type", badHW, acd.ErrHardwareType}, {"truncated", good[:30], acd.ErrTruncated}} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(200, func() { _, err = acd.DecodeFrame(tc.b) })
			if allocs != 0 {
				t.Errorf("DecodeFrame: %v allocs per run, want 0", allocs)
			}
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("DecodeFrame error = %v, want %v", err, tc.err)
			}
		})
	}
}
