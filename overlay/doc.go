// Package overlay is darkmatter's public Node API: a Node joins a network
// (bootstrap relays, directory of signed relay descriptors), keeps Noise links
// to its neighbours, carries circuits as a relay (optionally an exit) and, as a
// client, opens streams through 3-hop circuits with DialStream.
//
//	n, _ := overlay.New(overlay.Config{Bootstrap: bs})
//	n.Start(ctx)
//	conn, _ := n.DialStream(ctx, "example.com:80", "") // a net.Conn
//
// Discovery in this version is a static bootstrap list: relays announce their
// descriptor (HELLO) to their bootstrap relays, and clients fetch the
// descriptors their bootstrap relays know (DIR_GET). Gossip and the DHT are
// not implemented yet. The package does not parse flags or files (cmd/ does).
package overlay
