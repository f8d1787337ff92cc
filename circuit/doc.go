// Package circuit implements darkmatter circuits (spec/circuits.md,
// spec/streams.md): the relay side (CREATE, EXTEND, forwarding, DESTROY),
// the client side (telescoping build, layered sealing), streams with
// per-stream and per-circuit flow-control windows and half-close, circuit
// ends with pluggable stream handlers, joints of two circuits, and a circuit
// manager that picks paths and reuses circuits by isolation key.
//
// Vocabulary, one word per concept:
//
//   - Switch: every cell a node receives on any Channel goes through
//     Switch.HandleCell, which finds the circuit by (channel, circuit ID).
//     Each channel's cells are handled in order on that channel's reader
//     goroutine; crypto for one direction of a circuit therefore runs in
//     order without locks, and the other direction runs on the other
//     channel's reader.
//   - ClientCirc: a circuit this node built; relayCirc: one passing
//     through (or ending at) this relay.
//   - edge: the stream-carrying end of a circuit (the client, the last hop,
//     or across a joint the other client). It multiplexes Streams, keeps
//     the circuit windows, and hands incoming streams to the StreamHandler
//     registered for their StreamKind (the exit is the KindTCP handler).
//   - carrier: what an edge sends through (ClientCirc or relayCirc).
//   - joint: two relayCircs joined end to end at their common last hop; it
//     passes E2E messages between them under hop-by-hop windows.
//   - Builder/Manager: path choice and circuit reuse, written against a
//     small builder interface.
//
// Circuit does not open sockets for links, run link handshakes or learn
// relays: it asks a Linker for a Channel to a hop, and the caller (overlay)
// passes it the directory. It does not resolve names on the client: BEGIN
// carries the host name to the exit. It does not define an end-to-end
// layer: joined circuits take an E2ELayer from their caller (hidden
// services).
package circuit
