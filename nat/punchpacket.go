package nat

import "fmt"

// Punch packet constants (spec/nat.md §5).
const (
	// PunchPacketSize is the size of every punch packet.
	PunchPacketSize = 1 + NonceSize + SenderIDSize
	// SenderIDSize is the size of the random per-call sender id.
	SenderIDSize = 8

	punchProbe = 0x0d // first byte of a probe
	punchAck   = 0x0e // first byte of an ack
)

// PunchPacket is a hole-punching probe or its acknowledgement.
//
// Binary layout (25 bytes):
//
//	1      type: 0x0d probe, 0x0e ack
//	16     session nonce (from the candidate exchange)
//	8      sender id (random per Punch call; a side ignores its own)
//
// The first byte lies in 4..15, a range that RFC 7983/9443 demultiplexing
// leaves to no other protocol: STUN starts with 0..3, QUIC with 64..255.
type PunchPacket struct {
	Ack    bool
	Nonce  [NonceSize]byte
	Sender [SenderIDSize]byte
}

// IsPunch reports whether b starts like a punch packet, for a
// demultiplexer.
func IsPunch(b []byte) bool {
	return len(b) == PunchPacketSize && (b[0] == punchProbe || b[0] == punchAck)
}

// AppendBinary appends the encoding of p to b.
func (p PunchPacket) AppendBinary(b []byte) ([]byte, error) {
	t := byte(punchProbe)
	if p.Ack {
		t = punchAck
	}
	b = append(b, t)
	b = append(b, p.Nonce[:]...)
	return append(b, p.Sender[:]...), nil
}

// MarshalBinary encodes p.
func (p PunchPacket) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// UnmarshalBinary decodes b, which must be exactly one punch packet.
func (p *PunchPacket) UnmarshalBinary(b []byte) error {
	if !IsPunch(b) {
		return fmt.Errorf("%w: not a punch packet", ErrMalformed)
	}
	p.Ack = b[0] == punchAck
	copy(p.Nonce[:], b[1:])
	copy(p.Sender[:], b[1+NonceSize:])
	return nil
}
