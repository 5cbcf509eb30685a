package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Op is the BOOTP operation code.
type Op uint8

// BOOTP operation codes.
const (
	OpRequest Op = 1 // client to server
	OpReply   Op = 2 // server to client
)

// MessageType is the DHCP message type (option 53, RFC 2132 §9.6).
type MessageType uint8

// DHCP message types.
const (
	Discover MessageType = 1
	Offer    MessageType = 2
	Request  MessageType = 3
	Decline  MessageType = 4
	Ack      MessageType = 5
	Nak      MessageType = 6
	Release  MessageType = 7
	Inform   MessageType = 8
)

// String returns the type's name as RFC 2131 writes it.
func (t MessageType) String() string {
	switch t {
	case Discover:
		return "DHCPDISCOVER"
	case Offer:
		return "DHCPOFFER"
	case Request:
		return "DHCPREQUEST"
	case Decline:
		return "DHCPDECLINE"
	case Ack:
		return "DHCPACK"
	case Nak:
		return "DHCPNAK"
	case Release:
		return "DHCPRELEASE"
	case Inform:
		return "DHCPINFORM"
	}
	return fmt.Sprintf("DHCP(%d)", uint8(t))
}

// Option codes this package reads or writes (RFC 2132, RFC 2563).
const (
	OptPad           = 0
	OptSubnetMask    = 1
	OptRouter        = 3
	OptDNS           = 6
	OptHostname      = 12
	OptDomainName    = 15
	OptBroadcast     = 28
	OptRequestedIP   = 50
	OptLeaseTime     = 51
	OptOverload      = 52
	OptMessageType   = 53
	OptServerID      = 54
	OptParamRequest  = 55
	OptMessage       = 56
	OptMaxSize       = 57
	OptRenewalTime   = 58
	OptRebindingTime = 59
	OptClientID      = 61
	OptAutoConfigure = 116
	OptEnd           = 255
)

// Sizes of the wire format (RFC 2131 §2).
const (
	headerLen  = 236 // op .. file
	cookieLen  = 4
	minLen     = headerLen + cookieLen
	minSendLen = 300 // BOOTP's minimum, which some servers and relays still expect
	// MaxLen is the largest message this package decodes: the 576-byte
	// IPv4 datagram every host must accept less IP and UDP headers is the
	// floor; servers may send more, up to what a 1500-byte MTU carries.
	MaxLen = 1500 - 20 - 8
)

var magicCookie = [4]byte{99, 130, 83, 99}

// Errors from Decode, matched with errors.Is.
var (
	ErrShort     = errors.New("dhcp: message shorter than the fixed header and magic cookie")
	ErrLong      = errors.New("dhcp: message longer than MaxLen")
	ErrNotBOOTP  = errors.New("dhcp: not an Ethernet BOOTP message")
	ErrNoCookie  = errors.New("dhcp: no DHCP magic cookie")
	ErrOptions   = errors.New("dhcp: malformed options")
	ErrNoMsgType = errors.New("dhcp: no valid message type option")
)

// Option is one option: its code and its (concatenated, RFC 3396) data.
type Option struct {
	Code byte
	Data []byte
}

// Message is a decoded DHCPv4 message. Options hold every option but pad,
// end and overload, each code once, in the order first seen.
type Message struct {
	Op      Op
	Hops    uint8
	XID     uint32
	Secs    uint16
	Flags   uint16 // FlagBroadcast
	CIAddr  netip.Addr
	YIAddr  netip.Addr
	SIAddr  netip.Addr
	GIAddr  netip.Addr
	CHAddr  [6]byte
	Type    MessageType
	Options []Option
}

// FlagBroadcast asks the server to broadcast its reply (RFC 2131 §4.1).
const FlagBroadcast = 0x8000

// Option returns the data of option code, if present.
func (m *Message) Option(code byte) ([]byte, bool) {
	for _, o := range m.Options {
		if o.Code == code {
			return o.Data, true
		}
	}
	return nil, false
}

// SetOption sets option code to data, replacing any earlier value.
func (m *Message) SetOption(code byte, data []byte) {
	for i := range m.Options {
		if m.Options[i].Code == code {
			m.Options[i].Data = data
			return
		}
	}
	m.Options = append(m.Options, Option{Code: code, Data: data})
}

// Addr4 returns option code as one IPv4 address.
func (m *Message) Addr4(code byte) (netip.Addr, bool) {
	b, ok := m.Option(code)
	if !ok || len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b)), true
}

// Addrs4 returns option code as a list of IPv4 addresses.
func (m *Message) Addrs4(code byte) []netip.Addr {
	b, ok := m.Option(code)
	if !ok || len(b) == 0 || len(b)%4 != 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(b)/4)
	for i := 0; i < len(b); i += 4 {
		out = append(out, netip.AddrFrom4([4]byte(b[i:i+4])))
	}
	return out
}

// Seconds returns option code as a 32-bit count of seconds (lease, T1,
// T2). 0xffffffff is infinity (RFC 2131 §3.3), returned as InfiniteLease.
func (m *Message) Seconds(code byte) (time.Duration, bool) {
	b, ok := m.Option(code)
	if !ok || len(b) != 4 {
		return 0, false
	}
	s := binary.BigEndian.Uint32(b)
	if s == 0xffffffff {
		return InfiniteLease, true
	}
	return time.Duration(s) * time.Second, true
}

// InfiniteLease is a lease that never expires.
const InfiniteLease = time.Duration(1<<63 - 1)

// Decode parses b, a UDP payload. It copies what it keeps: b may be reused.
func Decode(b []byte) (Message, error) {
	var m Message
	switch {
	case len(b) < minLen:
		return m, ErrShort
	case len(b) > MaxLen:
		return m, ErrLong
	case b[1] != 1 || b[2] != 6:
		return m, fmt.Errorf("%w: hardware type %d, length %d", ErrNotBOOTP, b[1], b[2])
	case [4]byte(b[headerLen:minLen]) != magicCookie:
		return m, ErrNoCookie
	}
	m.Op = Op(b[0])
	if m.Op != OpRequest && m.Op != OpReply {
		return m, fmt.Errorf("%w: op %d", ErrNotBOOTP, b[0])
	}
	m.Hops = b[3]
	m.XID = binary.BigEndian.Uint32(b[4:8])
	m.Secs = binary.BigEndian.Uint16(b[8:10])
	m.Flags = binary.BigEndian.Uint16(b[10:12])
	m.CIAddr = netip.AddrFrom4([4]byte(b[12:16]))
	m.YIAddr = netip.AddrFrom4([4]byte(b[16:20]))
	m.SIAddr = netip.AddrFrom4([4]byte(b[20:24]))
	m.GIAddr = netip.AddrFrom4([4]byte(b[24:28]))
	copy(m.CHAddr[:], b[28:34])
	overload, err := m.parseOptions(b[minLen:])
	if err != nil {
		return m, err
	}
	// Option overload (RFC 2132 §9.3): file, then sname, carry options.
	if overload&1 != 0 {
		if _, err := m.parseOptions(b[108:236]); err != nil {
			return m, fmt.Errorf("%w (in the file field)", err)
		}
	}
	if overload&2 != 0 {
		if _, err := m.parseOptions(b[44:108]); err != nil {
			return m, fmt.Errorf("%w (in the sname field)", err)
		}
	}
	t, ok := m.Option(OptMessageType)
	if !ok || len(t) != 1 || t[0] < byte(Discover) || t[0] > byte(Inform) {
		return m, ErrNoMsgType
	}
	m.Type = MessageType(t[0])
	return m, nil
}

// parseOptions appends the options in b to m (concatenating repeats, RFC
// 3396) and returns the overload option's value.
func (m *Message) parseOptions(b []byte) (overload byte, err error) {
	for i := 0; i < len(b); {
		code := b[i]
		switch code {
		case OptPad:
			i++
			continue
		case OptEnd:
			return overload, nil
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return 0, fmt.Errorf("%w: option %d runs past the end", ErrOptions, code)
		}
		data := b[i+2 : i+2+int(b[i+1])]
		i += 2 + len(data)
		if code == OptOverload {
			if len(data) != 1 || data[0] < 1 || data[0] > 3 {
				return 0, fmt.Errorf("%w: overload option %v", ErrOptions, data)
			}
			overload = data[0]
			continue
		}
		if old, ok := m.Option(code); ok {
			m.SetOption(code, append(append([]byte(nil), old...), data...))
		} else {
			m.Options = append(m.Options, Option{Code: code, Data: append([]byte(nil), data...)})
		}
	}
	return overload, nil
}

// Append appends m's wire form to b: the message type first, the options in
// order (long ones split, RFC 3396), end, and padding to 300 bytes.
func (m Message) Append(b []byte) []byte {
	start := len(b)
	b = append(b, byte(m.Op), 1, 6, m.Hops)
	b = binary.BigEndian.AppendUint32(b, m.XID)
	b = binary.BigEndian.AppendUint16(b, m.Secs)
	b = binary.BigEndian.AppendUint16(b, m.Flags)
	for _, a := range []netip.Addr{m.CIAddr, m.YIAddr, m.SIAddr, m.GIAddr} {
		b = append(b, as4(a)...)
	}
	b = append(b, m.CHAddr[:]...)
	b = append(b, make([]byte, 10+64+128)...) // chaddr padding, sname, file
	b = append(b, magicCookie[:]...)
	b = append(b, OptMessageType, 1, byte(m.Type))
	for _, o := range m.Options {
		if o.Code == OptMessageType || o.Code == OptPad || o.Code == OptEnd || o.Code == OptOverload {
			continue
		}
		d := o.Data
		for first := true; first || len(d) > 0; first = false {
			n := min(len(d), 255)
			b = append(b, o.Code, byte(n))
			b = append(b, d[:n]...)
			d = d[n:]
		}
	}
	b = append(b, OptEnd)
	for len(b)-start < minSendLen {
		b = append(b, 0)
	}
	return b
}

func as4(a netip.Addr) []byte {
	if !a.Is4() {
		return []byte{0, 0, 0, 0}
	}
	v := a.As4()
	return v[:]
}

// Uint32 encodes v for a 32-bit option.
func Uint32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
