// Package hs implements the cryptography of darkmatter hidden services
// (spec/hidden-services.md §3–§6): the encrypted descriptor a service
// stores in the DHT, the end-to-end handshake a client starts in INTRODUCE1
// and the service answers in JOIN, the end-to-end layer of the joined
// circuit, and the introduction proof of work. It does no networking.
//
// Protocol flow:
//
//	service: s := NewServiceSecrets(rand)            (per instance, in memory)
//	         v := SealDescriptor(rand, d, network, id, period, clients)
//	         store v in the DHT under DescriptorKey(blinded key of period)
//	client:  d := OpenDescriptor(v, network, id, period, clientKey)
//	         nonce := SolvePoW(ctx, d.PoWSeed, blinded, d.PoWEffort)
//	         h, enc := ClientIntroduce(rand, Target{...}, Intro{cookie, R, effort, nonce})
//	         INTRODUCE1(auth key ‖ enc) to an introduction point
//	service: in, replay, reply, l := ServiceAccept(rand, ..., s, enc)
//	         check CheckPoW(seed, blinded, in.PoWEffort, in.PoWNonce) and replay
//	         JOIN(in.Cookie ‖ reply) at in.Rendezvous, then use l
//	client:  l := h.Finish(reply from JOINED)
//
// The handshake is Noise_NKpsk2_25519_ChaChaPoly_BLAKE2s with an
// ML-KEM-768 shared secret as the PSK, crypto/onionhs's construction with
// the service's per-instance X25519 and ML-KEM keys (from the descriptor)
// in place of a relay's onion keys, a prologue binding the network, the
// service identity, the blinded key and the introduction point's auth key,
// and the introduction data as the payload of message 1. That payload is
// protected by X25519 only (as Tor's INTRODUCE); the session keys are
// hybrid. [Layer] is the two Noise transport CipherStates with counter
// nonces, so a modified, replayed, reordered or dropped message fails.
//
// The descriptor has two XChaCha20-Poly1305 layers: the outer one keyed by
// the subcredential (anyone who knows the .dark address and the period can
// open it), the inner one additionally by a descriptor cookie that is
// wrapped, with X25519, for each authorised client when the service
// restricts access.
//
// Primitives come from crypto/ecdh, crypto/hkdf, crypto/sha256,
// golang.org/x/crypto (chacha20poly1305, blake2b) and flynn/noise via
// crypto/noiseconf; nothing is hand-rolled. Every X25519 shared secret that
// is all zero (a low-order public key) is refused.
//
// This package does NOT build circuits, talk to introduction points or the
// DHT, sign DHT records (hsblind does the blinded signatures, the overlay
// the records), keep replay caches or queues, choose the suggested PoW
// effort, or decide when to republish. It does not log.
package hs
