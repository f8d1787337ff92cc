package dht

import (
	"encoding/binary"
	"fmt"
)

// Specification constants of the messages (spec/dht.md §3).
const (
	// Version is the first byte of every message.
	Version = 1
	// MaxMessageSize is the largest message.
	MaxMessageSize = 64 << 10
	// MaxContacts is the most contacts one message carries.
	MaxContacts = 64
	// MaxRecords is the most records one VALUE carries.
	MaxRecords = 32
	// maxAddrLen is the longest contact address.
	maxAddrLen = 255
	headerSize = 1 + 1 + 1 + 8
)

// Kind is a message type.
type Kind uint8

// Message kinds. Requests have odd numbers, answers the next even one.
const (
	KindPing      Kind = 1 // request: empty body
	KindPong      Kind = 2 // answer to PING: empty body
	KindFindNode  Kind = 3 // request: target (32)
	KindNodes     Kind = 4 // answer to FIND_NODE: contacts
	KindFindValue Kind = 5 // request: type (2), key (32)
	KindValue     Kind = 6 // answer to FIND_VALUE: records, then contacts
	KindStore     Kind = 7 // request: one record
	KindStored    Kind = 8 // answer to STORE: status (1)
)

// FlagServer in a message's flags says that its sender answers DHT
// requests, so a receiver may add it to its routing table.
const FlagServer = 0x01

// Message is one DHT request or answer.
//
//	1  version (1)
//	1  kind
//	1  flags (bit 0: FlagServer; other bits zero)
//	8  request ID (an answer echoes its request's)
//	.. body of the kind (spec/dht.md §3)
type Message struct {
	Kind     Kind
	Flags    uint8
	ID       uint64
	Target   Key       // FIND_NODE target, FIND_VALUE key
	Type     uint16    // FIND_VALUE record type
	Contacts []Contact // NODES, VALUE
	Records  []*Record // VALUE (0..MaxRecords), STORE (exactly 1)
	Status   Reason    // STORED
}

// Marshal encodes m, refusing what the layout cannot carry.
func (m *Message) Marshal() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, Version, byte(m.Kind), m.Flags)
	b = binary.BigEndian.AppendUint64(b, m.ID)
	var err error
	switch m.Kind {
	case KindPing, KindPong:
	case KindFindNode:
		b = append(b, m.Target[:]...)
	case KindFindValue:
		b = binary.BigEndian.AppendUint16(b, m.Type)
		b = append(b, m.Target[:]...)
	case KindNodes:
		b, err = appendContacts(b, m.Contacts)
	case KindValue:
		if len(m.Records) > MaxRecords {
			return nil, fmt.Errorf("dht: %d records exceed %d", len(m.Records), MaxRecords)
		}
		b = append(b, byte(len(m.Records)))
		for _, r := range m.Records {
			b = appendRecord(b, r)
		}
		b, err = appendContacts(b, m.Contacts)
	case KindStore:
		if len(m.Records) != 1 {
			return nil, fmt.Errorf("dht: STORE carries %d records, want 1", len(m.Records))
		}
		b = appendRecord(b, m.Records[0])
	case KindStored:
		b = append(b, byte(m.Status))
	default:
		return nil, fmt.Errorf("dht: unknown message kind %d", m.Kind)
	}
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("dht: message of %d bytes exceeds %d", len(b), MaxMessageSize)
	}
	return b, nil
}

func appendRecord(b []byte, r *Record) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(r.Size()))
	return r.AppendMarshal(b)
}

func appendContacts(b []byte, cs []Contact) ([]byte, error) {
	if len(cs) > MaxContacts {
		return nil, fmt.Errorf("dht: %d contacts exceed %d", len(cs), MaxContacts)
	}
	b = append(b, byte(len(cs)))
	for _, c := range cs {
		if len(c.Addr) > maxAddrLen {
			return nil, fmt.Errorf("dht: contact address of %d bytes", len(c.Addr))
		}
		b = append(b, c.ID[:]...)
		b = append(b, byte(len(c.Addr)))
		b = append(b, c.Addr...)
	}
	return b, nil
}

// ParseMessage decodes a message. Records inside are decoded structurally;
// the caller verifies them with Registry.Verify.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w message: %d bytes exceed %d", ErrMalformed, len(b), MaxMessageSize)
	}
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w message: %d bytes, want at least %d", ErrMalformed, len(b), headerSize)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w message: version %d", ErrMalformed, b[0])
	}
	m := &Message{Kind: Kind(b[1]), Flags: b[2], ID: binary.BigEndian.Uint64(b[3:])}
	if m.Flags&^FlagServer != 0 {
		return nil, fmt.Errorf("%w message: unknown flags %#x", ErrMalformed, m.Flags)
	}
	b = b[headerSize:]
	var err error
	switch m.Kind {
	case KindPing, KindPong:
	case KindFindNode:
		if len(b) < KeySize {
			return nil, fmt.Errorf("%w FIND_NODE: short target", ErrMalformed)
		}
		copy(m.Target[:], b)
		b = b[KeySize:]
	case KindFindValue:
		if len(b) < 2+KeySize {
			return nil, fmt.Errorf("%w FIND_VALUE: short key", ErrMalformed)
		}
		m.Type = binary.BigEndian.Uint16(b)
		copy(m.Target[:], b[2:])
		b = b[2+KeySize:]
	case KindNodes:
		m.Contacts, b, err = parseContacts(b)
	case KindValue:
		if len(b) < 1 || b[0] > MaxRecords {
			return nil, fmt.Errorf("%w VALUE: bad record count", ErrMalformed)
		}
		n := int(b[0])
		b = b[1:]
		m.Records = make([]*Record, 0, n)
		for range n {
			var r *Record
			if r, b, err = parseFramedRecord(b); err != nil {
				return nil, err
			}
			m.Records = append(m.Records, r)
		}
		m.Contacts, b, err = parseContacts(b)
	case KindStore:
		var r *Record
		r, b, err = parseFramedRecord(b)
		m.Records = []*Record{r}
	case KindStored:
		if len(b) < 1 || Reason(b[0]) >= numReasons {
			return nil, fmt.Errorf("%w STORED: bad status", ErrMalformed)
		}
		m.Status = Reason(b[0])
		b = b[1:]
	default:
		return nil, fmt.Errorf("%w message: unknown kind %d", ErrMalformed, m.Kind)
	}
	if err != nil {
		return nil, err
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w message: %d trailing bytes", ErrMalformed, len(b))
	}
	return m, nil
}

func parseFramedRecord(b []byte) (*Record, []byte, error) {
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("%w record: missing length", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > len(b)-2 {
		return nil, nil, fmt.Errorf("%w record: length %d exceeds the message", ErrMalformed, n)
	}
	r, err := ParseRecord(b[2 : 2+n])
	if err != nil {
		return nil, nil, err
	}
	return r, b[2+n:], nil
}

func parseContacts(b []byte) ([]Contact, []byte, error) {
	if len(b) < 1 || b[0] > MaxContacts {
		return nil, nil, fmt.Errorf("%w contacts: bad count", ErrMalformed)
	}
	n := int(b[0])
	b = b[1:]
	cs := make([]Contact, 0, n)
	for range n {
		if len(b) < KeySize+1 {
			return nil, nil, fmt.Errorf("%w contact: truncated", ErrMalformed)
		}
		var c Contact
		copy(c.ID[:], b)
		l := int(b[KeySize])
		b = b[KeySize+1:]
		if len(b) < l {
			return nil, nil, fmt.Errorf("%w contact: truncated address", ErrMalformed)
		}
		c.Addr = string(b[:l])
		b = b[l:]
		cs = append(cs, c)
	}
	return cs, b, nil
}

var kindNames = [...]string{KindPing: "PING", KindPong: "PONG", KindFindNode: "FIND_NODE", KindNodes: "NODES",
	KindFindValue: "FIND_VALUE", KindValue: "VALUE", KindStore: "STORE", KindStored: "STORED"}

// name returns the spec name of k.
func (k Kind) name() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind %d", uint8(k))
}
