// Package noiseconf holds darkmatter's Noise cipher suite: Curve25519 on
// crypto/ecdh, ChaChaPoly and BLAKE2s (spec/links.md §2).
//
// flynn/noise's own DH25519 goes through x/crypto/curve25519, which derives
// the public key again on every DH; the DH here calls crypto/ecdh directly
// and makes Noise handshakes about twice as fast. The protocol name is
// unchanged ("25519"), so the wire format is standard Noise.
//
// This package does not run handshakes or frame messages (overlay/link and
// crypto/onionhs do).
package noiseconf
