// Package memnet is an in-memory network of hosts, so that a test can run
// many darkmatter nodes in one process without sockets, like tailscale's
// net/memnet and wireguard-go's conn/bindtest.
//
// A [Network] holds hosts named by IP address. [Network.Host] returns the
// view of one host, which implements transport.Transport: it listens on its
// own IP and dials other hosts' listeners. Connections are full-duplex byte
// streams with a bounded buffer in each direction ([Network.BufferSize]),
// so a Write returns as soon as its bytes fit in the buffer instead of
// waiting for the reader as net.Pipe does. Every successful dial is recorded
// ([Network.Dials]) so tests can assert who connected to whom.
//
// Semantics, chosen to match TCP where a test could tell the difference:
//
//   - Listen("ip:port"), Listen(":port") and Listen("0.0.0.0:port") all bind
//     the host's own IP; port 0 picks a free ephemeral port (49152–65535).
//     Another host's IP fails with [ErrAddrNotAvailable], a port in use with
//     [ErrAddrInUse].
//   - Dial("ip:port") connects from an ephemeral source port. No listener
//     there (or no such host) fails at once with [ErrConnRefused], which
//     matches errors.Is(err, syscall.ECONNREFUSED). A dial completes when it
//     enters the listener's accept queue (backlog [Backlog]); when the queue
//     is full, Dial waits for room until its context ends.
//   - Close is idempotent. After it, local Reads and Writes fail with an
//     error matching net.ErrClosed; the peer reads what was already written
//     and then io.EOF; the peer's Writes fail with [ErrBrokenPipe] (matches
//     syscall.EPIPE). CloseWrite half-closes like *net.TCPConn.
//   - Deadlines work as on net.Conn: an expired deadline fails the call with
//     an error matching os.ErrDeadlineExceeded whose Timeout() is true.
//     Writes may be partial when a deadline expires or the conn is closed.
//   - Errors from conns and listeners are *net.OpError values with Net
//     "memnet", as from the net package.
//
// What it does not do: there is no packet (UDP) transport, no latency,
// bandwidth limit, loss, reordering, NAT or firewall; no DNS (addresses are
// IP literals); no loopback aliasing (127.0.0.1 is just another host IP, and
// a host reaches its own listeners through its own IP); no resets: closing a
// conn with unread data discards it silently. Those belong in a NAT/link
// simulator built on top (nat/ for NAT types). No spec/ section is
// normative for this package.
package memnet
