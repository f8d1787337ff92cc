package keys

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ClientAuthPublicKeyLength is the number of base32 characters of a printed
// client authorisation public key: 32 bytes, no padding.
const ClientAuthPublicKeyLength = 52

// ClientAuthPublicKey is the X25519 public key of a hidden-service client
// authorised to read a service's descriptor (spec/hidden-services.md §3.4).
// The service lists it; the client keeps the ClientAuthPrivateKey.
type ClientAuthPublicKey [32]byte

// ClientAuthPrivateKey is a hidden-service client's X25519 authorisation
// key. Build one with GenerateClientAuth or ClientAuthFromBytes.
type ClientAuthPrivateKey struct {
	b [32]byte // the private key, kept so that Erase can zero it
	k *ecdh.PrivateKey
}

// GenerateClientAuth reads 32 bytes from rand (nil means crypto/rand) and
// uses them as an X25519 private key.
func GenerateClientAuth(rand io.Reader) (*ClientAuthPrivateKey, error) {
	var b [32]byte
	if err := readSeed(rand, b[:], "client auth"); err != nil {
		return nil, err
	}
	return ClientAuthFromBytes(b), nil
}

// ClientAuthFromBytes returns the client authorisation key with the 32-byte
// X25519 private key b.
func ClientAuthFromBytes(b [32]byte) *ClientAuthPrivateKey {
	return &ClientAuthPrivateKey{b: b, k: newX25519(b)}
}

// Public returns the X25519 public key.
func (k *ClientAuthPrivateKey) Public() ClientAuthPublicKey {
	return ClientAuthPublicKey(k.k.PublicKey().Bytes())
}

// Bytes returns the 32-byte X25519 private key.
func (k *ClientAuthPrivateKey) Bytes() [32]byte { return k.b }

// ECDH returns the key as a crypto/ecdh private key.
func (k *ClientAuthPrivateKey) ECDH() *ecdh.PrivateKey { return k.k }

// Erase zeroes the private key k holds and drops its crypto/ecdh form (see
// OnionPrivateKey.Erase). k must not be used afterwards.
func (k *ClientAuthPrivateKey) Erase() {
	clear(k.b[:])
	k.k = nil
}

// String hides the key material from fmt and loggers.
func (k *ClientAuthPrivateKey) String() string { return "keys.ClientAuthPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *ClientAuthPrivateKey) GoString() string { return k.String() }

func (k *ClientAuthPrivateKey) keyFileBlock() (string, []byte) { return ClientAuthKeyType, k.b[:] }

// LoadClientAuthFile reads a client authorisation key file.
func LoadClientAuthFile(path string) (*ClientAuthPrivateKey, error) {
	seed, err := loadKeyFile(path, ClientAuthKeyType)
	if err != nil {
		return nil, err
	}
	return ClientAuthFromBytes([32]byte(seed)), nil
}

// ECDH returns p as a crypto/ecdh public key.
func (p ClientAuthPublicKey) ECDH() (*ecdh.PublicKey, error) { return x25519Public(p, "client auth") }

// String returns p as 52 lowercase base32 characters without padding.
func (p ClientAuthPublicKey) String() string {
	return strings.ToLower(addressEncoding.EncodeToString(p[:]))
}

// MarshalText implements encoding.TextMarshaler (String's form).
func (p ClientAuthPublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (ParseClientAuthPublicKey).
func (p *ClientAuthPublicKey) UnmarshalText(b []byte) error {
	v, err := ParseClientAuthPublicKey(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Errors returned by ParseClientAuthPublicKey, wrapped with details.
var (
	ErrClientAuthLength   = errors.New("keys: client auth public key has the wrong length")
	ErrClientAuthEncoding = errors.New("keys: client auth public key is not base32")
	ErrClientAuthKey      = errors.New("keys: client auth public key is a low-order X25519 point")
)

// ParseClientAuthPublicKey parses the 52 base32 characters String prints,
// in any letter case. It checks, in this order, the length
// (ErrClientAuthLength), the alphabet and that the unused low 4 bits of the
// last character are zero, so each key has one spelling
// (ErrClientAuthEncoding), and that the key is not one of the low-order
// points with which every shared secret is zero (ErrClientAuthKey). Error
// texts never quote s.
func ParseClientAuthPublicKey(s string) (ClientAuthPublicKey, error) {
	if len(s) != ClientAuthPublicKeyLength {
		return ClientAuthPublicKey{}, fmt.Errorf("%w: %d characters, want %d", ErrClientAuthLength, len(s), ClientAuthPublicKeyLength)
	}
	up := asciiUpper(s)
	var p ClientAuthPublicKey
	n, err := addressEncoding.Decode(p[:], up)
	if err != nil || n != len(p) {
		return ClientAuthPublicKey{}, ErrClientAuthEncoding
	}
	if addressEncoding.EncodeToString(p[:]) != string(up) {
		return ClientAuthPublicKey{}, fmt.Errorf("%w: non-zero padding bits in the last character", ErrClientAuthEncoding)
	}
	if lowOrderX25519(p) {
		return ClientAuthPublicKey{}, ErrClientAuthKey
	}
	return p, nil
}

// lowOrderProbe is a fixed X25519 key used to recognise low-order public
// keys: X25519 of any clamped scalar with a low-order point is all zero,
// which crypto/ecdh reports as an error.
var lowOrderProbe = newX25519([32]byte{1})

// lowOrderX25519 reports whether p is a low-order point (or equivalent to
// one), with which every X25519 shared secret is zero.
func lowOrderX25519(p [32]byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(p[:])
	if err != nil {
		return true
	}
	_, err = lowOrderProbe.ECDH(pub)
	return err != nil
}
