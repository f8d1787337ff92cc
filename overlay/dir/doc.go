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
// [Directory.Fetch] sends DIR_GET and waits for DIR_DONE. [Directory.HandleCell]
// answers DIR_GET and takes the DIR_DESC cells of an answer (spec/cells.md
// §2.4 is normative for these rules):
//
//   - A DIR_DESC is taken only while a Fetch waits on that link, at most
//     Config.MaxRelays per answer; any other DIR_DESC (and a DIR_DONE
//     nobody asked for) is dropped and counted in Stats.
//   - An answer is paced by the link's queue: DIR_DESC cells are added only
//     while Peer.LinkQueueLen is below Config.AnswerWindow. The first window
//     goes out at once; the rest is sent by one goroutine that looks at
//     the queues of the answers in flight every 10 ms (at most
//     Config.MaxAnswers of them). An answer that cannot send for
//     Config.AnswerTimeout is cut: it ends with DIR_DONE DoneCut.
//   - One answer per link at a time (a DIR_GET meanwhile is dropped: the
//     answer's DIR_DONE ends the fetcher's wait), and DIR_GETs are rated
//     per link (Config.GetBurst, then one per Config.GetInterval). A
//     DIR_GET over the rate, or beyond MaxAnswers, gets DIR_DONE
//     DoneRefused, if the link's queue has room.
//
// PeerClosed forgets a link: nothing is kept for it once it closed.
//
// Gossip (spec/gossip.md is normative): [Directory.Sync] runs one
// anti-entropy round with a peer that speaks GOSSIP ([SupportsGossip]):
//
//	asker                            server
//	SUMMARY_REQ        ─────────▶
//	                   ◀─────────    SUMMARY (256 bucket hashes)
//	IDS_REQ(buckets)   ─────────▶
//	                   ◀─────────    IDS × k (NodeID, published)
//	WANT(NodeIDs) × w  ─────────▶
//	                   ◀─────────    DESC × m, DONE (paced like DIR_GET answers)
//
// Only the descriptors asked for are taken, each verified and then offered
// to admission with the peer's Source.
//
// Admission ([Admission], [Directory.AddFrom]): relays learned from peers
// are capped per IPv4 /24 and /16, IPv6 /48 and /32, and per introducing
// source until a second source or a direct link confirms them; a full
// directory evicts only unconfirmed or unreliable entries, so aged,
// working relays survive a flood. [Directory.Add] is for trusted input.
// [Directory.Save] and [Directory.Load] keep the list, first-seen times and
// reachability counters across restarts.
//
// What it does not do: it does not open links or pick whom to ask or when to
// sync (the Node's bootstrap and guard policy in package overlay does), does
// not parse HELLO payloads (the link manager verifies them and the Node adds
// them here), does not measure reachability itself (callers report it with
// NoteReachable and Confirm), and has no DHT (ARCHITECTURE.md §6).
package dir
