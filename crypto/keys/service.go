package keys

import (
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/edwards25519"
)

// .dark address constants (spec/keys.md, "Service addresses").
const (
	AddressVersion     = 1                 // the version byte of current addresses
	AddressSuffix      = ".dark"           // appended to the base32 label
	AddressLabelLength = 56                // base32 characters of pubkey(32)||checksum(2)||version(1)
	addressChecksumCtx = ".dark checksum"  // prefix of the SHA3-256 checksum input
	addressRawSize     = PublicKeySize + 3 // 35
)

// addressEncoding is RFC 4648 base32 without padding; addresses and client
// authorisation keys are printed in lowercase and parsed in either case.
var addressEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ServicePublicKey is a hidden service's Ed25519 public key; its .dark
// address is derived from it.
type ServicePublicKey [PublicKeySize]byte

// ServicePrivateKey is a hidden service's Ed25519 key, derived from a 32-byte
// seed. Build one with GenerateService or ServiceFromSeed.
type ServicePrivateKey struct {
	seed [SeedSize]byte
	priv ed25519.PrivateKey
	pub  ServicePublicKey
}

// GenerateService reads a 32-byte seed from rand (nil means crypto/rand) and
// derives a service key from it.
func GenerateService(rand io.Reader) (*ServicePrivateKey, error) {
	var seed [SeedSize]byte
	if err := readSeed(rand, seed[:], "service"); err != nil {
		return nil, err
	}
	return ServiceFromSeed(seed), nil
}

// ServiceFromSeed derives the service key for a 32-byte Ed25519 seed.
func ServiceFromSeed(seed [SeedSize]byte) *ServicePrivateKey {
	k := &ServicePrivateKey{seed: seed, priv: ed25519.NewKeyFromSeed(seed[:])}
	copy(k.pub[:], k.priv.Public().(ed25519.PublicKey))
	return k
}

// Public returns the service public key.
func (k *ServicePrivateKey) Public() ServicePublicKey { return k.pub }

// Seed returns the 32-byte seed the key was derived from.
func (k *ServicePrivateKey) Seed() [SeedSize]byte { return k.seed }

// Sign signs msg with Ed25519 (no prehash, no context).
func (k *ServicePrivateKey) Sign(msg []byte) [SignatureSize]byte {
	var sig [SignatureSize]byte
	copy(sig[:], ed25519.Sign(k.priv, msg))
	return sig
}

// String hides the key material from fmt and loggers.
func (k *ServicePrivateKey) String() string { return "keys.ServicePrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *ServicePrivateKey) GoString() string { return k.String() }

// Verify reports whether sig is a valid Ed25519 signature of msg by p.
func (p ServicePublicKey) Verify(msg []byte, sig []byte) bool {
	return verifyEd25519(p[:], msg, sig)
}

// Address returns the service's .dark address:
// lowercase base32(pubkey || checksum || version) + ".dark", where
// checksum = SHA3-256(".dark checksum" || pubkey || version)[:2].
func (p ServicePublicKey) Address() string {
	var raw [addressRawSize]byte
	copy(raw[:], p[:])
	sum := addressChecksum(p, AddressVersion)
	raw[PublicKeySize] = sum[0]
	raw[PublicKeySize+1] = sum[1]
	raw[PublicKeySize+2] = AddressVersion
	return strings.ToLower(addressEncoding.EncodeToString(raw[:])) + AddressSuffix
}

// String returns the .dark address.
func (p ServicePublicKey) String() string { return p.Address() }

// Errors returned by ParseAddress, wrapped with details.
var (
	ErrAddressLength   = errors.New("keys: .dark address has the wrong length")
	ErrAddressEncoding = errors.New("keys: .dark address is not base32")
	ErrAddressVersion  = errors.New("keys: unsupported .dark address version")
	ErrAddressChecksum = errors.New("keys: .dark address checksum mismatch (mistyped address?)")
	ErrAddressKey      = errors.New("keys: .dark address does not hold a valid Ed25519 public key")
)

// ParseAddress parses a .dark address, with or without the ".dark" suffix,
// in any letter case, and returns the service public key. It checks, in
// this order, the length (ErrAddressLength), the base32 alphabet
// (ErrAddressEncoding), the version byte (ErrAddressVersion), the checksum
// (ErrAddressChecksum) and the key (ErrAddressKey: a canonical encoding of
// an Ed25519 point of prime order). It does not accept subdomains. Error
// texts never quote s.
func ParseAddress(s string) (ServicePublicKey, error) {
	label := s
	if len(label) >= len(AddressSuffix) && strings.EqualFold(label[len(label)-len(AddressSuffix):], AddressSuffix) {
		label = label[:len(label)-len(AddressSuffix)]
	}
	if len(label) != AddressLabelLength {
		return ServicePublicKey{}, fmt.Errorf("%w: %d characters before %q, want %d", ErrAddressLength, len(label), AddressSuffix, AddressLabelLength)
	}
	var raw [addressRawSize]byte
	n, err := addressEncoding.Decode(raw[:], asciiUpper(label))
	if err != nil || n != addressRawSize {
		return ServicePublicKey{}, ErrAddressEncoding
	}
	var p ServicePublicKey
	copy(p[:], raw[:PublicKeySize])
	if v := raw[PublicKeySize+2]; v != AddressVersion {
		return ServicePublicKey{}, fmt.Errorf("%w %d (this software knows version %d)", ErrAddressVersion, v, AddressVersion)
	}
	sum := addressChecksum(p, AddressVersion)
	if raw[PublicKeySize] != sum[0] || raw[PublicKeySize+1] != sum[1] {
		return ServicePublicKey{}, ErrAddressChecksum
	}
	if !validServiceKey(p) {
		return ServicePublicKey{}, ErrAddressKey
	}
	return p, nil
}

// validServiceKey reports whether p is the canonical encoding of a point of
// prime order ℓ: on the curve, not of small order, and without a torsion
// component, as Tor requires of an onion address's key. Such a key has one
// address, and the key blinding of spec/keys.md is well defined for it.
func validServiceKey(p ServicePublicKey) bool {
	pt, err := new(edwards25519.Point).SetBytes(p[:])
	if err != nil || [PublicKeySize]byte(pt.Bytes()) != p {
		return false
	}
	// The identity and the other small-order points have [8]P = identity.
	id := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(pt).Equal(id) == 1 {
		return false
	}
	// P lies in the prime-order subgroup exactly when [ℓ]P is the identity.
	// Scalars are reduced mod ℓ, so compute [ℓ-1]P + P.
	lp := new(edwards25519.Point).ScalarMult(orderMinusOne, pt)
	return lp.Add(lp, pt).Equal(id) == 1
}

// orderMinusOne is the scalar ℓ-1 (that is, -1 mod ℓ).
var orderMinusOne = edwards25519.NewScalar().Subtract(edwards25519.NewScalar(), func() *edwards25519.Scalar {
	one := [32]byte{1}
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(one[:])
	return s
}())

func addressChecksum(p ServicePublicKey, version byte) [32]byte {
	h := sha3.New256()
	h.Write([]byte(addressChecksumCtx))
	h.Write(p[:])
	h.Write([]byte{version})
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// asciiUpper upper-cases ASCII letters only, so the length never changes.
func asciiUpper(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
}
