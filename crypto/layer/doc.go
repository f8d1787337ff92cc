// Package layer implements darkmatter's per-hop onion layer crypto
// (spec/circuits.md §4, "Layer crypto").
//
// A circuit cell body of B bytes is laid out as
//
//	| message (B-128) | slot 7 | slot 6 | ... | slot 1 | slot 0 |
//	                  \------------ header, 8 x 16 bytes -------/
//
// Forward (client → exit): every hop authenticates and removes its layer
// with AES-256-GCM over body[:B-16] with the tag in slot 0, then moves the
// header one slot towards the end and puts 16 zero bytes in slot 7. The
// client precomputes those fillers (as in Sphinx), so the next hop's tag
// covers the whole cell: a cell changed anywhere on the way is rejected by the
// very next hop. A decrypted slot 1 of all zeros means "this cell is for you".
//
// Backward (towards the client): the hop that originates a cell seals its
// message with its backward key (tag in slot 1) and puts a marker in slot 0:
// a keystream block of its own that only it and the client can compute, so
// even its neighbour cannot tell it originated the cell. Every other hop adds
// a keystream layer. The client peels layers one by one, recognises the
// originator by its marker, then checks its tag.
//
// Nonces are 64-bit counters per hop and direction, so replayed, dropped or
// reordered cells fail authentication.
//
// The package is sans-IO: it transforms byte slices in place and never
// allocates on the per-cell path. It does not know cell framing, circuit IDs,
// relay commands or keys' origin (see crypto/onionhs for the handshake).
package layer
