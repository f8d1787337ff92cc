package quictr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// conn is a link: one bidirectional stream of its own QUIC connection.
//
// Closing (spec/links-quic.md §3): Close sends FIN and STOP_SENDING on the
// stream and returns; the QUIC connection itself must outlive it until
// the peer has everything, or CONNECTION_CLOSE would discard data still in
// flight. QUIC tells only the listening side's peer when that is: the
// listener admits one stream, and when that stream is complete in both
// directions (all data and both FINs delivered and acknowledged) quic-go
// raises the stream limit, so the dialer's OpenStreamSync returns. Hence
// the dialer, once its app has closed, waits for that and then sends
// CONNECTION_CLOSE; the listening side, once closed, waits for the
// dialer's CONNECTION_CLOSE. Either side gives up after Config.Linger.
type conn struct {
	qc     *quic.Conn
	st     *quic.Stream
	dialer bool
	local  net.Addr
	linger time.Duration
	sock   *socket
	slot   *slot // listener side: backlog slot, freed by Accept

	closed    atomic.Bool
	closeOnce sync.Once
	wmu       sync.Mutex // serialises Write, CloseWrite and Close on st
}

// newConn wraps the link stream st of qc; sock must hold a reference for
// it, which the conn releases once the QUIC connection is closed.
func newConn(qc *quic.Conn, st *quic.Stream, dialer bool, local net.Addr, linger time.Duration, sock *socket) *conn {
	c := &conn{qc: qc, st: st, dialer: dialer, local: local, linger: linger, sock: sock}
	sock.add(c)
	return c
}

func (c *conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, fmt.Errorf("quictr: read: %w", net.ErrClosed)
	}
	n, err := c.st.Read(b)
	if err != nil && err != io.EOF {
		err = c.mapErr("read", err)
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, fmt.Errorf("quictr: write: %w", net.ErrClosed)
	}
	c.wmu.Lock()
	n, err := c.st.Write(b)
	c.wmu.Unlock()
	if err != nil {
		err = c.mapErr("write", err)
	}
	return n, err
}

// mapErr reports errors after Close as net.ErrClosed and the peer's
// closing of the connection as an unexpected EOF (a clean end shows as
// io.EOF on the stream first). Deadline errors pass through: they match
// os.ErrDeadlineExceeded and are net.Errors with Timeout true.
func (c *conn) mapErr(op string, err error) error {
	if c.closed.Load() {
		return fmt.Errorf("quictr: %s: %w", op, net.ErrClosed)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote {
		return fmt.Errorf("quictr: %s: peer closed the connection: %w", op, io.ErrUnexpectedEOF)
	}
	return err
}

// CloseWrite half-closes the conn: it sends FIN, and the peer reads io.EOF
// after the data written so far. Reading goes on.
func (c *conn) CloseWrite() error {
	if c.closed.Load() {
		return fmt.Errorf("quictr: close write: %w", net.ErrClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.st.Close()
}

// Close closes the stream (FIN after the data written so far, and no more
// reading) and then, in the background, the QUIC connection (see conn).
// A Write blocked in another goroutine returns net.ErrClosed. Close is
// idempotent.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.st.SetWriteDeadline(time.Now())
		c.wmu.Lock()
		c.st.CancelRead(codeClosed)
		c.st.Close()
		c.wmu.Unlock()
		go c.lingerAndClose()
	})
	return nil
}

func (c *conn) lingerAndClose() {
	ctx, cancel := context.WithTimeout(c.qc.Context(), c.linger)
	defer cancel()
	if c.dialer {
		c.qc.OpenStreamSync(ctx) // returns once the peer's stream is complete
	} else {
		<-ctx.Done() // the dialer closes the connection
	}
	c.qc.CloseWithError(codeClosed, "")
	c.sock.done(c)
}

// refuse closes a conn that Accept never returned.
func (c *conn) refuse() {
	c.closed.Store(true)
	c.qc.CloseWithError(codeRefused, "")
	c.slot.release()
	c.sock.done(c)
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

func (c *conn) SetDeadline(t time.Time) error      { return c.st.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.st.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.st.SetWriteDeadline(t) }
