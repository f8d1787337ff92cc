// Package proxyserve is the connection machinery shared by the client-side
// proxy front ends in apps/ (apps/socks, apps/httpproxy). Each front end
// keeps its own exported Server and protocol code and embeds a [Server] from
// this package for the lifecycle around it.
//
// What it does:
//   - An accept loop ([Server.Serve]) that runs a [Handler] for every
//     accepted connection in its own goroutine, and closes the connection
//     when the handler returns. Accept errors that are timeouts or report
//     Temporary are retried with a backoff from 5ms doubling up to 1s, like
//     net/http; any other Accept error ends Serve.
//   - Tracking of listeners, accepted connections and outgoing streams
//     registered with [Server.Track], so that [Server.Close] can close them
//     all. Close is idempotent: it stops every Serve loop (which then return
//     net.ErrClosed), closes every listener and tracked connection, cancels
//     the context handed to handlers, and waits for every Serve loop and
//     handler goroutine to return. Serve after Close returns net.ErrClosed.
//   - Cancellation of in-flight dials: the context given to each Handler is
//     canceled by Close, so a dial made with it (directly or through a
//     derived timeout context) ends at once.
//   - [Splice]: a bidirectional copy between a client connection and a
//     stream, passing a half-close (EOF one way) on with CloseWrite where
//     the destination supports it, and closing both connections at the end
//     or on the first error.
//
// What it does not do:
//   - It knows no proxy protocol, no Dialer, no timeouts and no isolation:
//     handshakes, dialing, deadlines and replies are the front end's.
//   - It does not close a stream the handler opened unless the handler
//     registered it with Track; Untrack closes and forgets it.
//   - It limits neither the number of connections nor their rate.
//   - Its only log line is a retried Accept failure, through the Logf given
//     to Serve; it logs no addresses.
//
// Package proxytest holds the test helpers both front ends share.
//
// No spec/ section is normative for this package.
package proxyserve
