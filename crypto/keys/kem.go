package keys

import (
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
)

// ML-KEM-768 sizes (FIPS 203).
const (
	KEMPublicKeySize  = mlkem768.PublicKeySize         // 1184
	KEMCiphertextSize = mlkem768.CiphertextSize        // 1088
	KEMSharedKeySize  = mlkem768.SharedKeySize         // 32
	KEMSeedSize       = mlkem768.KeySeedSize           // 64: d || z
	KEMEncapSeedSize  = mlkem768.EncapsulationSeedSize // 32: the message m
)

// KEMPublicKey is an ML-KEM-768 encapsulation key in its FIPS 203 encoding.
type KEMPublicKey [KEMPublicKeySize]byte

// KEMPrivateKey is an ML-KEM-768 decapsulation key derived from a 64-byte
// seed. Build one with GenerateKEM or KEMFromSeed.
type KEMPrivateKey struct {
	seed [KEMSeedSize]byte
	sk   *mlkem768.PrivateKey
	pub  KEMPublicKey
}

// GenerateKEM reads a 64-byte seed (d || z) from rand (nil means
// crypto/rand) and derives an ML-KEM-768 key pair from it.
func GenerateKEM(rand io.Reader) (*KEMPrivateKey, error) {
	var seed [KEMSeedSize]byte
	if err := readSeed(rand, seed[:], "KEM"); err != nil {
		return nil, err
	}
	return KEMFromSeed(seed), nil
}

// KEMFromSeed derives the ML-KEM-768 key pair for a 64-byte seed (d || z),
// as circl's DeriveKeyPair does.
func KEMFromSeed(seed [KEMSeedSize]byte) *KEMPrivateKey {
	pk, sk := mlkem768.NewKeyFromSeed(seed[:])
	k := &KEMPrivateKey{seed: seed, sk: sk}
	pk.Pack(k.pub[:])
	return k
}

// Public returns the encapsulation key.
func (k *KEMPrivateKey) Public() *KEMPublicKey {
	p := k.pub
	return &p
}

// Seed returns the 64-byte seed the key was derived from.
func (k *KEMPrivateKey) Seed() [KEMSeedSize]byte { return k.seed }

// Decapsulate returns the shared key in ciphertext ct. ML-KEM decapsulation
// never fails for a ciphertext of the right length: a forged or corrupted
// one yields an unrelated (implicitly rejected) key, so the caller's key
// confirmation detects it.
func (k *KEMPrivateKey) Decapsulate(ct []byte) (ss [KEMSharedKeySize]byte, err error) {
	if len(ct) != KEMCiphertextSize {
		return ss, fmt.Errorf("keys: KEM ciphertext is %d bytes, want %d", len(ct), KEMCiphertextSize)
	}
	k.sk.DecapsulateTo(ss[:], ct)
	return ss, nil
}

// zeroKEM is an all-zero expanded key, for Erase.
var zeroKEM mlkem768.PrivateKey

// String hides the key material from fmt and loggers.
func (k *KEMPrivateKey) String() string { return "keys.KEMPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *KEMPrivateKey) GoString() string { return k.String() }

// Validate checks that p is a well-formed ML-KEM-768 encapsulation key (the
// FIPS 203 modulus check). Encapsulate fails for keys that do not pass it.
func (p *KEMPublicKey) Validate() error {
	_, err := p.unpack()
	return err
}

// Encapsulate reads a 32-byte seed from rand (nil means crypto/rand) and
// encapsulates a fresh shared key to p, as circl's
// EncapsulateDeterministically does.
func (p *KEMPublicKey) Encapsulate(rand io.Reader) (ct [KEMCiphertextSize]byte, ss [KEMSharedKeySize]byte, err error) {
	pk, err := p.unpack()
	if err != nil {
		return ct, ss, err
	}
	var seed [KEMEncapSeedSize]byte
	if rand == nil {
		rand = cryptoRand
	}
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return ct, ss, fmt.Errorf("keys: KEM encapsulate: reading %d-byte seed: %w", len(seed), err)
	}
	pk.EncapsulateTo(ct[:], ss[:], seed[:])
	return ct, ss, nil
}

func (p *KEMPublicKey) unpack() (*mlkem768.PublicKey, error) {
	var pk mlkem768.PublicKey
	if err := pk.Unpack(p[:]); err != nil {
		return nil, fmt.Errorf("keys: malformed ML-KEM-768 public key: %w", err)
	}
	return &pk, nil
}
