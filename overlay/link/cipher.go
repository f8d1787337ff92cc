package link

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math"
	"slices"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

var errNonce = errors.New("link: nonce space exhausted")

// transportCipher is one direction of a Noise transport: ChaChaPoly with
// the 64-bit counter nonce of the Noise spec (§5.1, §12.3: 4 zero bytes
// then the counter, little-endian) and empty associated data. It gives the
// same bytes as flynn/noise's CipherState but without its per-message
// allocation, and it encrypts and decrypts in place.
type transportCipher struct {
	aead  cipher.AEAD
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte
}

// newTransportCipher takes over the key and nonce of a CipherState that the
// handshake returned.
func newTransportCipher(cs *noise.CipherState) (*transportCipher, error) {
	k := cs.UnsafeKey()
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return nil, err
	}
	return &transportCipher{aead: aead, n: cs.Nonce()}, nil
}

func (c *transportCipher) next() ([]byte, error) {
	// Noise reserves the nonce 2^64-1.
	if c.n == math.MaxUint64 {
		return nil, errNonce
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	c.n++
	return c.nonce[:], nil
}

// seal encrypts b[off:] in place and appends the tag. It allocates only if
// b lacks TagLen bytes of spare capacity.
func (c *transportCipher) seal(b []byte, off int) ([]byte, error) {
	nonce, err := c.next()
	if err != nil {
		return nil, err
	}
	b = slices.Grow(b, TagLen)
	pt := b[off:]
	ct := c.aead.Seal(pt[:0], nonce, pt, nil)
	return b[:off+len(ct)], nil
}

// open decrypts and authenticates msg in place and returns the plaintext.
func (c *transportCipher) open(msg []byte) ([]byte, error) {
	nonce, err := c.next()
	if err != nil {
		return nil, err
	}
	return c.aead.Open(msg[:0], nonce, msg, nil)
}
