// Package overlay is darkmatter's public Node API: a Node joins a network
// (bootstrap relays, a directory of signed relay descriptors), keeps Noise
// links to its neighbours, carries circuits as a relay (optionally an exit)
// and, as a client, opens streams through 3-hop circuits.
//
//	n, _ := overlay.New(overlay.Config{Bootstrap: bs})
//	n.Start(ctx)
//	conn, _ := n.Dial(ctx, "tcp", "example.com:80") // a net.Conn
//
// Applications see only standard-library shapes: Dial (like
// net.Dialer.DialContext), DialStream (the same with an isolation key: streams
// of different keys never share a circuit; a "<key>.dark:PORT" address is
// reached as a hidden service) and Listen (like net.ListenConfig.Listen: it
// publishes a hidden service whose listener's Addr is "<key>.dark:PORT";
// ListenService takes a key, several ports and client authorisation), plus
// New, Start, Ready, Close and status accessors.
//
// A Node is cut into parts, each its own package:
//
//   - overlay/linkmgr, the link manager: links over several transports at
//     once (addresses with a scheme, "tcp://host:port"), one dial per peer,
//     the accept loops, and a better link to a peer replacing another;
//   - overlay/dir, the directory: verified, fresh relay descriptors and the
//     DIR_GET exchange;
//   - package circuit: the switch (circuits through this node) and the
//     circuit manager (the client's circuits and streams).
//
// The Node wires them together with unexported adapters (the switch's Linker,
// the link manager's Handler) and keeps the bootstrap policy: relays announce
// their descriptor (HELLO) to their bootstrap relays, and a client fetches
// the directory from one bootstrap relay, which becomes its guard
// (spec/circuits.md §1, directory guard), asking another only while its
// directory is too small for a path.
//
// Rules against hostile peers (spec/descriptor.md §4.1–4.2, spec/cells.md
// §2.4, and the limits in Config):
//
//   - A relay extends only to relays of its directory, at an address of
//     their signed descriptor that is an IP address, public unless
//     Config.AllowPrivateAddrs, and not its own (the switch's Extender);
//     anything else is refused with circuit.ErrExtendRefused without
//     dialling. Its own choices (bootstrap relays, its first hops) go
//     through the switch's Linker unrestricted.
//   - A peer's HELLO descriptor is stored only if the link comes from an
//     address the descriptor lists; DIR_DESC only as an answer to our
//     DIR_GET (overlay/dir).
//   - The link manager bounds accepted links and handshakes in all and
//     per source address, and the node's links share one memory budget
//     (Config.MemoryBudget) whose out-of-memory handler destroys the
//     circuits holding the oldest cells (circuit.Switch.DropCircuit).
//   - A relay must advertise a reachable address: listening on 0.0.0.0 or
//     :: needs Config.Advertise.
//
// A relay that starts links to up to Config.Announce relays of its
// directory, so that they learn its descriptor from its HELLO.
//
// What it does not do: no gossip or DHT yet (overlay/dir will), no hidden
// services yet, no NAT traversal (nat/), and it does not parse flags or files
// (cmd/ does).
package overlay
