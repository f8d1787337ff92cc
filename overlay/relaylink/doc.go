// Package relaylink carries links through a public relay to a node behind
// NAT, like libp2p's circuit relay v2 (spec/nat.md §8).
//
// A node that cannot be reached (the *target*) keeps an ordinary link to a
// public relay R and sends it a RESERVE message ([Msg]) over that link; R
// answers with a RESERVATION. The target's descriptor then lists the
// address "relay://HOST:PORT" of R. A peer that must reach the target
// (the previous hop of a circuit) opens a fresh connection to R and sends
// a [Header] of kind CONNECT naming the target's static link key. R tells
// the target, over its reservation link, with an INCOMING message holding
// a random token; the target opens a connection to R with an ACCEPT
// header holding that token; R answers both with status OK and from then
// on copies bytes between the two connections. The two ends run an
// ordinary Noise link (spec/links.md) over the spliced connection, so R
// learns only that they talk, never what they say.
//
// The same link cell command carries PUNCH messages, the hole-punching
// coordination of package nat, between the two ends of any link.
//
// [Service] is R's side, with bounds on everything a peer can make it
// hold: reservations (in all and per source address), connections
// waiting for their target, splices (in all and per reservation), and
// each splice's bytes and lifetime. [Dial] and [Accept] are the two
// connecting sides of a splice. The target's reservation logic and the
// punching live in package overlay.
//
// spec/nat.md §8 is normative.
package relaylink
