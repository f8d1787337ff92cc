package relaylink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// Message types of the NAT link cell (spec/nat.md §8.2).
const (
	TypeReserve     = 1 // target to relay: reserve (or renew); empty
	TypeReservation = 2 // relay to target: status (1) | lifetime in seconds (4)
	TypeIncoming    = 3 // relay to target: token (16): connect back with ACCEPT
	TypePunch       = 4 // either end of a link: a nat coordination message
)

// Statuses of a RESERVATION message and of a splice answer (spec/nat.md
// §8.2, §8.3).
const (
	StatusOK            = 0 // reserved; or: spliced, the peer's bytes follow
	StatusNoReservation = 1 // the target holds no reservation here
	StatusResource      = 2 // a limit of the relay (spec/limits.md)
	StatusTimeout       = 3 // the target did not connect back in time
	StatusProtocol      = 4 // a malformed header, or another network
	StatusNoService     = 5 // the node relays no links
)

// TokenSize is the size of an INCOMING token.
const TokenSize = 16

// maxValue is the largest message value a cell body holds.
const maxValue = cell.BodyLen - 3

var (
	// ErrMalformed reports a message or header that does not parse.
	ErrMalformed = errors.New("relaylink: malformed")
	// ErrRefused reports a splice the relay refused; the error names its
	// status.
	ErrRefused = errors.New("relaylink: refused")
)

// Msg is one message of the NAT link cell command (cell.CmdNAT, circuit 0):
// type (1) | value length (2) | value, then zero padding.
type Msg struct {
	Type     byte
	Status   byte          // RESERVATION
	Lifetime time.Duration // RESERVATION, whole seconds
	Token    [TokenSize]byte
	Punch    []byte // PUNCH: a nat signal message (nat.ParseSignal)
}

// Marshal writes m into a cell body of cell.BodyLen bytes.
func (m *Msg) Marshal(body []byte) error {
	var v []byte
	switch m.Type {
	case TypeReserve:
	case TypeReservation:
		v = binary.BigEndian.AppendUint32([]byte{m.Status}, uint32(m.Lifetime/time.Second))
	case TypeIncoming:
		v = m.Token[:]
	case TypePunch:
		if len(m.Punch) == 0 || len(m.Punch) > maxValue {
			return fmt.Errorf("%w: punch message of %d bytes", ErrMalformed, len(m.Punch))
		}
		v = m.Punch
	default:
		return fmt.Errorf("%w: message type %d", ErrMalformed, m.Type)
	}
	if len(body) < 3+len(v) {
		return fmt.Errorf("%w: body too short", ErrMalformed)
	}
	clear(body)
	body[0] = m.Type
	binary.BigEndian.PutUint16(body[1:], uint16(len(v)))
	copy(body[3:], v)
	return nil
}

// Cell returns m as a NAT cell on circuit 0.
func (m *Msg) Cell() (*cell.Cell, error) {
	c := cell.New(0, cell.CmdNAT)
	if err := m.Marshal(c.Body()); err != nil {
		c.Free()
		return nil, err
	}
	return c, nil
}

// ParseMsg parses a NAT cell body. Unknown types are an error the caller
// ignores (a newer peer's message); Punch aliases body.
func ParseMsg(body []byte) (Msg, error) {
	if len(body) < 3 {
		return Msg{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(body))
	}
	m := Msg{Type: body[0]}
	n := int(binary.BigEndian.Uint16(body[1:]))
	if n > len(body)-3 {
		return Msg{}, fmt.Errorf("%w: value of %d bytes in a body of %d", ErrMalformed, n, len(body))
	}
	v := body[3 : 3+n]
	switch m.Type {
	case TypeReserve:
		if n != 0 {
			return Msg{}, fmt.Errorf("%w: RESERVE with a value", ErrMalformed)
		}
	case TypeReservation:
		if n != 5 {
			return Msg{}, fmt.Errorf("%w: RESERVATION of %d bytes", ErrMalformed, n)
		}
		m.Status = v[0]
		m.Lifetime = time.Duration(binary.BigEndian.Uint32(v[1:])) * time.Second
	case TypeIncoming:
		if n != TokenSize {
			return Msg{}, fmt.Errorf("%w: INCOMING of %d bytes", ErrMalformed, n)
		}
		copy(m.Token[:], v)
	case TypePunch:
		if n == 0 {
			return Msg{}, fmt.Errorf("%w: empty PUNCH", ErrMalformed)
		}
		m.Punch = v
	default:
		return Msg{}, fmt.Errorf("%w: message type %d", ErrMalformed, m.Type)
	}
	return m, nil
}

// Header kinds (spec/nat.md §8.3).
const (
	KindConnect = 1 // a peer asks for the target whose link key follows
	KindAccept  = 2 // the target answers an INCOMING with its token
)

// Magic opens a splice header; a link's preamble opens with "DMK".
var Magic = [3]byte{'D', 'M', 'R'}

// Version is the splice header version.
const Version = 1

// HeaderSize is the size of a splice header.
const HeaderSize = 3 + 1 + link.NetworkIDLen + 1 + 32

// Header is the first thing on a connection to a relay that splices:
// magic "DMR" (3) | version (1) | network ID (8) | kind (1) | 32 bytes:
// CONNECT: the target's static link key; ACCEPT: token (16) | 16 zero.
type Header struct {
	Network [link.NetworkIDLen]byte
	Kind    byte
	Target  keys.LinkPublicKey // CONNECT
	Token   [TokenSize]byte    // ACCEPT
}

// Marshal returns the header's HeaderSize bytes.
func (h *Header) Marshal() []byte {
	b := make([]byte, 0, HeaderSize)
	b = append(b, Magic[:]...)
	b = append(b, Version)
	b = append(b, h.Network[:]...)
	b = append(b, h.Kind)
	switch h.Kind {
	case KindConnect:
		b = append(b, h.Target[:]...)
	default:
		b = append(b, h.Token[:]...)
		b = append(b, make([]byte, 32-TokenSize)...)
	}
	return b
}

// ParseHeader parses a splice header of exactly HeaderSize bytes.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	switch {
	case len(b) != HeaderSize:
		return h, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(b))
	case [3]byte(b[:3]) != Magic:
		return h, fmt.Errorf("%w: magic", ErrMalformed)
	case b[3] != Version:
		return h, fmt.Errorf("%w: version %d", ErrMalformed, b[3])
	}
	copy(h.Network[:], b[4:])
	h.Kind = b[4+link.NetworkIDLen]
	rest := b[5+link.NetworkIDLen:]
	switch h.Kind {
	case KindConnect:
		copy(h.Target[:], rest)
	case KindAccept:
		copy(h.Token[:], rest)
		for _, x := range rest[TokenSize:] {
			if x != 0 {
				return Header{}, fmt.Errorf("%w: ACCEPT padding", ErrMalformed)
			}
		}
	default:
		return Header{}, fmt.Errorf("%w: kind %d", ErrMalformed, h.Kind)
	}
	return h, nil
}

// statusError returns the error for a non-OK splice status.
func statusError(s byte) error {
	var why string
	switch s {
	case StatusNoReservation:
		why = "the target holds no reservation at the relay"
	case StatusResource:
		why = "a resource limit of the relay"
	case StatusTimeout:
		why = "the target did not connect back in time"
	case StatusProtocol:
		why = "protocol error (another network?)"
	case StatusNoService:
		why = "the node relays no links"
	default:
		why = fmt.Sprintf("status %d", s)
	}
	return fmt.Errorf("%w: %s", ErrRefused, why)
}
