// Package nat finds out what NAT a node sits behind and opens direct UDP
// paths through NATs (ARCHITECTURE.md §7; spec/nat.md is normative).
//
// It has four parts:
//
//   - A STUN server ([Server], pion/stun for the encoding): answers Binding
//     requests with XOR-MAPPED-ADDRESS, MAPPED-ADDRESS and RESPONSE-ORIGIN,
//     and, given alternate sockets, OTHER-ADDRESS and CHANGE-REQUEST for RFC
//     5780 behaviour discovery. Answers are rate-limited per source IP and
//     never more than [MaxAnswerFactor] times the request, so spoofed
//     requests cannot turn it into an amplifier. [IsSTUN] lets a socket be
//     shared with other protocols.
//   - A probe ([Probe]): asks several servers from one socket and classifies
//     the NAT's mapping and filtering behaviour (RFC 4787, RFC 5780) into a
//     [Report].
//   - Coordination ([Coordinate]) over an existing path the caller provides
//     as a [Signal]: CONNECT with [Candidates] both ways, RTT measurement,
//     SYNC, like libp2p DCUtR.
//   - Hole punching ([Punch]): probes carrying the session nonce to every
//     candidate at the agreed moment, until a probe is acknowledged.
//
// Package nat/natsim is an in-process network with NAT boxes for tests.
//
// What it does NOT do: move links to QUIC over a punched socket, migrate
// links, fall back to relaying, discover port mappings (UPnP, NAT-PMP,
// PCP), keep punched mappings alive, or decide when to punch and with whom
// (punching only ever joins adjacent hops of a circuit; that policy lives
// above, in overlay/link and circuit). It imports nothing of overlay/ or
// circuit/, and logs nothing.
package nat
