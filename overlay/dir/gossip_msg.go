package dir

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Gossip message types (spec/gossip.md §2): the first byte of a GOSSIP
// cell's payload.
const (
	MsgSummaryReq byte = 1 // ask for a SUMMARY
	MsgSummary    byte = 2 // relay count and one hash per bucket
	MsgIDsReq     byte = 3 // ask for the (NodeID, published) lists of buckets
	MsgIDs        byte = 4 // (NodeID, published) entries, in cells
	MsgWant       byte = 5 // NodeIDs whose descriptors the sender wants
	MsgDesc       byte = 6 // one descriptor of a WANT answer
	MsgDone       byte = 7 // end of a WANT answer, with a DIR_DONE status
	MsgBusy       byte = 8 // a request refused; ask later or elsewhere
)

// Specification constants of the gossip messages (spec/gossip.md).
const (
	// Buckets is the number of summary buckets: a relay is in bucket
	// NodeID[0].
	Buckets = 256
	// MaxGossipPayload is the most bytes one GOSSIP message holds: the
	// length-prefixed payload of one cell.
	MaxGossipPayload = cell.BodyLen - 2
	// IDEntrySize is one IDS entry: NodeID (32) and published (8).
	IDEntrySize = 32 + 8
	// MaxIDsPerMsg is the most entries in one IDS message.
	MaxIDsPerMsg = (MaxGossipPayload - 6) / IDEntrySize
	// MaxWantPerMsg is the most NodeIDs in one WANT message.
	MaxWantPerMsg = (MaxGossipPayload - 4) / 32
	// BucketHashContext starts the hashed bytes of every bucket.
	BucketHashContext = "darkmatter gossip bucket v1\x00"
	summarySize       = 1 + 4 + 8*Buckets
)

// Flag bits.
const (
	flagLast = 1 // IDS: the last cell of the answer to an IDS_REQ
	flagMore = 1 // WANT: more WANT cells of the same request follow
)

// SupportsGossip reports whether a peer whose HELLO lists protocols s
// speaks GOSSIP (Dir=3). Send GOSSIP cells, and call Sync, only then.
func SupportsGossip(s protover.Set) bool { return s.Supports(protover.Dir, 3) }

// IDEntry is one relay in an IDS message.
type IDEntry struct {
	ID        keys.NodeID
	Published int64 // unix seconds
}

// Msg is one decoded gossip message; Type says which fields are set.
type Msg struct {
	Type     byte
	Relays   uint32          // SUMMARY: fresh relays the sender holds
	Hashes   [Buckets]uint64 // SUMMARY: per bucket, 0 when empty
	Buckets  []byte          // IDS_REQ: strictly ascending
	Last     bool            // IDS
	Answered uint16          // IDS: requested buckets answered (with Last)
	IDs      []IDEntry       // IDS: NodeIDs strictly ascending
	More     bool            // WANT
	Want     []keys.NodeID   // WANT
	Desc     []byte          // DESC: a descriptor as Marshal writes it
	Status   byte            // DONE: DoneComplete, DoneCut, DoneRefused
	Refused  byte            // BUSY: the type of the request refused
}

var errGossip = errors.New("dir: malformed gossip message")

func gossipErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errGossip}, args...)...)
}

// Marshal encodes m. It does not check limits beyond what the layout
// needs; ParseMsg does.
func (m *Msg) Marshal() []byte {
	b := []byte{m.Type}
	switch m.Type {
	case MsgSummary:
		b = binary.BigEndian.AppendUint32(b, m.Relays)
		for _, h := range m.Hashes {
			b = binary.BigEndian.AppendUint64(b, h)
		}
	case MsgIDsReq:
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Buckets)))
		b = append(b, m.Buckets...)
	case MsgIDs:
		var f byte
		if m.Last {
			f = flagLast
		}
		b = append(b, f)
		b = binary.BigEndian.AppendUint16(b, m.Answered)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.IDs)))
		for _, e := range m.IDs {
			b = append(b, e.ID[:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(e.Published))
		}
	case MsgWant:
		var f byte
		if m.More {
			f = flagMore
		}
		b = append(b, f)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Want)))
		for _, id := range m.Want {
			b = append(b, id[:]...)
		}
	case MsgDesc:
		b = append(b, m.Desc...)
	case MsgDone:
		b = append(b, m.Status)
	case MsgBusy:
		b = append(b, m.Refused)
	}
	return b
}

// ParseMsg decodes one gossip message (a GOSSIP cell's payload). It checks
// the layout exactly: lengths, counts, order and flag bits; a DESC's
// descriptor is only bounded here (descriptor.Parse checks it).
func ParseMsg(b []byte) (*Msg, error) {
	if len(b) == 0 {
		return nil, gossipErr("empty")
	}
	if len(b) > MaxGossipPayload {
		return nil, gossipErr("%d bytes, at most %d", len(b), MaxGossipPayload)
	}
	m := &Msg{Type: b[0]}
	body := b[1:]
	switch m.Type {
	case MsgSummaryReq:
		if len(body) != 0 {
			return nil, gossipErr("SUMMARY_REQ with %d body bytes", len(body))
		}
	case MsgSummary:
		if len(b) != summarySize {
			return nil, gossipErr("SUMMARY of %d bytes, want %d", len(b), summarySize)
		}
		m.Relays = binary.BigEndian.Uint32(body)
		for i := range m.Hashes {
			m.Hashes[i] = binary.BigEndian.Uint64(body[4+8*i:])
		}
	case MsgIDsReq:
		if len(body) < 2 {
			return nil, gossipErr("IDS_REQ truncated")
		}
		n := int(binary.BigEndian.Uint16(body))
		if n < 1 || n > Buckets || len(body) != 2+n {
			return nil, gossipErr("IDS_REQ of %d buckets in %d bytes", n, len(body))
		}
		m.Buckets = bytes.Clone(body[2:])
		for i := 1; i < n; i++ {
			if m.Buckets[i] <= m.Buckets[i-1] {
				return nil, gossipErr("IDS_REQ buckets not strictly ascending")
			}
		}
	case MsgIDs:
		if len(body) < 5 {
			return nil, gossipErr("IDS truncated")
		}
		if body[0]&^flagLast != 0 {
			return nil, gossipErr("IDS flags %#x", body[0])
		}
		m.Last = body[0]&flagLast != 0
		m.Answered = binary.BigEndian.Uint16(body[1:])
		n := int(binary.BigEndian.Uint16(body[3:]))
		if n > MaxIDsPerMsg || len(body) != 5+n*IDEntrySize {
			return nil, gossipErr("IDS of %d entries in %d bytes", n, len(body))
		}
		if m.Answered > Buckets || (!m.Last && m.Answered != 0) {
			return nil, gossipErr("IDS answered %d", m.Answered)
		}
		m.IDs = make([]IDEntry, n)
		for i := range m.IDs {
			e := body[5+i*IDEntrySize:]
			copy(m.IDs[i].ID[:], e[:32])
			pub := binary.BigEndian.Uint64(e[32:])
			if pub < 1 || pub > descriptor.MaxUnixTime {
				return nil, gossipErr("IDS published %d out of range", pub)
			}
			m.IDs[i].Published = int64(pub)
			if i > 0 && bytes.Compare(m.IDs[i].ID[:], m.IDs[i-1].ID[:]) <= 0 {
				return nil, gossipErr("IDS entries not strictly ascending")
			}
		}
	case MsgWant:
		if len(body) < 3 {
			return nil, gossipErr("WANT truncated")
		}
		if body[0]&^flagMore != 0 {
			return nil, gossipErr("WANT flags %#x", body[0])
		}
		m.More = body[0]&flagMore != 0
		n := int(binary.BigEndian.Uint16(body[1:]))
		if n > MaxWantPerMsg || len(body) != 3+32*n {
			return nil, gossipErr("WANT of %d entries in %d bytes", n, len(body))
		}
		m.Want = make([]keys.NodeID, n)
		for i := range m.Want {
			copy(m.Want[i][:], body[3+32*i:])
		}
	case MsgDesc:
		if len(body) == 0 || len(body) > descriptor.MaxSize {
			return nil, gossipErr("DESC of %d bytes", len(body))
		}
		m.Desc = bytes.Clone(body)
	case MsgDone, MsgBusy:
		if len(body) != 1 {
			return nil, gossipErr("type %d with %d body bytes, want 1", m.Type, len(body))
		}
		m.Status, m.Refused = body[0], body[0]
		if m.Type == MsgDone {
			m.Refused = 0
		} else {
			m.Status = 0
		}
	default:
		return nil, gossipErr("unknown type %d", m.Type)
	}
	return m, nil
}

// appendDesc and appendDone build the messages of a WANT answer.
func appendDesc(b []byte, d *descriptor.Descriptor) []byte {
	return append(append(b, MsgDesc), d.Marshal()...)
}

func appendDone(b []byte, status byte) []byte { return append(b, MsgDone, status) }

// gossipCell returns a GOSSIP cell on circuit 0 holding payload, which
// fits by construction (at most MaxGossipPayload bytes).
func gossipCell(payload []byte) *cell.Cell {
	c := cell.New(0, cell.CmdGossip)
	c.SetPayload(payload)
	return c
}

// summaryOf returns the SUMMARY of entries: their count and one hash per
// bucket of the (NodeID, published) pairs in it, in NodeID order (spec/
// gossip.md §3). It sorts ids.
func summaryOf(ids []IDEntry) *Msg {
	m := &Msg{Type: MsgSummary, Relays: uint32(len(ids))}
	sortIDs(ids)
	var buf [IDEntrySize]byte
	for i := 0; i < len(ids); {
		j := i
		b := ids[i].ID[0]
		h := sha256.New()
		h.Write([]byte(BucketHashContext))
		for ; j < len(ids) && ids[j].ID[0] == b; j++ {
			copy(buf[:32], ids[j].ID[:])
			binary.BigEndian.PutUint64(buf[32:], uint64(ids[j].Published))
			h.Write(buf[:])
		}
		m.Hashes[b] = binary.BigEndian.Uint64(h.Sum(nil))
		i = j
	}
	return m
}

func sortIDs(ids []IDEntry) {
	slices.SortFunc(ids, func(a, b IDEntry) int { return bytes.Compare(a.ID[:], b.ID[:]) })
}
