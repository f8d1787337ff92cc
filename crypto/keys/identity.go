package keys

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
)

// Sizes of the Ed25519 keys and signatures used for identities and services.
const (
	SeedSize      = ed25519.SeedSize      // 32: identity and service seeds, X25519 private keys
	PublicKeySize = ed25519.PublicKeySize // 32
	SignatureSize = ed25519.SignatureSize // 64
)

// IdentityPublicKey is a node's Ed25519 identity public key.
type IdentityPublicKey [PublicKeySize]byte

// IdentityPrivateKey is a node's Ed25519 identity key, derived from a 32-byte
// seed. Its zero value is not usable; build one with GenerateIdentity or
// IdentityFromSeed.
type IdentityPrivateKey struct {
	seed [SeedSize]byte
	priv ed25519.PrivateKey
	pub  IdentityPublicKey
}

// GenerateIdentity reads a 32-byte seed from rand (nil means crypto/rand)
// and derives an identity key from it.
func GenerateIdentity(rand io.Reader) (*IdentityPrivateKey, error) {
	var seed [SeedSize]byte
	if err := readSeed(rand, seed[:], "identity"); err != nil {
		return nil, err
	}
	return IdentityFromSeed(seed), nil
}

// IdentityFromSeed derives the identity key for a 32-byte Ed25519 seed.
func IdentityFromSeed(seed [SeedSize]byte) *IdentityPrivateKey {
	k := &IdentityPrivateKey{seed: seed, priv: ed25519.NewKeyFromSeed(seed[:])}
	copy(k.pub[:], k.priv.Public().(ed25519.PublicKey))
	return k
}

// Public returns the identity public key.
func (k *IdentityPrivateKey) Public() IdentityPublicKey { return k.pub }

// Seed returns the 32-byte seed the key was derived from.
func (k *IdentityPrivateKey) Seed() [SeedSize]byte { return k.seed }

// Sign signs msg with Ed25519 (RFC 8032, no prehash, no context). Callers
// put their own domain-separation string at the start of msg.
func (k *IdentityPrivateKey) Sign(msg []byte) [SignatureSize]byte {
	var sig [SignatureSize]byte
	copy(sig[:], ed25519.Sign(k.priv, msg))
	return sig
}

// String hides the key material from fmt and loggers.
func (k *IdentityPrivateKey) String() string { return "keys.IdentityPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *IdentityPrivateKey) GoString() string { return k.String() }

// Verify reports whether sig is a valid Ed25519 signature of msg by p. It
// returns false for a signature of the wrong length.
func (p IdentityPublicKey) Verify(msg []byte, sig []byte) bool {
	return verifyEd25519(p[:], msg, sig)
}

// NodeID returns SHA-256(p).
func (p IdentityPublicKey) NodeID() NodeID { return sha256.Sum256(p[:]) }

func verifyEd25519(pub, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
}

// readSeed fills seed from rand (crypto/rand when rand is nil).
func readSeed(rand io.Reader, seed []byte, role string) error {
	if rand == nil {
		rand = cryptoRand
	}
	if _, err := io.ReadFull(rand, seed); err != nil {
		return fmt.Errorf("keys: generate %s key: reading %d-byte seed: %w", role, len(seed), err)
	}
	return nil
}
