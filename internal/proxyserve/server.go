package proxyserve

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Handler serves one accepted connection. ctx is canceled when the Server is
// closed. The Server closes c after the Handler returns.
type Handler func(ctx context.Context, c net.Conn)

// Server runs accept loops and tracks the connections they serve. The zero
// value is ready to use. A Server must not be copied after first use.
type Server struct {
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
// returns net.ErrClosed; otherwise it returns the error that stopped Accept.
// logf receives a line for each retried Accept failure; nil is silent.
func (s *Server) Serve(l net.Listener, h Handler, logf safelog.Logf) error {
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
			defer s.Untrack(c)
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

// Track registers an outgoing stream so that Close closes it. It reports
// false after Close; the caller then still owns c and must close it.
// Call Untrack when done with c.
func (s *Server) Track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// Untrack closes c and forgets it.
func (s *Server) Untrack(c net.Conn) {
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

// Timeout returns d if it is positive and def otherwise, for the optional
// timeout fields of the front ends' Servers.
func Timeout(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
