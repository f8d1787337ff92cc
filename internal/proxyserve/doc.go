// Package proxyserve is the protocol-independent half of the client-side
// proxy front ends in apps/ (apps/socks, apps/httpproxy). Each front end
// keeps its exported Server, with the fields its users set, and its
// protocol code; it hands those fields to a [Server] from this package as
// [Options] and lets it run everything around the protocol.
//
// What it does:
//   - An accept loop ([Server.Serve]) that runs a [Handler] for every
//     accepted connection in its own goroutine, and closes the connection
//     when the handler returns. Accept errors that are timeouts or report
//     Temporary are retried with a backoff from 5ms doubling up to 1s, like
//     net/http; any other Accept error ends Serve. Serve refuses to start
//     without a [Dialer].
//   - Outgoing streams: [Server.Dial] asks the Dialer, bounded by the
//     handler's context and the dial timeout (DefaultDialTimeout unless set),
//     and tracks the stream until [Server.Release]. [DialFailure] names a
//     dial error without the address it may quote. [Server.HandshakeTimeout]
//     gives the front end its handshake bound (DefaultHandshakeTimeout, 5 s,
//     unless set); each front end applies it to a client's whole request
//     header.
//   - Names that stay home: Server.Dial refuses a target whose host
//     specialname.Check refuses (a mistyped .dark address or name,
//     .onion, .alt, localhost, .local, home.arpa, .internal) before it
//     asks the Dialer, so no circuit is built for it and no exit sees it
//     (spec/streams.md §7). The error wraps streamerr BadAddress (mistyped)
//     or Unreachable, and DialFailure gives its rule in words. A valid
//     .dark address or name is passed to the Dialer, whose node reaches
//     the hidden service or resolves the name through the network without
//     the name leaving it.
//   - Close: [Server.Close] is idempotent. It stops every Serve loop (which
//     then return net.ErrClosed), closes every listener, accepted
//     connection and outgoing stream, cancels the context handed to
//     handlers (so in-flight dials end at once), and waits for every Serve
//     loop and handler goroutine to return. Serve after Close returns
//     net.ErrClosed; a Dial that completes after Close closes its stream and
//     returns net.ErrClosed.
//   - [Splice]: the data phase, a bidirectional copy between a client
//     connection and a stream. A client's half-close (EOF) is passed on
//     with CloseWrite (an END one way on a circuit stream), and the other
//     direction carries on until the stream's EOF, so a client that sends
//     its request and shuts its write side gets the whole response. If the
//     destination cannot half-close (no CloseWrite, or it fails), or a copy
//     fails, both connections are closed at once.
//
// What it does not do:
//   - It knows no proxy protocol, parses nothing from the network, and
//     writes nothing to a client: handshakes, deadlines, replies and their
//     log lines are the front end's.
//   - It does not choose circuits or isolation: it hands the front end's
//     target and isolation key to the Dialer.
//   - It limits neither the number of connections nor their rate, and puts
//     no timeout on the data phase.
//   - Its only log line is a retried Accept failure, through Options.Logf;
//     it logs no addresses.
//
// Package proxytest holds the test helpers both front ends share.
//
// spec/streams.md §7 is normative for the names Dial refuses; no other
// spec/ section is.
package proxyserve
