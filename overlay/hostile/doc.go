// Package hostile is darkmatter's hostile-peer suite: tests that run a small
// network of real overlay Nodes (relays that are exits, and a legitimate
// client) in one process, over the in-memory transport and over loopback
// TCP, and attack its relays from outside the way a peer written from spec/
// alone can.
//
// An attacker completes real link handshakes (link.Dial with a key of its
// own, the relay's link key taken from its descriptor) and then misbehaves
// with crafted cells: DIR_GETs it never reads the answer to, CREATE floods
// from one link and from many, replayed handshake messages, cells for
// circuits that do not exist, unknown commands, many links from one address,
// EXTENDs to loopback, private and black-hole addresses, targets that stop
// reading and streams whose window is never read. Each test asserts three
// things:
//
//   - the legitimate client keeps working on the same relays, within a
//     loose time bound;
//   - the attacked relay's goroutines (counted by pprof goroutine labels,
//     each node's goroutines carry its name) and the process's heap stay
//     within the bounds the relay's limits promise;
//   - everything the attack made the relay hold is freed afterwards (the
//     counts return to their baseline, and goleak checks the package at the
//     end).
//
// The benchmarks measure a legitimate client's time to first byte before
// and during a CREATE flood from one peer, and a relay's memory while many
// circuits hold queued data, against the configured budget.
//
// What it does not do: it has no code outside its tests, tests no single
// package's internals (each package tests its own), and does not fuzz (the
// decoders' fuzz targets live with the decoders). Time-based limits are
// exercised with short configured values, not with long sleeps.
package hostile
