package proxyserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// Dialer opens a stream through the overlay to target, "host:port" where
// host is a domain name, an IPv4 literal or an IPv6 literal
// (net.JoinHostPort form, so an IPv6 host is in brackets). isolation is the
// stream-isolation key: streams with different keys never share a circuit.
// The front ends' Dialer types are this one.
type Dialer interface {
	DialStream(ctx context.Context, target string, isolation string) (net.Conn, error)
}

// Tuning defaults of the front ends.
const (
	// DefaultHandshakeTimeout bounds a client's whole request header (a
	// SOCKS5 greeting, authentication and request; an HTTP request line
	// and headers). A local application sends it in one segment, so a
	// client that takes longer is stuck or hostile (slowloris).
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultDialTimeout bounds building a circuit and opening a stream.
	DefaultDialTimeout = 2 * time.Minute
)

// Options configure a Server. A front end's exported Server holds the
// user-facing fields (documented there for its protocol) and hands them to
// Serve with its name.
type Options struct {
	// Name starts the errors Serve returns and the Server's own log lines
	// ("socks" gives "socks: ..."). Required.
	Name string
	// Dialer opens every outgoing stream. Serve refuses to start without
	// it.
	Dialer Dialer
	// Logf receives the Server's own lines (retried Accept failures);
	// nil is silent. Front ends log their protocol's failures themselves.
	Logf safelog.Logf
	// HandshakeTimeout is what HandshakeTimeout returns; zero means
	// DefaultHandshakeTimeout. What it bounds is the front end's choice.
	HandshakeTimeout time.Duration
	// DialTimeout bounds each Dial; zero means DefaultDialTimeout.
	DialTimeout time.Duration
}

// Handler serves one accepted connection. ctx is canceled when the Server is
// closed. The Server closes c after the Handler returns.
type Handler func(ctx context.Context, c net.Conn)

// Server runs accept loops, dials streams for its handlers and tracks every
// connection, so that Close can end them all. The zero value is ready to
// use. A Server must not be copied after first use.
type Server struct {
	// mu guards the following fields.
	mu        sync.Mutex
	closed    bool
	opts      Options       // from the latest Serve
	done      chan struct{} // closed by Close
	ctx       context.Context
	cancel    context.CancelFunc
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}

	wg sync.WaitGroup // Serve loops and connection goroutines
}

// initLocked sets up the lazily created fields. s.mu must be held.
func (s *Server) initLocked() {
	if s.done == nil {
		s.done = make(chan struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
	}
}

// Serve accepts connections on l and runs h for each in its own goroutine.
// It takes ownership of l and closes it when it returns. After Close it
// returns net.ErrClosed; without o.Dialer it returns an error at once;
// otherwise it returns the error that stopped Accept. Every Serve call on a
// Server must pass the same Options: Dial and HandshakeTimeout use them.
func (s *Server) Serve(l net.Listener, o Options, h Handler) error {
	if o.Dialer == nil {
		l.Close()
		return fmt.Errorf("%s: Server.Dialer is nil", o.Name)
	}
	logf := o.Logf.Prefix(o.Name + ": ")
	s.mu.Lock()
	s.initLocked()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	s.opts = o
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
				logf.Printf("accept failed, retrying in %v", backoff)
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
			h(s.ctx, c)
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

// options returns the Options of the latest Serve.
func (s *Server) options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// HandshakeTimeout returns the Options' HandshakeTimeout, or
// DefaultHandshakeTimeout if it is not positive.
func (s *Server) HandshakeTimeout() time.Duration {
	return timeout(s.options().HandshakeTimeout, DefaultHandshakeTimeout)
}

// Dial opens a stream to target with the Options' Dialer, bounded by
// ctx and by DialTimeout, and registers it so that Close closes it. The
// caller must call Release when done with it. After Close, Dial closes the
// stream it got and returns net.ErrClosed.
//
// A target whose host must never leave the client (specialname.Check:
// a mistyped .dark address or name, .onion, localhost, ...) is refused
// with that error before the Dialer is asked, and a target that is not
// "host:port" with streamerr BadAddress. A valid .dark address and a
// valid .dark name are the Dialer's to reach (the node dials hidden
// services and resolves names through the network without any name
// leaving it; spec/streams.md §7).
func (s *Server) Dial(ctx context.Context, target, isolation string) (net.Conn, error) {
	o := s.options()
	if o.Dialer == nil {
		return nil, fmt.Errorf("%s: Server.Dialer is nil", o.Name)
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, streamerr.New(streamerr.BadAddress)
	}
	// A valid .dark address or name goes to the Dialer, which reaches
	// hidden services and resolves names itself; every other special name
	// stops here.
	switch err := specialname.Check(host); err {
	case nil, specialname.ErrHiddenService, specialname.ErrName:
	default:
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout(o.DialTimeout, DefaultDialTimeout))
	defer cancel()
	c, err := o.Dialer.DialStream(ctx, target, isolation)
	if err != nil {
		return nil, err
	}
	if !s.trackStream(c) {
		c.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

// trackStream registers an outgoing stream so that Close closes it. It
// reports false after Close.
func (s *Server) trackStream(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Release closes a stream from Dial and forgets it. It may be called more
// than once.
func (s *Server) Release(c net.Conn) { s.untrack(c) }

// untrack closes c and forgets it.
func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops all Serve loops, closes their listeners and every tracked
// connection, cancels the context handed to handlers, and waits for all
// Serve loops and handler goroutines to return. It can be called more than
// once, and before any Serve; it always returns nil.
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

// timeout returns d if it is positive and def otherwise.
func timeout(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
