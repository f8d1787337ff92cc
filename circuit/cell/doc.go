// Package cell defines darkmatter's fixed-size cells and the relay messages
// they carry (spec/cells.md). Every cell on a link is Size bytes:
//
//	| circuit ID (4, big-endian) | command (1) | body (4080) |
//
// CREATE, CREATED and DESTROY bodies are in the clear inside the Noise link.
// A RELAY body is onion-encrypted (crypto/layer); once a hop has removed its
// layer, the message area (the first 3952 bytes) holds a relay message:
//
//	| relay command (1) | stream ID (2) | length (2) | data (length) | zero padding |
//
// The package only encodes and decodes; it does not encrypt, route or decide
// anything. All decoders return errors for malformed input and never panic.
package cell
