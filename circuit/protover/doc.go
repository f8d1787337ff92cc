// Package protover holds darkmatter's subprotocol versions (spec/protover.md
// is normative): what a node can do, as a set of (protocol, versions) pairs,
// like the "proto" lines of Tor's dir-spec. Links exchange a [Set] in HELLO
// and relays sign one into their descriptor; a node sends a command to a peer
// only if the peer's Set lists a version that has it.
//
// Wire form (at most 1 + 64 × 5 bytes):
//
//	| count (1) | count × ( protocol ID (1) | versions (4) ) |
//
// IDs strictly ascending, versions a big-endian bitmask (bit v−1 = version
// v, v = 1..32), never zero. Unknown IDs are kept and ignored, so a newer
// peer's Set parses everywhere.
//
// What this package does not do: it does not decide which versions a node
// speaks (the layers that implement them do) and knows nothing of links or
// descriptors.
package protover
