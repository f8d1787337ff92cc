// Package descriptor encodes, signs and parses relay descriptors, and the
// bootstrap strings users pass with --bootstrap. spec/descriptor.md is
// normative.
//
// A relay descriptor is a node's signed statement of its keys, addresses and
// exit policy. It binds the NodeID (SHA-256 of the Ed25519 identity key) to
// the X25519 link key (Noise static key), the X25519 onion key and its
// expiry, the ML-KEM-768 key of the hybrid circuit handshake, the link
// addresses, the exit policy, the advertised bandwidth, the network name and
// the publication time.
//
// Wire layout (all integers big-endian, times are unix seconds):
//
//	size   field
//	4      magic "DMRD"
//	1      version (1)
//	2      network name length n (1..64)
//	n      network name (UTF-8, no control characters)
//	32     identity public key (Ed25519)
//	32     link public key (X25519)
//	32     onion public key (X25519)
//	8      onion key expiry (int64, after the publication time)
//	1184   KEM public key (ML-KEM-768 encapsulation key)
//	1      address count k (0..8)
//	k ×    address: 2-byte length m (1..255), then m bytes "host:port"
//	2      exit policy length e (1..1024)
//	e      exit policy, canonical form of package circuit/exitpolicy
//	4      bandwidth, bytes per second (uint32)
//	8      publication time (int64, 1..253402300799)
//	64     Ed25519 signature by the identity key over
//	       SignatureContext || every preceding byte
//
// The whole descriptor is at most MaxSize (4000) bytes. Parse refuses
// anything that does not match this layout exactly: wrong magic or version,
// a field out of its limits, a malformed KEM key, a non-canonical or invalid
// exit policy, duplicate or malformed addresses, trailing bytes, or a bad
// signature. Every field is covered by the signature, so a successfully
// parsed descriptor marshals back to the same bytes.
//
// A bootstrap string is "ID@HOST:PORT" where ID is the lowercase, unpadded
// base32 of identity public key || link public key (103 characters): enough
// for a client to run the Noise handshake against the link key and then
// check the relay's identity.
//
// Protocol flow: a relay builds a Descriptor, calls Sign with its identity
// key and publishes Marshal(); receivers call Parse, then check the network
// name and freshness (CheckTime) themselves.
//
// This package does NOT fetch, gossip, store or rate-limit descriptors
// (overlay/dir does), does NOT decide whether a descriptor's network is the
// local one or whether its addresses are reachable, does NOT apply Sybil
// limits, and does NOT check that the link key matches what a peer proved in
// its Noise handshake (the link layer does). It does not carry NAT
// reachability yet; a later version will.
package descriptor
