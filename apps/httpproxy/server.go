package httpproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

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

	// mu guards the following fields.
	mu        sync.Mutex
	closed    bool
	done      chan struct{} // closed by Close
	ctx       context.Context
	cancel    context.CancelFunc
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}

	wg sync.WaitGroup // Serve loops and connection goroutines
}

// errNoDialer is returned by Serve when Server.Dialer is nil.
var errNoDialer = errors.New("httpproxy: Server.Dialer is nil")

// initLocked sets up the lazily created fields. s.mu must be held.
func (s *Server) initLocked() {
	if s.done == nil {
		s.done = make(chan struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
	}
}

// Serve accepts connections on l and serves each in its own goroutine. It
// takes ownership of l and closes it when it returns. After Close it returns
// net.ErrClosed; otherwise it returns the error that stopped Accept.
func (s *Server) Serve(l net.Listener) error {
	if s.Dialer == nil {
		l.Close()
		return errNoDialer
	}
	s.mu.Lock()
	s.initLocked()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
		s.wg.Done()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Logf.Printf("httpproxy: accept failed, retrying in %v", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
					return net.ErrClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			return net.ErrClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(s.ctx, c)
		}()
	}
}

// isTemporary reports whether an Accept error is worth retrying, like
// net/http does (EMFILE and similar report Temporary).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers c so that Close closes it, and adds one to s.wg for the
// goroutine that will serve it. It reports false (and adds nothing) after
// Close.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// trackConn registers an outgoing stream so that Close closes it. It reports
// false after Close.
func (s *Server) trackConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops all Serve loops, closes their listeners and every active
// client connection and stream, and waits for all goroutines of the Server
// to return. It can be called more than once; it always returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.initLocked()
	if !s.closed {
		s.closed = true
		close(s.done)
		s.cancel()
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.HandshakeTimeout > 0 {
		return s.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

func (s *Server) dialTimeout() time.Duration {
	if s.DialTimeout > 0 {
		return s.DialTimeout
	}
	return DefaultDialTimeout
}
