package nat

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
)

// STUN constants (RFC 5389, RFC 5780).
const (
	stunHeaderSize  = 20
	stunMagicCookie = 0x2112A442

	// CHANGE-REQUEST flags (RFC 5780 §7.2).
	changeIPFlag   = 0x04
	changePortFlag = 0x02
)

// IsSTUN reports whether b looks like a STUN message: the first two bits
// are zero and bytes 4..8 hold the magic cookie (RFC 5389 §6). It is the
// test a demultiplexer sharing one UDP socket between STUN and other
// protocols (QUIC, punch packets) uses; a true result does not mean the
// message is well formed.
func IsSTUN(b []byte) bool {
	return len(b) >= stunHeaderSize && b[0]&0xC0 == 0 &&
		binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie
}

// isResponse reports whether a STUN message (IsSTUN) is a response: the
// class bit C1 (0x0100 of the message type) is set (RFC 5389 §6).
func isResponse(b []byte) bool { return b[0]&0x01 != 0 }

// changeRequest is the CHANGE-REQUEST attribute, which pion/stun names but
// does not encode.
type changeRequest struct{ ip, port bool }

// AddTo adds the attribute to m.
func (c changeRequest) AddTo(m *stun.Message) error {
	var v [4]byte
	if c.ip {
		v[3] |= changeIPFlag
	}
	if c.port {
		v[3] |= changePortFlag
	}
	m.Add(stun.AttrChangeRequest, v[:])
	return nil
}

// getChangeRequest reads CHANGE-REQUEST from m; ok is false when it is
// absent or malformed.
func getChangeRequest(m *stun.Message) (c changeRequest, present, ok bool) {
	v, err := m.Get(stun.AttrChangeRequest)
	if err != nil {
		return c, false, true
	}
	if len(v) != 4 {
		return c, true, false
	}
	return changeRequest{ip: v[3]&changeIPFlag != 0, port: v[3]&changePortFlag != 0}, true, true
}

// padding is the PADDING attribute (RFC 5780 §7.6): a client adds it so
// the server's answer, bounded by a multiple of the request size, can
// carry every attribute.
type padding int

// AddTo adds n zero bytes of PADDING to m.
func (p padding) AddTo(m *stun.Message) error {
	m.Add(stun.AttrPadding, make([]byte, int(p)))
	return nil
}

// AddrPortOf converts a net.Addr of a UDP socket into a netip.AddrPort
// with an unmapped address; ok is false for other addresses.
func AddrPortOf(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case nil:
		return ap, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ap, ap.IsValid()
}

// udpAddr converts back for WriteTo.
func udpAddr(ap netip.AddrPort) *net.UDPAddr { return net.UDPAddrFromAddrPort(ap) }

// decodeSTUN parses b into a message, strictly: the header length must
// match the datagram.
func decodeSTUN(b []byte) (*stun.Message, bool) {
	if !IsSTUN(b) {
		return nil, false
	}
	m := new(stun.Message)
	m.Raw = append(m.Raw[:0], b...)
	if err := m.Decode(); err != nil {
		return nil, false
	}
	if int(m.Length)+stunHeaderSize != len(b) {
		return nil, false
	}
	return m, true
}

// ipAttrSize is the size of a (XOR-)MAPPED-ADDRESS-style attribute with
// its header for ip.
func ipAttrSize(ip netip.Addr) int {
	if ip.Is4() {
		return 4 + 8
	}
	return 4 + 20
}
