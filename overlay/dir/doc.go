// Package dir is a node's directory: the verified relay descriptors it knows
// (spec/descriptor.md) and the link-level directory exchange that spreads
// them (DIR_GET, DIR_DESC, DIR_DONE, spec/cells.md §2.4).
//
// A [Directory] keeps at most one descriptor per relay (the newest
// published), only of its own network and only while it is fresh
// (descriptor.CheckTime: at most descriptor.MaxAge old, not from the future,
// onion key unexpired), and at most Config.MaxRelays of them. Time comes from
// Config.Now, so freshness is tested with a fake clock.
//
// Protocol flow, on one link (the [Peer]):
//
//	fetcher                          server
//	DIR_GET            ─────────▶    every fresh descriptor it knows:
//	                   ◀─────────    DIR_DESC (one descriptor) × n
//	                   ◀─────────    DIR_DONE
//
// [Directory.Fetch] sends DIR_GET and waits for DIR_DONE; [Directory.HandleCell]
// answers DIR_GET and stores every DIR_DESC that verifies (a DIR_DESC that
// arrives unasked is stored too, like a HELLO descriptor).
//
// What it does not do: it does not open links or pick whom to ask (the Node's
// bootstrap and guard policy in package overlay does), does not parse HELLO
// payloads (the link manager verifies them and the Node adds them here), and
// has no gossip, anti-entropy, Sybil caps or DHT yet (ARCHITECTURE.md §6).
package dir
