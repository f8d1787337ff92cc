// Package streamerr defines why a stream failed, shared by the circuit layer
// (which carries the reason in an END relay message, spec/streams.md) and the
// proxies in apps/ (which map it to SOCKS5 reply codes and HTTP statuses).
//
// It does not know about circuits, cells or sockets.
package streamerr
