// Package circuit implements darkmatter circuits (spec/circuits.md,
// spec/streams.md): the relay side (CREATE, EXTEND, forwarding, DESTROY),
// the client side (telescoping build, layered sealing), streams with
// per-stream and per-circuit flow-control windows, exit connections under an
// exit policy, and a circuit manager that picks paths and reuses circuits by
// isolation key.
//
// The Switch is the heart: every cell a node receives on any link goes
// through Switch.HandleCell, which finds the circuit by (channel, circuit ID).
// Each channel's cells are handled in order on that channel's reader
// goroutine; crypto for one direction of a circuit therefore runs in order
// without locks, and the other direction runs on the other channel's reader.
//
// Circuit does not open sockets for links, run link handshakes or learn
// relays: it asks a Linker for a Channel to a hop, and the caller (overlay)
// passes it the directory. It does not resolve names on the client: BEGIN
// carries the host name to the exit.
package circuit
