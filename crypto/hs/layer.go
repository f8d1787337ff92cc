package hs

import (
	"errors"

	"github.com/flynn/noise"
)

// LayerOverhead is the number of bytes Layer.Seal adds: a Poly1305 tag.
const LayerOverhead = 16

var errLayerOpen = errors.New("hs: end-to-end message failed authentication")

// Layer is one side's end-to-end layer of a joined circuit
// (spec/hidden-services.md §5): the two Noise transport CipherStates of the
// handshake, one per direction. Message i in a direction is sealed with
// ChaCha20-Poly1305 under that direction's key and nonce i, so a message
// that was modified, replayed, reordered or follows a dropped one does not
// open. It implements circuit.E2ELayer.
//
// Seal and Open may run concurrently with each other, but Seal calls must
// be serialised, and so must Open calls.
type Layer struct {
	send, recv *noise.CipherState
}

// Overhead returns LayerOverhead.
func (l *Layer) Overhead() int { return LayerOverhead }

// Seal appends the sealed form of pt (len(pt)+LayerOverhead bytes) to dst.
// After 2^64−1 messages, which no circuit reaches, it appends nothing, and
// the peer's Open fails.
func (l *Layer) Seal(dst, pt []byte) []byte {
	out, err := l.send.Encrypt(dst, nil, pt)
	if err != nil {
		return dst
	}
	return out
}

// Open appends the plaintext of the next message in order, ct, to dst. A
// failed Open does not advance the counter: the next genuine message still
// opens.
func (l *Layer) Open(dst, ct []byte) ([]byte, error) {
	if len(ct) < LayerOverhead {
		return nil, errLayerOpen
	}
	out, err := l.recv.Decrypt(dst, nil, ct)
	if err != nil {
		return nil, errLayerOpen
	}
	return out, nil
}
