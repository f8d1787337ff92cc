// Package hsblind blinds hidden-service keys for one time period, as Tor's
// rend-spec-v3 does (appendix A.2, "Tor's key derivation scheme"), adapted
// with darkmatter's own context strings and with the network name bound in.
// spec/hidden-services.md §1 (time periods) and §2 (key blinding) are
// normative; spec/vectors/blinding.json holds the vectors.
//
// A service with Ed25519 key (a, A) stores its descriptor in the DHT under
// the blinded key A' = h·A of the current [Period], where the blinding
// factor h is a hash of the network name, A and the period. Anyone who knows
// the .dark address (A) computes A' with [BlindPublic]; the service derives
// the matching private key with [BlindPrivate] and signs with it, and the
// signatures are plain Ed25519 ones that crypto/ed25519.Verify accepts under
// A'. Without A, the blinded keys of two periods (or two networks) cannot be
// linked to each other or to the address: doing so means solving a discrete
// logarithm.
//
// Protocol flow:
//
//	p  := PeriodAt(now, DefaultPeriodLength)
//	service: bk := BlindPrivate(key, network, p); sig := bk.Sign(descriptor)
//	         store (bk.Public(), descriptor, sig) in the DHT
//	client:  A' := BlindPublic(addressKey, network, p)  (an error: not a usable key)
//	         fetch under A', then A'.Verify(descriptor, sig)
//
// The package uses filippo.io/edwards25519 for the scalar and point
// arithmetic that crypto/ed25519 hides; there is no field arithmetic here.
//
// This package does NOT build, encrypt or store descriptors, choose DHT
// positions, derive subcredentials or descriptor keys, or decide when to
// republish across a period boundary: the hidden-service layers do. It does
// not log anything.
package hsblind
