package quictr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// errRefused rejects a connection attempt at admission; quic-go answers
// it with CONNECTION_REFUSED.
var errRefused = errors.New("quictr: connection refused")

// listener accepts QUIC connections, waits for each one's link stream and
// preamble, and queues the result for Accept. It holds at most
// Config.Backlog connections that Accept has not yet returned (at most
// Config.BacklogPerHost from one IP address), counting from admission,
// before the TLS handshake: the rest are refused, so a peer that opens
// connections and never a stream, or never finishes the handshake, holds
// a bounded share. A slot is freed when Accept returns the conn or the
// connection dies (handshake or preamble timeout, peer close).
type listener struct {
	cfg     Config
	ql      *quic.Listener
	addr    net.Addr
	sock    *socket
	onClose func()

	ready  chan *conn
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex // guards the fields below
	closed  bool
	pending int
	perHost map[string]int
}

func newListener(cfg Config) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{
		cfg:     cfg,
		ready:   make(chan *conn, cfg.Backlog),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		perHost: make(map[string]int),
	}
}

func (l *listener) start(ql *quic.Listener, addr net.Addr, sock *socket, onClose func()) {
	l.ql, l.addr, l.sock, l.onClose = ql, addr, sock, onClose
	l.wg.Go(l.acceptLoop)
}

type slotKey struct{}

// slot is one admitted connection's place in the backlog.
type slot struct {
	once sync.Once
	l    *listener
	host string
}

func (s *slot) release() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.l.mu.Lock()
		s.l.pending--
		if s.l.perHost[s.host]--; s.l.perHost[s.host] <= 0 {
			delete(s.l.perHost, s.host)
		}
		s.l.mu.Unlock()
	})
}

// connContext admits a new incoming connection or refuses it (quic-go
// calls it before the handshake).
func (l *listener) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	host := hostOf(info.RemoteAddr)
	l.mu.Lock()
	if l.closed || l.pending >= l.cfg.Backlog || l.perHost[host] >= l.cfg.BacklogPerHost {
		l.mu.Unlock()
		return nil, errRefused
	}
	l.pending++
	l.perHost[host]++
	l.mu.Unlock()
	s := &slot{l: l, host: host}
	context.AfterFunc(ctx, s.release)
	return context.WithValue(ctx, slotKey{}, s), nil
}

// verifySource makes quic-go demand a Retry round trip (proof that the
// source address is real) once half the backlog is in use, so spoofed
// Initial packets cannot fill it.
func (l *listener) verifySource(net.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending >= l.cfg.Backlog/2
}

func hostOf(a net.Addr) string {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return a.String()
}

func (l *listener) acceptLoop() {
	for {
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			return
		}
		l.wg.Go(func() { l.admit(qc) })
	}
}

// admit waits for qc's link stream and preamble and queues the conn.
func (l *listener) admit(qc *quic.Conn) {
	s, _ := qc.Context().Value(slotKey{}).(*slot)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	st, err := qc.AcceptStream(ctx)
	if err != nil {
		qc.CloseWithError(codeRefused, "")
		return
	}
	stop := context.AfterFunc(ctx, func() { st.SetReadDeadline(time.Now()) })
	var b [1]byte
	_, err = io.ReadFull(st, b[:])
	if !stop() || err != nil || b[0] != preamble {
		qc.CloseWithError(codeRefused, "")
		return
	}
	l.sock.acquire()
	c := newConn(qc, st, false, qc.LocalAddr(), l.cfg.Linger, l.sock)
	c.slot = s
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.refuse()
		return
	}
	select {
	case l.ready <- c:
	default: // cannot happen: ready holds Backlog, admission admits no more
		c.refuse()
	}
}

// Accept returns the next link conn, or an error matching net.ErrClosed
// after Close.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		c.slot.release()
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("quictr: accept: %w", net.ErrClosed)
	}
}

// Close stops accepting and refuses the connections not yet accepted.
// Conns already returned by Accept stay open. Close is idempotent.
func (l *listener) Close() error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.cancel()
		close(l.done)
		l.ql.Close()
		l.wg.Wait()
		for {
			select {
			case c := <-l.ready:
				c.refuse()
				continue
			default:
			}
			break
		}
		if l.onClose != nil {
			l.onClose()
		}
		l.sock.release()
	})
	return nil
}

// Addr is the UDP address the listener's socket is bound to.
func (l *listener) Addr() net.Addr { return l.addr }
