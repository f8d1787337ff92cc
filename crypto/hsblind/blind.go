package hsblind

import (
	"crypto/ed25519"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/binary"
	"errors"

	"filippo.io/edwards25519"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Blinding constants (spec/hidden-services.md §2).
const (
	blindContext  = "darkmatter blind v1\x00"       // starts the blinding-factor input
	blindLabel    = "key-blind"                     // precedes the period in it
	nonceContext  = "darkmatter blind v1 nonce\x00" // starts the blinded nonce-prefix input
	BlindedSize   = keys.PublicKeySize              // 32: a blinded public key
	SignatureSize = keys.SignatureSize              // 64: a blinded key's Ed25519 signature
)

// Errors returned by BlindPublic, wrapped with details.
var (
	ErrNotPoint   = errors.New("hsblind: service key is not an Ed25519 point")
	ErrNonCanon   = errors.New("hsblind: service key is not canonically encoded")
	ErrSmallOrder = errors.New("hsblind: service key has small order")
)

// BlindedPublicKey is a service's public key blinded for one network and
// period, A' = h·A. It is an ordinary Ed25519 public key.
type BlindedPublicKey [BlindedSize]byte

// BlindedPrivateKey is the expanded Ed25519 key (a', prefix') matching a
// BlindedPublicKey. It has no seed: it can only be derived with BlindPrivate.
type BlindedPrivateKey struct {
	s      edwards25519.Scalar // a' = h·a mod ℓ
	prefix [32]byte            // prefix', the nonce key
	pub    BlindedPublicKey
}

// blindingFactor returns the clamped factor h for pub, network and p:
//
//	h = SHA3-256("darkmatter blind v1\x00" ‖ network ‖ A ‖ B ‖ "key-blind" ‖
//	             INT_8(period number) ‖ INT_8(period length in minutes))
//	h[0] &= 248; h[31] &= 63; h[31] |= 64
//
// Everything after network has a fixed length, so the input is unambiguous.
func blindingFactor(pub *[32]byte, network string, p Period) [32]byte {
	d := sha3.New256()
	d.Write([]byte(blindContext))
	d.Write([]byte(network))
	d.Write(pub[:])
	d.Write(edwards25519.NewGeneratorPoint().Bytes())
	d.Write([]byte(blindLabel))
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], p.Number)
	binary.BigEndian.PutUint64(n[8:], lengthMinutes(p.Length))
	d.Write(n[:])
	var h [32]byte
	d.Sum(h[:0])
	h[0] &= 248
	h[31] &= 63
	h[31] |= 64
	return h
}

// BlindPublic returns the blinded key A' = h·A of pub for network and p. h
// is used as the full clamped integer, a multiple of 8, so A' lies in the
// prime-order subgroup whatever A is. It returns an error (ErrNotPoint,
// ErrNonCanon or ErrSmallOrder) when pub is not a canonically encoded curve
// point, or is one of small order, whose blinded key would be the identity.
func BlindPublic(pub keys.ServicePublicKey, network string, p Period) (BlindedPublicKey, error) {
	A, err := new(edwards25519.Point).SetBytes(pub[:])
	if err != nil {
		return BlindedPublicKey{}, ErrNotPoint
	}
	if [32]byte(A.Bytes()) != pub {
		return BlindedPublicKey{}, ErrNonCanon
	}
	A8 := new(edwards25519.Point).MultByCofactor(A)
	if A8.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return BlindedPublicKey{}, ErrSmallOrder
	}
	h := blindingFactor((*[32]byte)(&pub), network, p)
	// h·A = (h/8)·(8·A); h/8 < 2^252 < ℓ is a canonical scalar.
	k, err := new(edwards25519.Scalar).SetCanonicalBytes(shiftRight3(h))
	if err != nil { // unreachable: h/8 < 2^252
		return BlindedPublicKey{}, err
	}
	return BlindedPublicKey(new(edwards25519.Point).ScalarMult(k, A8).Bytes()), nil
}

// shiftRight3 divides the little-endian 256-bit integer x by 8.
func shiftRight3(x [32]byte) []byte {
	out := make([]byte, 32)
	for i := range 32 {
		out[i] = x[i] >> 3
		if i+1 < 32 {
			out[i] |= x[i+1] << 5
		}
	}
	return out
}

// BlindPrivate derives the blinded private key of priv for network and p:
//
//	a'      = h·a mod ℓ, where (a, prefix) = SHA-512(seed) as in RFC 8032
//	prefix' = SHA3-256("darkmatter blind v1 nonce\x00" ‖ prefix ‖ h)
//
// Its Public() equals BlindPublic(priv.Public(), network, p).
func BlindPrivate(priv *keys.ServicePrivateKey, network string, p Period) *BlindedPrivateKey {
	seed := priv.Seed()
	exp := sha512.Sum512(seed[:])
	a, _ := new(edwards25519.Scalar).SetBytesWithClamping(exp[:32]) // 32 bytes: no error
	pub := priv.Public()
	h := blindingFactor((*[32]byte)(&pub), network, p)
	hs, _ := new(edwards25519.Scalar).SetBytesWithClamping(h[:]) // h is already clamped; this reduces it mod ℓ
	k := &BlindedPrivateKey{}
	k.s.Multiply(hs, a)
	d := sha3.New256()
	d.Write([]byte(nonceContext))
	d.Write(exp[32:])
	d.Write(h[:])
	d.Sum(k.prefix[:0])
	k.pub = BlindedPublicKey(new(edwards25519.Point).ScalarBaseMult(&k.s).Bytes())
	return k
}

// Public returns the blinded public key A' = a'·B.
func (k *BlindedPrivateKey) Public() BlindedPublicKey { return k.pub }

// Sign returns the 64-byte Ed25519 signature R ‖ S of msg under the
// expanded key (a', prefix'), as RFC 8032 §5.1.6 signs with (s, prefix):
//
//	r = SHA-512(prefix' ‖ msg) mod ℓ;  R = r·B
//	k = SHA-512(R ‖ A' ‖ msg) mod ℓ;   S = r + k·a' mod ℓ
func (k *BlindedPrivateKey) Sign(msg []byte) []byte {
	var digest [sha512.Size]byte
	d := sha512.New()
	d.Write(k.prefix[:])
	d.Write(msg)
	d.Sum(digest[:0])
	r, _ := new(edwards25519.Scalar).SetUniformBytes(digest[:]) // 64 bytes: no error
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	d.Reset()
	d.Write(R)
	d.Write(k.pub[:])
	d.Write(msg)
	d.Sum(digest[:0])
	c, _ := new(edwards25519.Scalar).SetUniformBytes(digest[:])
	S := new(edwards25519.Scalar).MultiplyAdd(c, &k.s, r)
	sig := make([]byte, 0, SignatureSize)
	sig = append(sig, R...)
	return append(sig, S.Bytes()...)
}

// String hides the key material from fmt and loggers.
func (k *BlindedPrivateKey) String() string { return "hsblind.BlindedPrivateKey(redacted)" }

// GoString hides the key material from %#v.
func (k *BlindedPrivateKey) GoString() string { return k.String() }

// Verify reports whether sig is a valid Ed25519 signature of msg by b
// (crypto/ed25519.Verify; a wrong-length signature is invalid).
func (b BlindedPublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(b[:]), msg, sig)
}
