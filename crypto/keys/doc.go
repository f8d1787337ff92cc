// Package keys defines one Go type per key role in darkmatter and the
// on-disk key file format. spec/keys.md is normative.
//
// Roles:
//
//	IdentityPrivateKey / IdentityPublicKey  Ed25519, a node's long-term identity;
//	                                        NodeID = SHA-256(identity public key)
//	LinkPrivateKey / LinkPublicKey          X25519, the Noise static key of links
//	OnionPrivateKey / OnionPublicKey        X25519, the circuit handshake key (rotated)
//	KEMPrivateKey / KEMPublicKey            ML-KEM-768, the post-quantum half of
//	                                        the hybrid circuit handshake
//	ServicePrivateKey / ServicePublicKey    Ed25519, a hidden service's identity;
//	                                        its public key is its .dark address
//
// Every private key is derived from a seed (32 bytes, or 64 for ML-KEM), and
// a key file holds exactly that seed in one PEM block whose type names the
// role, so a link key can never be loaded where an identity key is expected.
// Generation is sans-IO: every Generate* function reads its seed from the
// io.Reader it is given (nil means crypto/rand.Reader), so tests and vectors
// are deterministic.
//
// Key files:
//
//	-----BEGIN DARKMATTER IDENTITY KEY-----   32-byte Ed25519 seed
//	-----BEGIN DARKMATTER LINK KEY-----       32-byte X25519 private key
//	-----BEGIN DARKMATTER ONION KEY-----      32-byte X25519 private key
//	-----BEGIN DARKMATTER KEM KEY-----        64-byte ML-KEM-768 seed (d || z)
//	-----BEGIN DARKMATTER SERVICE KEY-----    32-byte Ed25519 seed
//
// WriteFile writes a key file atomically with mode 0600; the Load*File
// functions refuse files that are group- or world-accessible, that are not a
// single PEM block of the expected type and length, or that carry trailing
// data.
//
// This package does NOT implement any handshake, KDF or cipher (see the other
// crypto/ packages), does NOT blind service keys for descriptor storage
// (that belongs to the hidden-service layer), does NOT rotate onion keys or
// decide their lifetime (the relay does), and does NOT check that an Ed25519
// public key or .dark address is a valid curve point: signature verification
// fails for such keys instead. It wraps crypto/ed25519, crypto/ecdh,
// crypto/sha256, crypto/sha3 and circl's ML-KEM-768; it implements no
// primitive itself.
package keys
