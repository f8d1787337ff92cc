package keys

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
)

var cryptoRand io.Reader = rand.Reader

// LinkPublicKey is an X25519 public key: the Noise static key of a node's
// links.
type LinkPublicKey [32]byte

// LinkPrivateKey is an X25519 private key used as the Noise static key of a
// node's links. Build one with GenerateLink or LinkFromBytes.
type LinkPrivateKey struct{ k *ecdh.PrivateKey }

// GenerateLink reads 32 bytes from rand (nil means crypto/rand) and uses
// them as an X25519 private key.
func GenerateLink(rand io.Reader) (*LinkPrivateKey, error) {
	var b [32]byte
	if err := readSeed(rand, b[:], "link"); err != nil {
		return nil, err
	}
	return LinkFromBytes(b), nil
}

// LinkFromBytes returns the link key with the 32-byte X25519 private key b.
func LinkFromBytes(b [32]byte) *LinkPrivateKey { return &LinkPrivateKey{k: newX25519(b)} }

// Public returns the X25519 public key.
func (k *LinkPrivateKey) Public() LinkPublicKey { return LinkPublicKey(k.k.PublicKey().Bytes()) }

// Bytes returns the 32-byte X25519 private key.
func (k *LinkPrivateKey) Bytes() [32]byte { return [32]byte(k.k.Bytes()) }

// ECDH returns the key as a crypto/ecdh private key.
func (k *LinkPrivateKey) ECDH() *ecdh.PrivateKey { return k.k }

// String hides the key material from fmt and loggers.
func (k *LinkPrivateKey) String() string { return "keys.LinkPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *LinkPrivateKey) GoString() string { return k.String() }

// ECDH returns p as a crypto/ecdh public key.
func (p LinkPublicKey) ECDH() (*ecdh.PublicKey, error) { return x25519Public(p, "link") }

// OnionPublicKey is an X25519 public key: a relay's circuit handshake key.
type OnionPublicKey [32]byte

// OnionPrivateKey is an X25519 private key used in the circuit handshake.
// Build one with GenerateOnion or OnionFromBytes.
type OnionPrivateKey struct {
	b [32]byte // the private key, kept so that Erase can zero it
	k *ecdh.PrivateKey
}

// GenerateOnion reads 32 bytes from rand (nil means crypto/rand) and uses
// them as an X25519 private key.
func GenerateOnion(rand io.Reader) (*OnionPrivateKey, error) {
	var b [32]byte
	if err := readSeed(rand, b[:], "onion"); err != nil {
		return nil, err
	}
	return OnionFromBytes(b), nil
}

// OnionFromBytes returns the onion key with the 32-byte X25519 private key b.
func OnionFromBytes(b [32]byte) *OnionPrivateKey { return &OnionPrivateKey{b: b, k: newX25519(b)} }

// Public returns the X25519 public key.
func (k *OnionPrivateKey) Public() OnionPublicKey { return OnionPublicKey(k.k.PublicKey().Bytes()) }

// Bytes returns the 32-byte X25519 private key.
func (k *OnionPrivateKey) Bytes() [32]byte { return k.b }

// ECDH returns the key as a crypto/ecdh private key.
func (k *OnionPrivateKey) ECDH() *ecdh.PrivateKey { return k.k }

// String hides the key material from fmt and loggers.
func (k *OnionPrivateKey) String() string { return "keys.OnionPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *OnionPrivateKey) GoString() string { return k.String() }

// ECDH returns p as a crypto/ecdh public key.
func (p OnionPublicKey) ECDH() (*ecdh.PublicKey, error) { return x25519Public(p, "onion") }

func newX25519(b [32]byte) *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		// Only a wrong length can fail, and b has the right one.
		panic("keys: X25519 private key: " + err.Error())
	}
	return k
}

func x25519Public(p [32]byte, role string) (*ecdh.PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(p[:])
	if err != nil {
		return nil, fmt.Errorf("keys: %s public key: %w", role, err)
	}
	return k, nil
}
