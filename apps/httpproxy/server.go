package httpproxy

import (
	"net"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Tuning defaults.
const (
	DefaultHandshakeTimeout = proxyserve.DefaultHandshakeTimeout // 5 s
	DefaultDialTimeout      = proxyserve.DefaultDialTimeout      // 2 min
)

// Dialer opens a stream through the overlay to target, "host:port" where host
// is a domain name, an IPv4 literal or an IPv6 literal (net.JoinHostPort
// form, so an IPv6 host is in brackets). isolation is the stream-isolation
// key: streams with different keys never share a circuit. A stream that
// implements CloseWrite carries the client's half-close.
type Dialer = proxyserve.Dialer

// Server is an HTTP proxy server. Set the exported fields before the first
// call to Serve and do not change them afterwards. The zero value is not usable: it
// needs a Dialer.
type Server struct {
	// Dialer opens every outgoing stream. Required.
	Dialer Dialer
	// Logf receives one line per failed connection, with addresses
	// redacted through safelog.S. Nil is silent.
	Logf safelog.Logf
	// HandshakeTimeout bounds the time to read each request's line and
	// headers, including the idle time before a keep-alive request.
	// Zero means DefaultHandshakeTimeout (5 s).
	HandshakeTimeout time.Duration
	// DialTimeout bounds each DialStream call. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	srv proxyserve.Server // accept loops, dials, Close
}

// Serve accepts connections on l and serves each in its own goroutine. It
// takes ownership of l and closes it when it returns. After Close it returns
// net.ErrClosed; otherwise it returns the error that stopped Accept.
func (s *Server) Serve(l net.Listener) error {
	return s.srv.Serve(l, proxyserve.Options{
		Name:             "httpproxy",
		Dialer:           s.Dialer,
		Logf:             s.Logf,
		HandshakeTimeout: s.HandshakeTimeout,
		DialTimeout:      s.DialTimeout,
	}, s.handle)
}

// Close stops all Serve loops, closes their listeners and every active
// client connection and stream, and waits for all goroutines of the Server
// to return. It can be called more than once; it always returns nil.
func (s *Server) Close() error { return s.srv.Close() }
