package circuit

import "github.com/darkmatter/darkmatter/crypto/keys"

// OnionKeys gives a relay's switch the onion key pairs that answer CREATE
// (spec/circuits.md §3): the current pair, and during the overlap after a
// rotation the previous one. *keys.OnionKeyring implements it.
//
// A CREATE names no key: the switch tries the current pair and then the
// previous one. With the wrong onion key the Noise NK message 1 fails its
// AEAD check before any ML-KEM work, so a CREATE for the previous pair
// costs one extra X25519 (BenchmarkCreatePreviousKey).
type OnionKeys interface {
	// UseOnionKeys calls f with the pairs, the current one first; they
	// stay valid until f returns and f keeps neither them nor the slice.
	UseOnionKeys(f func([]keys.OnionPair))
}
