// Package proxytest holds the test helpers shared by the tests of the proxy
// front ends (apps/socks, apps/httpproxy) and of package proxyserve: a fake
// Dialer that records every (target, isolation) pair it is asked for and
// dials a loopback backend, optionally wrapped to look like a circuit
// stream (Stream) or like one that cannot half-close (NoHalfClose);
// loopback TCP backends with ready-made handlers (echo, hash after EOF, a
// large answer after EOF) and the client halves that check them; a helper
// that runs a proxy Server on loopback and checks at cleanup that Serve
// returned net.ErrClosed; a client dialer with a deadline; a
// concurrency-safe log recorder; and, for tests under testing/synctest, a
// proxy on an in-memory network (StartMemProxy), streams that echo over
// net.Pipe (PipeEcho) and a client that drips its bytes (Drip); and the
// hosts under .dark of spec/streams.md §7 that the proxies refuse as
// mistyped or pass to the Dialer (DarkHosts, DarkNames).
//
// What it does not do:
//   - It speaks no proxy protocol: SOCKS5 and HTTP clients stay in the
//     front ends' own tests.
//   - It never reaches beyond 127.0.0.1 or the in-memory network; every
//     helper that blocks on a real socket is
//     bounded by IOTimeout, and everything it starts is stopped at t's
//     cleanup.
//   - It is for tests only; no production code imports it.
//
// No spec/ section is normative for this package.
package proxytest
