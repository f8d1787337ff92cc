// Package noiseconf holds darkmatter's Noise cipher suites: Curve25519 and
// BLAKE2s with ChaChaPoly ([Suite], which every node speaks) or AES-256-GCM
// ([SuiteAESGCM], for links between nodes with hardware AES; spec/links.md
// §3).
//
// flynn/noise's own DH25519 goes through x/crypto/curve25519 and crypto/ecdh,
// which derive the public key again on every DH (two scalar multiplications
// per DH). The DH here uses circl's X25519 (one multiplication, assembly on
// amd64) and makes Noise handshakes about twice as fast. The protocol name is
// unchanged ("25519"), so the wire format is standard Noise; a test checks it
// against flynn/noise's reference DH.
//
// This package does not run handshakes or frame messages (overlay/link and
// crypto/onionhs do).
package noiseconf
