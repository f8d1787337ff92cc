package noiseconf

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/flynn/noise"
)

// DH25519 is a noise.DHFunc for Curve25519 built on crypto/ecdh.
var DH25519 noise.DHFunc = dh25519{}

// Suite is Noise_*_25519_ChaChaPoly_BLAKE2s, the suite every node speaks.
var Suite = noise.NewCipherSuite(DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// SuiteAESGCM is Noise_*_25519_AESGCM_BLAKE2s: the same DH and hash with
// AES-256-GCM, which links use when both ends have hardware AES
// (spec/links.md §3). Its transport nonces are big-endian (Noise §12.3),
// ChaChaPoly's little-endian (§12.4).
var SuiteAESGCM = noise.NewCipherSuite(DH25519, noise.CipherAESGCM, noise.HashBLAKE2s)

type dh25519 struct{}

// GenerateKeypair reads the 32-byte private key from random, so tests with a
// deterministic reader get deterministic handshakes.
func (dh25519) GenerateKeypair(random io.Reader) (noise.DHKey, error) {
	if random == nil {
		random = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return noise.DHKey{}, err
	}
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: b[:], Public: k.PublicKey().Bytes()}, nil
}

// DH returns the X25519 shared secret and an error for low-order public keys
// (an all-zero result). It uses circl's X25519, which does one scalar
// multiplication; crypto/ecdh's NewPrivateKey would first derive the public
// key, doubling the cost of every DH.
func (dh25519) DH(privkey, pubkey []byte) ([]byte, error) {
	if len(privkey) != x25519.Size || len(pubkey) != x25519.Size {
		return nil, fmt.Errorf("noise: bad X25519 key length")
	}
	var sk, pk, shared x25519.Key
	copy(sk[:], privkey)
	copy(pk[:], pubkey)
	if !x25519.Shared(&shared, &sk, &pk) {
		return nil, errLowOrder
	}
	return shared[:], nil
}

var errLowOrder = errors.New("noise: low-order X25519 public key")

func (dh25519) DHLen() int     { return 32 }
func (dh25519) DHName() string { return "25519" }
