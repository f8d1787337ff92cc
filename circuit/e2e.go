package circuit

import (
	"encoding/binary"
	"errors"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// E2ELayer protects the stream messages between the two clients of a joined
// circuit (spec/circuits.md §7): the relay at the joint sees only its
// output. Hidden services bring the real one; tests use their own. Seal is
// called in the order messages are sent and Open in the order they arrive,
// each from one goroutine at a time, so a layer can count nonces.
type E2ELayer interface {
	// Overhead is how many bytes Seal adds.
	Overhead() int
	// Seal appends the protected form of plaintext to dst.
	Seal(dst, plaintext []byte) []byte
	// Open appends the plaintext of ciphertext to dst, or fails if it was
	// modified, replayed, reordered or dropped.
	Open(dst, ciphertext []byte) ([]byte, error)
}

// EndToEnd is an E2ELayer as an edge uses it: inner relay messages
// (| command (1) | stream (2) | length (2) | data |) inside E2E messages.
type EndToEnd struct {
	l    E2ELayer
	sbuf []byte // sealing scratch, used under the circuit's send lock
	cbuf []byte // sealed output, likewise
	obuf []byte // opening scratch, used by the reader
}

var errE2E = errors.New("circuit: end-to-end message failed authentication")

func newEndToEnd(l E2ELayer) *EndToEnd {
	return &EndToEnd{l: l, sbuf: make([]byte, 0, cell.MessageLen), cbuf: make([]byte, 0, cell.MessageLen), obuf: make([]byte, 0, cell.MessageLen)}
}

// Overhead is the size an inner message adds to its data: its header and
// the layer's overhead.
func (x *EndToEnd) Overhead() int { return x.l.Overhead() }

// seal returns the E2E data carrying an inner message. The result aliases
// x's scratch buffer until the next call.
func (x *EndToEnd) seal(cmd cell.RelayCmd, stream uint16, data []byte) ([]byte, error) {
	if cell.RelayHeaderLen+len(data)+x.l.Overhead() > cell.MaxData {
		return nil, cell.ErrRelayLength
	}
	pt := x.sbuf[:cell.RelayHeaderLen]
	pt[0] = byte(cmd)
	binary.BigEndian.PutUint16(pt[1:], stream)
	binary.BigEndian.PutUint16(pt[3:], uint16(len(data)))
	pt = append(pt, data...)
	return x.l.Seal(x.cbuf[:0], pt), nil
}

// open authenticates E2E data ct (which aliases body's message area) and
// writes the inner message over body's message area.
func (x *EndToEnd) open(body, ct []byte) (cell.RelayMsg, error) {
	pt, err := x.l.Open(x.obuf[:0], ct)
	if err != nil {
		return cell.RelayMsg{}, errE2E
	}
	if len(pt) < cell.RelayHeaderLen || len(pt) > cell.MessageLen {
		return cell.RelayMsg{}, errProtocol
	}
	n := copy(body[:cell.MessageLen], pt)
	clear(body[n:cell.MessageLen])
	m, err := cell.ParseRelay(body)
	if err != nil || cell.RelayHeaderLen+len(m.Data) != len(pt) {
		return cell.RelayMsg{}, errProtocol
	}
	return m, nil
}
