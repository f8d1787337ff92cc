package cell

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// RelayCmd is a relay message command.
type RelayCmd uint8

// Relay commands (spec/cells.md §3).
const (
	RelayData      RelayCmd = 1 // stream data
	RelayBegin     RelayCmd = 2 // open a stream: flags (1) | "host:port"
	RelayConnected RelayCmd = 3 // stream opened; empty
	RelayEnd       RelayCmd = 4 // stream closed: reason (1)
	RelaySendme    RelayCmd = 5 // window update; stream 0 = circuit level
	RelayExtend    RelayCmd = 6 // extend the circuit, see Extend
	RelayExtended  RelayCmd = 7 // relay handshake reply
	RelayDrop      RelayCmd = 8 // long-range padding; ignored

	// Relay protocol version 2 (spec/protover.md): sent only to a hop or
	// peer whose protocols list it.
	RelayBeginDir        RelayCmd = 9  // open a stream to the hop's directory: flags (1)
	RelayJoinEstablish   RelayCmd = 10 // wait at this hop for a joint: cookie (20)
	RelayJoinEstablished RelayCmd = 11 // the hop waits for JOIN; empty
	RelayJoin            RelayCmd = 12 // join the circuit waiting with cookie: cookie (20) | payload
	RelayJoined          RelayCmd = 13 // the circuit was joined: payload of JOIN
	RelayE2E             RelayCmd = 14 // end-to-end layer message crossing a joint
	// Sent only to a hop whose protocols list DHT=1.
	RelayBeginDHT RelayCmd = 15 // open a stream to the hop's DHT proxy: flags (1)
	// Introduction points (spec/circuits.md §9): sent only to a last hop
	// whose protocols list Intro=1, and by that hop.
	RelayEstablishIntro   RelayCmd = 16 // become an intro point: auth key (32) | rate (2) | burst (2) | signature (64)
	RelayIntroEstablished RelayCmd = 17 // the hop is an intro point for the key; empty
	RelayIntroduce1       RelayCmd = 18 // client to intro point: auth key (32) | encrypted part
	RelayIntroduce2       RelayCmd = 19 // intro point to service: the INTRODUCE1 body, unchanged
	RelayIntroduceAck     RelayCmd = 20 // intro point to client: status (1)
	// Sent only to a hop whose protocols list Compute=1.
	RelayBeginCompute RelayCmd = 21 // open a stream to the hop's executor: flags (1)

	// MaxRelayCmd is the highest relay command this implementation knows;
	// messages with higher commands parse, and receivers drop and count
	// them (spec/cells.md §4).
	MaxRelayCmd = RelayBeginCompute
)

// Known reports whether r is a command this implementation defines.
func (r RelayCmd) Known() bool { return r >= RelayData && r <= MaxRelayCmd }

func (r RelayCmd) String() string {
	names := [...]string{"?", "DATA", "BEGIN", "CONNECTED", "END", "SENDME", "EXTEND", "EXTENDED", "DROP",
		"BEGIN_DIR", "JOIN_ESTABLISH", "JOIN_ESTABLISHED", "JOIN", "JOINED", "E2E", "BEGIN_DHT",
		"ESTABLISH_INTRO", "INTRO_ESTABLISHED", "INTRODUCE1", "INTRODUCE2", "INTRODUCE_ACK", "BEGIN_COMPUTE"}
	if int(r) < len(names) && r != 0 {
		return names[r]
	}
	return fmt.Sprintf("RELAY(%d)", uint8(r))
}

var (
	// ErrRelayCommand means an unknown relay command.
	ErrRelayCommand = errors.New("cell: unknown relay command")
	// ErrRelayLength means a relay message length beyond MaxData.
	ErrRelayLength = errors.New("cell: relay message too long")
	errExtend      = errors.New("cell: malformed EXTEND")
	errBegin       = errors.New("cell: malformed BEGIN")
	errExtendAddr  = errors.New("cell: EXTEND address is not ip:port")
)

// RelayMsg is a decoded relay message header; Data aliases the cell.
type RelayMsg struct {
	Cmd    RelayCmd
	Stream uint16
	Data   []byte
}

// PutRelay writes a relay message into the message area of body. len(data)
// must be at most MaxData.
func PutRelay(body []byte, cmd RelayCmd, stream uint16, data []byte) error {
	if len(data) > MaxData {
		return ErrRelayLength
	}
	body[0] = byte(cmd)
	binary.BigEndian.PutUint16(body[1:], stream)
	binary.BigEndian.PutUint16(body[3:], uint16(len(data)))
	copy(body[RelayHeaderLen:], data)
	clear(body[RelayHeaderLen+len(data) : MessageLen])
	return nil
}

// ParseRelay decodes the relay message in the message area of a body.
func ParseRelay(body []byte) (RelayMsg, error) {
	if len(body) < MessageLen {
		return RelayMsg{}, ErrShort
	}
	m := RelayMsg{
		Cmd:    RelayCmd(body[0]),
		Stream: binary.BigEndian.Uint16(body[1:]),
	}
	if m.Cmd == 0 {
		return RelayMsg{}, fmt.Errorf("%w %d", ErrRelayCommand, body[0])
	}
	n := int(binary.BigEndian.Uint16(body[3:]))
	if n > MaxData {
		return RelayMsg{}, ErrRelayLength
	}
	m.Data = body[RelayHeaderLen : RelayHeaderLen+n]
	return m, nil
}

// Extend is the body of an EXTEND message:
//
//	| identity key (32) | link key (32) | addr length (1) | addr | handshake length (2) | handshake |
type Extend struct {
	Identity  [32]byte
	Link      [32]byte
	Addr      string // link address of the next hop: "ip:port" or "scheme://ip:port" (ParseExtendAddr)
	Handshake []byte
}

// ParseExtendAddr checks the link address of an EXTEND (spec/cells.md
// §3.4): an optional scheme ("tcp://"), then an IP literal and a port: an
// IPv4 address, or an IPv6 address in brackets without a zone, and a
// decimal port 1..65535 without leading zeros. Host names are refused: a
// relay extends to addresses, never resolves names for a client. It
// returns the scheme ("" when there is none) and the address, IPv4-mapped
// IPv6 addresses unmapped.
func ParseExtendAddr(a string) (scheme string, ap netip.AddrPort, err error) {
	hostport := stripScheme(a)
	if len(hostport) != len(a) {
		scheme = a[:len(a)-len(hostport)-len("://")]
	}
	host, port, bracketed, err := splitHostPort(hostport)
	if err != nil {
		return "", netip.AddrPort{}, errExtendAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || (!bracketed && !ip.Is4()) {
		return "", netip.AddrPort{}, errExtendAddr
	}
	return scheme, netip.AddrPortFrom(ip.Unmap(), port), nil
}

// Marshal encodes e.
func (e *Extend) Marshal() ([]byte, error) {
	if len(e.Addr) == 0 || len(e.Addr) > 255 {
		return nil, errExtend
	}
	if _, _, err := ParseExtendAddr(e.Addr); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+1+len(e.Addr)+2+len(e.Handshake))
	b = append(b, e.Identity[:]...)
	b = append(b, e.Link[:]...)
	b = append(b, byte(len(e.Addr)))
	b = append(b, e.Addr...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Handshake)))
	b = append(b, e.Handshake...)
	if len(b) > MaxData {
		return nil, errExtend
	}
	return b, nil
}

// ParseExtend decodes an EXTEND body; Handshake aliases b.
func ParseExtend(b []byte) (*Extend, error) {
	var e Extend
	if len(b) < 65 {
		return nil, errExtend
	}
	copy(e.Identity[:], b)
	copy(e.Link[:], b[32:])
	n := int(b[64])
	b = b[65:]
	if n == 0 || len(b) < n+2 {
		return nil, errExtend
	}
	e.Addr = string(b[:n])
	if _, _, err := ParseExtendAddr(e.Addr); err != nil {
		return nil, errExtend
	}
	b = b[n:]
	h := int(binary.BigEndian.Uint16(b))
	if len(b)-2 != h {
		return nil, errExtend
	}
	e.Handshake = b[2:]
	return &e, nil
}

// stripScheme removes an address scheme ("tcp://"): lowercase letters and
// digits starting with a letter, at most 16 bytes, then "://".
func stripScheme(a string) string {
	i := strings.Index(a, "://")
	if i < 1 || i > 16 || a[0] < 'a' || a[0] > 'z' {
		return a
	}
	for j := 1; j < i; j++ {
		if c := a[j]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return a
		}
	}
	return a[i+3:]
}

// BEGIN flags (spec/cells.md §3.2).
const (
	// BeginHalfClose says the opener treats END DONE as a half-close on
	// this stream (spec/streams.md §4); sent only to Relay=2 peers.
	BeginHalfClose byte = 0x01
)

// CookieLen is the size of a joint's cookie (JOIN_ESTABLISH, JOIN).
const CookieLen = 20

// Begin is the body of a BEGIN message: | flags (1) | "host:port" |. The host
// may be a DNS name, resolved by the exit, or an IP literal (IPv6 in
// brackets).
type Begin struct {
	Flags  byte
	Target string
}

// Marshal encodes b.
func (b *Begin) Marshal() ([]byte, error) {
	if _, err := SplitTarget(b.Target); err != nil {
		return nil, err
	}
	return append([]byte{b.Flags}, b.Target...), nil
}

// ParseBegin decodes and checks a BEGIN body.
func ParseBegin(p []byte) (*Begin, error) {
	if len(p) < 2 {
		return nil, errBegin
	}
	b := &Begin{Flags: p[0], Target: string(p[1:])}
	if _, err := SplitTarget(b.Target); err != nil {
		return nil, err
	}
	return b, nil
}

// Target is a parsed "host:port".
type Target struct {
	Host string
	Port uint16
}

// SplitTarget checks a "host:port" target (spec/cells.md §3.2): a host of
// 1..255 bytes without control characters, spaces or '%', and a port
// 1..65535. An IPv6 address must be in brackets, and brackets may only
// hold an IPv6 address ("[example.com]:80" is refused). Host is returned
// without brackets.
func SplitTarget(s string) (Target, error) {
	host, port, _, err := splitHostPort(s)
	if err != nil {
		return Target{}, err
	}
	return Target{Host: host, Port: port}, nil
}

// splitHostPort splits "host:port" under the rules SplitTarget documents;
// bracketed reports whether the host was in brackets (it is then an IPv6
// literal).
func splitHostPort(s string) (host string, port uint16, bracketed bool, err error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil || host == "" || len(host) > 255 {
		return "", 0, false, errBegin
	}
	for i := 0; i < len(host); i++ {
		// No control characters, spaces or IPv6 zones ("%eth0").
		if host[i] <= ' ' || host[i] == 0x7f || host[i] == '%' {
			return "", 0, false, errBegin
		}
	}
	// net.SplitHostPort takes the brackets off whatever they hold, and
	// refuses colons outside them: so a host with a colon came in
	// brackets, and a bracketed one must be an IPv6 literal.
	bracketed = s[0] == '['
	if bracketed {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return "", 0, false, errBegin
		}
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 || ps[0] == '0' {
		return "", 0, false, errBegin
	}
	return host, uint16(p), bracketed, nil
}
