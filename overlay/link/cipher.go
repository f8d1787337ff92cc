package link

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

var errNonce = errors.New("link: nonce space exhausted")

// transportCipher is one direction of a Noise transport (spec/links.md
// §5): the suite's AEAD with the 64-bit counter nonce of the Noise spec
// (§5.1: 4 zero bytes, then the counter, little-endian for ChaChaPoly
// (§12.3), big-endian for AESGCM (§12.4)), empty associated data, and
// Noise's Rekey (§11.3). It gives the same bytes as flynn/noise's
// CipherState but without its per-message allocation, and it encrypts and
// decrypts in place.
type transportCipher struct {
	suite Suite
	aead  cipher.AEAD
	n     uint64
	nonce [12]byte
}

// newTransportCipher takes over the key k and next nonce n of a
// CipherState that the handshake returned.
func newTransportCipher(suite Suite, k [32]byte, n uint64) (*transportCipher, error) {
	c := &transportCipher{suite: suite, n: n}
	if err := c.setKey(k[:]); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *transportCipher) setKey(k []byte) error {
	var err error
	switch c.suite {
	case SuiteChaChaPoly:
		c.aead, err = chacha20poly1305.New(k)
	case SuiteAESGCM:
		var b cipher.Block
		if b, err = aes.NewCipher(k); err == nil {
			c.aead, err = cipher.NewGCM(b)
		}
	default:
		err = fmt.Errorf("link: no cipher for suite %v", c.suite)
	}
	return err
}

// putNonce writes the nonce for counter n in the suite's format.
func (c *transportCipher) putNonce(n uint64) []byte {
	if c.suite == SuiteAESGCM {
		binary.BigEndian.PutUint64(c.nonce[4:], n)
	} else {
		binary.LittleEndian.PutUint64(c.nonce[4:], n)
	}
	return c.nonce[:]
}

func (c *transportCipher) next() ([]byte, error) {
	// Noise reserves the nonce 2^64-1 (for Rekey).
	if c.n == math.MaxUint64 {
		return nil, errNonce
	}
	nonce := c.putNonce(c.n)
	c.n++
	return nonce, nil
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

// rekey replaces the key by Noise's REKEY(k): the first 32 bytes of
// ENCRYPT(k, 2^64-1, empty ad, 32 zero bytes). The nonce counter goes on
// (it is not reset). It allocates the new AEAD, once per rekey.
func (c *transportCipher) rekey() error {
	var buf [32 + TagLen]byte
	out := c.aead.Seal(buf[:0], c.putNonce(math.MaxUint64), buf[:32], nil)
	err := c.setKey(out[:32])
	clear(buf[:])
	return err
}
