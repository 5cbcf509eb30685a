package daemon

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/autoip-project/autoip/autoip/acd"
	"github.com/autoip-project/autoip/internal/pcapfile"
)

// wireTap is a link endpoint between the Shim's Ethernet layer and the TAP
// endpoint, so that it sees every frame in both directions, the engine's
// injected probes and announcements included. It writes them to a pcap file
// (-pcap) and, at debug level (-v, debug), logs every ARP frame.
//
// It is used instead of gVisor's sniffer.NewWithWriter, which writes
// LINKTYPE_RAW (IP without link header: ARP frames are unreadable), strips
// the link header from netstack's outbound frames but not from inbound or
// injected ones (so the capture would mix framings), and panics when a write
// fails (a full disk would kill the daemon).
type wireTap struct {
	nested.Endpoint

	log   *slog.Logger // nil: no per-frame logging
	debug bool

	mu      sync.Mutex
	out     io.Writer        // where the capture goes (the daemon closes it)
	w       *pcapfile.Writer // nil: no capture
	failed  bool
	written atomic.Uint64
}

// newWireTap wraps lower. w, if not nil, receives a pcap stream (the header
// is written now); log, if not nil and enabled at debug level, gets one
// line per ARP frame.
func newWireTap(lower stack.LinkEndpoint, w io.Writer, log *slog.Logger) (*wireTap, error) {
	t := &wireTap{log: log, out: w}
	t.debug = log != nil && log.Enabled(context.Background(), slog.LevelDebug)
	if w != nil {
		pw, err := pcapfile.NewWriter(w, pcapfile.Microsecond)
		if err != nil {
			return nil, err
		}
		t.w = pw
	}
	t.Endpoint.Init(lower, t)
	return t, nil
}

// DeliverNetworkPacket implements stack.NetworkDispatcher (inbound).
func (t *wireTap) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	t.see("in", pkt)
	t.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements stack.LinkEndpoint (outbound).
func (t *wireTap) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		t.see("out", pkt)
	}
	return t.Endpoint.WritePackets(pkts)
}

// see records one frame. Below the Ethernet layer every packet buffer holds
// the whole frame.
func (t *wireTap) see(dir string, pkt *stack.PacketBuffer) {
	if t.w == nil && !t.debug {
		return
	}
	v := pkt.ToView()
	defer v.Release()
	frame := v.AsSlice()
	if t.debug {
		if f, err := acd.DecodeFrame(frame); err == nil {
			t.log.Debug("arp", "dir", dir, "kind", f.Packet.Kind().String(), "op", f.Packet.Op.String(),
				"sender_mac", f.Packet.SenderHW.String(), "sender_ip", f.Packet.SenderIP.String(),
				"target_ip", f.Packet.TargetIP.String(), "eth_dst", f.Dst.String())
		} else if err != acd.ErrNotARP {
			t.log.Debug("bad arp frame", "dir", dir, "len", len(frame), "err", err)
		}
	}
	if t.w != nil {
		t.capture(frame)
	}
}

func (t *wireTap) capture(frame []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed {
		return
	}
	if err := t.w.WritePacket(time.Now(), frame); err != nil {
		t.failed = true
		if t.log != nil {
			t.log.Error("pcap write failed; capture stopped", "err", err)
		}
		return
	}
	t.written.Add(1)
}

// captured returns how many frames were written to the pcap stream.
func (t *wireTap) captured() uint64 { return t.written.Load() }
