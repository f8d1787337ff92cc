// Package quictr carries darkmatter links over QUIC (quic-go), so links
// can run on UDP and through NATs whose mappings a UDP socket punched.
// The directory is overlay/transport/quic; the package is named quictr so
// that it does not clash with quic-go's package quic.
//
// [Transport] implements transport.Transport: each net.Conn is ONE
// bidirectional stream of its own QUIC connection, with net.Conn
// semantics (deadlines, io.EOF after the peer's FIN, net.ErrClosed after
// Close, *net.UDPAddr addresses) and CloseWrite for half-close. Links
// register it under the address scheme "quic" ([Scheme]):
// "quic://host:port". The wire rules (ALPN [ALPN], the stream preamble,
// closing, limits) are in spec/links-quic.md.
//
// TLS authenticates nothing here. QUIC needs TLS 1.3, so each Transport
// makes an ephemeral self-signed certificate and dialers accept any
// certificate: the link layer's Noise IK handshake over the stream, bound
// to the network name, authenticates the peer (spec/links.md).
//
// Socket sharing: [New] runs a Transport on a UDP socket the caller owns,
// and both Dial and Listen use it, so after a hole punch the link goes
// through the mapping the punch made. Packets on that socket that are not
// QUIC (first two bits 00, as in STUN) come out of [Transport.ReadNonQUIC]
// or the net.PacketConn of [Transport.PacketConn], so a STUN server and
// the hole puncher (nat/) share the socket with the links. The zero
// Transport instead binds a socket per listener and one per dial.
//
// Limits: a listener holds at most [Config].Backlog connections that
// Accept has not returned (BacklogPerHost per IP address) and refuses the
// rest before the handshake; it asks for a Retry (address validation) once
// half full; a peer may open one stream per connection; receive windows
// are bounded ([DefaultStreamWindow]). Keep-alives every 15 s hold NAT
// mappings open; 30 s of silence closes a connection.
//
// What it does not do: no authentication or encryption of its own beyond
// QUIC's (overlay/link), no connection reuse or migration, no 0-RTT, no
// datagrams, no NAT traversal logic (nat/ decides whom to punch and when;
// this package only lends it the socket).
package quictr
