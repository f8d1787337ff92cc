// Package transport defines how darkmatter opens and accepts reliable byte
// streams, and implements it over TCP.
//
// [Transport] is the narrow interface the link layer (overlay/link) is
// written against: Dial a "host:port" and get a net.Conn, or Listen and
// accept them. [TCP] is the loopback/internet implementation; package
// memnet (overlay/transport/memnet) is the in-memory one, so one test
// process can run many nodes, and the same test can switch to loopback
// sockets (STYLE.md §2.5, point 23).
//
// Link addresses carry a scheme that names their transport:
// "tcp://host:port" (a bare "host:port" means tcp), "mem://ip:port" for
// memnet in tests, later "quic://host:port". [ParseAddr] splits one; a
// [Registry] maps schemes to transports and is itself a Transport, so a node
// runs several transports at once. The address syntax matches
// spec/descriptor.md §2, which is normative for addresses in descriptors.
//
// What it does not do: no encryption or authentication (Noise links live in
// overlay/link), no framing, no retries, no connection reuse or limits (the
// link manager decides when and where to connect), no NAT traversal (nat/),
// and no packet/UDP transport yet (QUIC over a hole-punched UDP socket will
// be a separate type, registered under its own scheme). Apart from the
// address syntax, no spec/ section is normative for this package: it carries
// bytes and knows nothing of their meaning.
package transport
