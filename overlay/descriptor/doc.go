// Package descriptor encodes, signs and parses relay descriptors, and the
// bootstrap strings users pass with --bootstrap. spec/descriptor.md is
// normative.
//
// A relay descriptor is a node's signed statement of its keys, addresses,
// exit policy and subprotocol versions. It binds the NodeID (SHA-256 of the
// Ed25519 identity key) to the X25519 link key (Noise static key), the
// X25519 onion key and its expiry, the ML-KEM-768 key of the hybrid circuit
// handshake, the link addresses, the exit policy, the advertised bandwidth,
// the subprotocol versions (package circuit/protover), the network name and
// the publication time.
//
// Wire layout, version 2 (all integers big-endian, times are unix seconds):
//
//	size   field
//	4      magic "DMRD"
//	1      version (2)
//	2      network name length n (1..64)
//	n      network name (UTF-8, no control characters)
//	32     identity public key (Ed25519)
//	32     link public key (X25519)
//	32     onion public key (X25519)
//	8      onion key expiry (int64, after the publication time)
//	1184   KEM public key (ML-KEM-768 encapsulation key)
//	1      address count k (0..8)
//	k ×    address: 2-byte length m (1..255), then m bytes "scheme://host:port"
//	2      exit policy length e (1..1024)
//	e      exit policy, canonical form of package circuit/exitpolicy
//	4      bandwidth, bytes per second (uint32)
//	1+5p   protocols: protover wire form, count p (0..64), then p × (id, mask)
//	1      extension count x (0..64)
//	x ×    extension: 2-byte type, 2-byte length l, then l bytes of value;
//	       types strictly ascending
//	8      publication time (int64, 1..253402300799)
//	64     Ed25519 signature by the identity key over
//	       SignatureContext ("darkmatter relay descriptor v2\x00") ||
//	       every preceding byte
//
// The whole descriptor is at most MaxSize (4000) bytes. Parse refuses
// anything that does not match this layout exactly: wrong magic or version
// (version 1 was never deployed and is refused), a field out of its limits,
// a malformed KEM key, a non-canonical or invalid exit policy, duplicate or
// malformed addresses, a non-canonical protocol set, extension types out of
// order or repeated, trailing bytes, or a bad signature. Every field is
// covered by the signature, so a successfully parsed descriptor marshals
// back to the same bytes.
//
// Addresses carry a scheme naming the transport: "tcp://host:port" (see
// SplitAddr, NormalizeAddr, JoinAddr). Parse accepts schemes it does not
// know, since a node simply skips addresses whose transport it lacks; it
// refuses an address without one. Sign gives a bare "host:port" in Addrs
// the tcp scheme, so code that predates schemes keeps signing valid
// descriptors.
//
// The extension area is how the descriptor grows without a new version:
// Parse keeps every entry it reads, as raw bytes, so that Marshal
// reproduces it byte for byte and the signature still verifies. Known types
// have accessors that decode the raw value on demand and ignore a malformed
// one: Family/SetFamily (type 1) and Compute/SetCompute (type 2, what a
// relay's executor of delegated calls takes on).
//
// A bootstrap string is "ID@HOST:PORT" (a tcp address) or
// "ID@SCHEME://HOST:PORT", where ID is the lowercase, unpadded base32 of
// identity public key || link public key (103 characters): enough for a
// client to run the Noise handshake against the link key and then check the
// relay's identity. Bootstrap.Addr always holds the scheme.
//
// Protocol flow: a relay builds a Descriptor, calls Sign with its identity
// key and publishes Marshal(); receivers call Parse, then check the network
// name and freshness (CheckTime) themselves.
//
// This package does NOT fetch, gossip, store or rate-limit descriptors (the
// overlay's directory does), does NOT decide whether a descriptor's network
// is the local one or whether its addresses are reachable, does NOT dial or
// know any transport behind a scheme, does NOT apply Sybil limits, does NOT
// decide which subprotocol versions a relay speaks, and does NOT check that
// the link key matches what a peer proved in its Noise handshake (the link
// layer does). It does not carry NAT reachability or onion key rotation
// yet; they will arrive as extension types. It does not run, schedule or
// admit delegated calls: Compute only carries the executor's claim.
package descriptor
