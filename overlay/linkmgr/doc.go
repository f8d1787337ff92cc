// Package linkmgr is the link manager: it owns a node's links (overlay/link),
// opens them over several transports at once, accepts them on every
// listener, keeps one table of open links by the peer's link key, routes
// their cells, and lets a better link to a peer replace another.
//
// Vocabulary: a *link* is one Noise link over one transport connection
// ([Link]); a *peer* is the other end, known by its static link key (a
// relay's is long-term, a client's is fresh for every link, so a client's
// links are never recognised as one peer). A peer may have several links at
// once; exactly one of them is its *preferred* link, the one new circuits use.
//
// Dialling. [Manager.Channel] returns the peer's preferred link, or dials
// one: addresses carry a scheme ("tcp://host:port"; a bare "host:port" is
// tcp; "mem://…" for memnet in tests) and the transport.Registry in
// [Config] picks the transport. Concurrent calls for one peer at one address
// share one dial (keyed by key and address, so a dial to a wrong address
// that never answers cannot hold up a dial to the peer's real one).
// Channel also checks that the peer's HELLO descriptor is signed by the
// identity asked for. [Manager.Dial] always opens a new link (a better one,
// for example after hole punching). Dials go through link.Connect, which
// redials once with ChaChaPoly when the responder lacks hardware AES; a relay
// whose signed descriptor lists LinkAES ([Config].Descriptors) is dialled
// with link.Config.PeerPrefersAES, so that answer fails as a downgrade.
//
// Accept limits. An accepted connection takes a slot before any
// cryptography runs, and is closed at once if none is free: at most
// [Config].MaxLinks accepted links (open or in their handshake) in all, and
// MaxLinksPerIP from one source address (an IPv4 address, or an IPv6 /64);
// at most MaxHandshakes inbound handshakes in flight, and MaxHandshakesPerIP
// from one source. The slot is given back when the handshake fails or the
// link closes, and a source's entry goes with its last slot. [Manager.Stats]
// counts the refusals. Outbound links are not counted: a node dials only
// relays of its directory, at most MaxLinksPerPeer each.
//
// Cells. Every cell a link reads goes to [Config].Circuits (the circuit
// switch) when its circuit ID is not 0, and to [Config].Handler (the Node:
// directory cells) when it is. Handler also hears when a link comes up and
// when it closes. The manager holds none of its locks while it calls them.
//
// Replacing a link. When a second link to a peer comes up (both sides dialled
// at once, a newer link such as QUIC after hole punching, or one with a better
// suite), both ends pick the same preferred link, without talking, by the
// first of these rules that tells the links apart (each compares what both
// ends see alike):
//
//  1. the higher link protocol version;
//  2. the AESGCM suite over ChaChaPoly;
//  3. if one was initiated by each side, the link initiated by the side whose
//     static link key is lower (bytewise), as libp2p resolves a simultaneous
//     connect;
//  4. otherwise (both initiated by the same side) the newer link.
//
// New circuits use the preferred link. Each other link is *retired*: it keeps
// carrying its circuits, and once it carries none (the circuit switch says
// so through ChannelCircuits; a Circuits without it falls back to counting
// CREATE and DESTROY cells in both directions) and has carried none for
// Config.ReplaceGrace, it is closed. A peer has at most Config.MaxLinksPerPeer
// links; a further one is refused.
//
// Relayed links (spec/nat.md §8). With [Config].Splice set (a hop relay),
// the manager reads the first three bytes of each accepted connection,
// within the handshake timeout: [SpliceMagic] hands the connection, those
// bytes replayed, to Splice, which keeps the accept slot until it returns;
// anything else goes to the link handshake with its bytes replayed.
// [Manager.AcceptConn] runs the responder side on a connection the node
// obtained itself (a relay spliced it), with no slot. A transport that is
// a [transport.PeerDialer] is dialled with the peer's link key.
//
// Moving a link (spec/links.md §5.4). [Link.Move] continues a link on a
// new connection (a punched QUIC path) after writing [MoveMagic] and the
// link's token on it; an accepted connection that opens with MoveMagic is
// handed to the accepted link whose token it names, and the link's Addr
// becomes the new connection's. Circuits do not notice.
//
// What it does not do: no cell or circuit processing (package circuit), no
// directory logic (overlay/dir), no decision about which relays to talk to
// (the circuit manager and the Node's bootstrap policy), no reservations or
// hole punching (overlay, nat/), and no decision about which addresses may
// be dialled (the Node's extend rules).
// spec/links.md is normative for links; address syntax is spec/descriptor.md
// §2.
package linkmgr
