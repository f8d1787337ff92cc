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
//   - intro circuit: a hidden service's circuit at an introduction point
//     (Config.Intro), found by its intro auth key; the relay passes each
//     client's INTRODUCE1 on to it as INTRODUCE2 within token buckets
//     (spec/circuits.md §9). Manager.BuildTo builds the circuits that end
//     at a chosen intro or rendezvous point.
//   - Builder/Manager: path choice and circuit reuse, written against a
//     small builder interface.
//
// Limits. Everything a peer can make a relay hold is bounded; each bound is
// a Config (or ExitConfig) field whose zero value means the default, and
// spec/circuits.md §5.4 is the normative list:
//
//   - circuits a peer opened on one channel, and circuits this node opened
//     on it (its own and its EXTENDs): MaxCircuitsPerChannel, 4096 each;
//     circuits peers opened at the relay: MaxCircuits, 65536;
//   - CREATE cells per channel: a token bucket of CreateRate 200/s and
//     CreateBurst 256; refused with DESTROY 5 before any handshake work,
//     without allocating;
//   - CREATEs waiting for one of the Handshakes workers (2×GOMAXPROCS):
//     MaxPendingCreatesPerChannel 256, MaxPendingCreates 4096 over all
//     channels (a channel with none waiting is still admitted); the
//     workers serve the channels round robin, so one channel's flood
//     delays another's CREATE by about one handshake per busy channel;
//   - replayed CREATE handshakes: a filter of ReplayCacheSize (131072)
//     client ephemeral keys, each remembered for at least ReplayWindow
//     (1h) unless pushed out, refused with DESTROY 6;
//   - idle circuits: CircuitIdleTimeout (1h without a cell either way),
//     destroyed with DESTROY 5;
//   - DESTROYs answering cells for unknown circuits: once per ID among the
//     channel's last 64 answered or destroyed IDs, within DestroyReplyRate
//     10/s and DestroyReplyBurst 20 per channel; other such cells are
//     dropped and counted;
//   - streams per circuit end: MaxStreams 512 (END RESOURCE_LIMIT);
//     circuits waiting for a joint: MaxJoints 4096;
//   - an introduction point's intro circuits and INTRODUCE2 rates:
//     IntroConfig (4096 keys; 25/s, bursts of 200 per intro circuit by
//     default, at most 200/s and 2000; 500/s, bursts of 1000 in total);
//   - the exit's target connections: ConnectTimeout 30s to connect,
//     WriteTimeout 30s for a write without progress; a target connection
//     closes with its stream, its circuit or the switch.
//
// Stats counts what the limits refused. A DESTROY received from one side
// is passed on as reason 8 (DESTROYED), never with the reason it carried.
// The link layer's memory budget destroys a circuit through DropCircuit.
//
// Circuit does not open sockets for links, run link handshakes or learn
// relays: it asks a Linker for a Channel to a hop, and the caller (overlay)
// passes it the directory. It does not resolve names on the client: BEGIN
// carries the host name to the exit. It does not define an end-to-end
// layer: joined circuits take an E2ELayer from their caller (hidden
// services).
package circuit
