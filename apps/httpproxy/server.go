package httpproxy

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Tuning defaults.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultDialTimeout      = 2 * time.Minute
)

// Dialer opens a stream through the overlay to target, "host:port" where host
// is a domain name, an IPv4 literal or an IPv6 literal (net.JoinHostPort
// form, so an IPv6 host is in brackets). isolation is the stream-isolation
// key: streams with different keys never share a circuit.
type Dialer interface {
	DialStream(ctx context.Context, target string, isolation string) (net.Conn, error)
}

// Server is an HTTP proxy server. Set the exported fields before the first call to
// Serve and do not change them afterwards. The zero value is not usable: it
// needs a Dialer.
type Server struct {
	// Dialer opens every outgoing stream. Required.
	Dialer Dialer
	// Logf receives one line per failed connection, with addresses
	// redacted through safelog.S. Nil is silent.
	Logf safelog.Logf
	// HandshakeTimeout bounds the time to read each request's headers,
	// including the idle time before a keep-alive request.
	// Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// DialTimeout bounds each DialStream call. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	srv proxyserve.Server
}

// errNoDialer is returned by Serve when Server.Dialer is nil.
var errNoDialer = errors.New("httpproxy: Server.Dialer is nil")

// Serve accepts connections on l and serves each in its own goroutine. It
// takes ownership of l and closes it when it returns. After Close it returns
// net.ErrClosed; otherwise it returns the error that stopped Accept.
func (s *Server) Serve(l net.Listener) error {
	if s.Dialer == nil {
		l.Close()
		return errNoDialer
	}
	return s.srv.Serve(l, s.handle, s.Logf.Prefix("httpproxy: "))
}

// Close stops all Serve loops, closes their listeners and every active
// client connection and stream, and waits for all goroutines of the Server
// to return. It can be called more than once; it always returns nil.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) handshakeTimeout() time.Duration {
	return proxyserve.Timeout(s.HandshakeTimeout, DefaultHandshakeTimeout)
}

func (s *Server) dialTimeout() time.Duration {
	return proxyserve.Timeout(s.DialTimeout, DefaultDialTimeout)
}
