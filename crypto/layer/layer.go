package layer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Specification constants (spec/circuits.md §4).
const (
	// TagSize is the size of one header slot and of a GCM tag.
	TagSize = 16
	// Slots is the number of header slots.
	Slots = 8
	// HeaderSize is the size of the header at the end of every cell body.
	HeaderSize = Slots * TagSize
	// MaxHops is the longest circuit the header can address: hop k's forced
	// filler occupies k slots and slot 1 and slot 0 are needed too.
	MaxHops = Slots - 2
	// Spare is the spare capacity, beyond len(body), that every body passed to
	// this package must have: GCM writes its tag there when a hop adds a
	// keystream-only layer.
	Spare = TagSize
	// KeySize is the size of each directional key.
	KeySize = 32
)

var (
	// ErrAuth means a layer failed authentication: the cell was modified,
	// replayed, reordered or dropped. The circuit must be destroyed.
	ErrAuth = errors.New("layer: cell authentication failed")
	// ErrUnrecognized means no hop of the circuit originated a backward cell.
	ErrUnrecognized = errors.New("layer: backward cell from no known hop")
	errBodySize     = errors.New("layer: bad body size")
	errTooManyHops  = errors.New("layer: too many hops")
)

// Keys are one hop's directional keys.
type Keys struct {
	Forward  [KeySize]byte // client → relay
	Backward [KeySize]byte // relay → client
}

// DeriveKeys expands the shared secret of a circuit handshake into the hop's
// layer keys with HKDF-SHA256 (info "darkmatter layer keys v1").
func DeriveKeys(secret []byte) (Keys, error) {
	out, err := hkdf.Key(sha256.New, secret, nil, "darkmatter layer keys v1", 2*KeySize)
	if err != nil {
		return Keys{}, fmt.Errorf("layer: derive keys: %w", err)
	}
	var k Keys
	copy(k.Forward[:], out[:KeySize])
	copy(k.Backward[:], out[KeySize:])
	return k, nil
}

// CheckBody reports whether b can be a cell body for this package.
func CheckBody(b []byte) error {
	if len(b) < HeaderSize+TagSize || len(b)%TagSize != 0 || cap(b)-len(b) < Spare {
		return errBodySize
	}
	return nil
}

// dir is one direction of one hop: an AES-256-GCM key and its counter.
type dir struct {
	block cipher.Block
	aead  cipher.AEAD
	ctr   uint64
	nonce [12]byte
	// cb and ks are scratch blocks for keystreamBlock (kept here so the
	// per-cell path does not allocate).
	cb, ks [TagSize]byte
}

func (d *dir) init(key *[KeySize]byte) error {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return err
	}
	d.block, d.aead = b, a
	return nil
}

// next returns the nonce for counter value d.ctr+off (big-endian in the last
// eight bytes).
func (d *dir) nonceAt(off uint64) []byte {
	binary.BigEndian.PutUint64(d.nonce[4:], d.ctr+off)
	return d.nonce[:]
}

// seal encrypts b[:n-16] in place and writes the tag to b[n-16:].
func (d *dir) seal(b []byte, off uint64) {
	n := len(b)
	d.aead.Seal(b[:0], d.nonceAt(off), b[:n-TagSize], nil)
}

// open authenticates and decrypts b in place (tag in the last 16 bytes).
func (d *dir) open(b []byte, off uint64) bool {
	_, err := d.aead.Open(b[:0], d.nonceAt(off), b, nil)
	return err == nil
}

// xor applies the GCM keystream for counter ctr+off to all of b. It needs
// Spare bytes of capacity beyond len(b), where GCM writes an unused tag.
func (d *dir) xor(b []byte, off uint64) {
	d.aead.Seal(b[:0], d.nonceAt(off), b, nil)
}

// keystreamBlock returns the 16 bytes of the GCM keystream that encrypt
// plaintext offset o (a multiple of 16) under counter ctr+off: with a 96-bit
// nonce GCM encrypts block j of the plaintext with AES_K(nonce || j+2)
// (NIST SP 800-38D §7.1). The result is valid until the next call.
func (d *dir) keystreamBlock(o int, off uint64) []byte {
	binary.BigEndian.PutUint64(d.cb[4:12], d.ctr+off)
	binary.BigEndian.PutUint32(d.cb[12:], uint32(o/TagSize+2))
	d.block.Encrypt(d.ks[:], d.cb[:])
	return d.ks[:]
}

// marker returns the originator marker of a backward cell of n bytes: the
// GCM keystream block just past the sealed plaintext (offset n-32), which
// that seal never uses. Only the originator and the client can compute it,
// so the hop next to the originator cannot tell that its neighbour
// originated the cell.
func (d *dir) marker(n int) []byte { return d.keystreamBlock(n-2*TagSize, 0) }

func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

func xorInto(dst, a, b []byte) {
	for i := range dst {
		dst[i] = a[i] ^ b[i]
	}
}

// slotOff returns the offset of header slot s in a body of n bytes.
func slotOff(n, s int) int { return n - TagSize*(s+1) }

// ForwardTag returns the tag a forward cell body carries for the hop about
// to process it (slot 0). Read it before Relay.Forward changes the body.
func ForwardTag(body []byte) (t [TagSize]byte) {
	copy(t[:], body[len(body)-TagSize:])
	return t
}

// BackwardTag returns the originator's tag of a backward body that
// Relay.Originate sealed or Client.Open opened (slot 1).
func BackwardTag(body []byte) (t [TagSize]byte) {
	n := len(body)
	copy(t[:], body[n-2*TagSize:n-TagSize])
	return t
}

// MessageSize returns how many message bytes a body of n bytes carries.
func MessageSize(n int) int { return n - HeaderSize }
