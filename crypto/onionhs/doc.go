// Package onionhs implements the one-round-trip hybrid circuit handshake a
// client runs with each hop (spec/circuits.md §3).
//
// It is Noise_NKpsk2_25519_ChaChaPoly_BLAKE2s with the relay's onion key as
// the responder static key, and an ML-KEM-768 encapsulation to the relay's KEM
// key as the PSK:
//
//	client                                   relay
//	ct, ss := Encapsulate(relay KEM key)
//	-> e, es, payload = Enc(ct)                       (1136 bytes)
//	                                         ss := Decapsulate(ct)
//	<- e, ee, psk=ss                                  (48 bytes)
//
// The client's key is ephemeral, so the relay learns nothing about who it
// talks to. An attacker must break both X25519 (es, ee) and ML-KEM-768 (psk)
// to learn the layer keys, so traffic recorded today stays secret against a
// future quantum computer. The prologue binds the handshake to the protocol
// version and the network name.
//
// The handshake is sans-IO: functions take an io.Reader for randomness and
// return messages and keys; they never touch a socket. It does not choose
// relays, carry messages or encrypt cells (see crypto/layer).
package onionhs
