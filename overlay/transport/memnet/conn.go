package memnet

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/internal/deadline"
)

// conn is one end of a memnet connection. It implements net.Conn, plus
// CloseWrite like *net.TCPConn.
type conn struct {
	local, remote *Addr
	rx            *pipe         // bytes to this end
	tx            *pipe         // bytes from this end
	closed        chan struct{} // closed by Close
	release       func()        // frees the dialer's source port; nil for accepted ends

	readMu  sync.Mutex // one Read at a time, as the net package's fd lock
	writeMu sync.Mutex // one Write at a time, so Writes do not interleave
	rdl     deadline.Deadline
	wdl     deadline.Deadline

	closeOnce sync.Once
}

var _ net.Conn = (*conn)(nil)

// newConnPair returns the dialer's end (local a) and the listener's end
// (local b) of a new connection with bufSize bytes buffered each way.
func newConnPair(a, b *Addr, bufSize int) (client, server *conn) {
	ab, ba := newPipe(bufSize), newPipe(bufSize)
	client = &conn{local: a, remote: b, rx: ba, tx: ab, closed: make(chan struct{}),
		rdl: deadline.Make(), wdl: deadline.Make()}
	server = &conn{local: b, remote: a, rx: ab, tx: ba, closed: make(chan struct{}),
		rdl: deadline.Make(), wdl: deadline.Make()}
	return client, server
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "memnet", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads buffered bytes, waiting for some if there are none. After the
// peer closes (or half-closes) it returns what is left, then io.EOF.
func (c *conn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if deadline.IsClosed(c.closed) {
			return 0, c.opErr("read", net.ErrClosed)
		}
		dl := c.rdl.Wait()
		if deadline.IsClosed(dl) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			return 0, nil
		}
		n, eof := c.rx.read(b)
		if n > 0 {
			return n, nil
		}
		if eof {
			return 0, io.EOF
		}
		select {
		case <-c.rx.dataCh:
		case <-c.rx.wdone:
		case <-c.closed:
		case <-dl:
		}
	}
}

// Write buffers all of b, waiting for room as needed. It returns early, with
// the count written so far, on Close, on the peer's Close (ErrBrokenPipe)
// or on the write deadline.
func (c *conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	written := 0
	for {
		if deadline.IsClosed(c.closed) {
			return written, c.opErr("write", net.ErrClosed)
		}
		dl := c.wdl.Wait()
		if deadline.IsClosed(dl) {
			return written, c.opErr("write", os.ErrDeadlineExceeded)
		}
		n, err := c.tx.write(b[written:])
		written += n
		if err != nil {
			return written, c.opErr("write", err)
		}
		if written == len(b) {
			return written, nil
		}
		if n > 0 {
			continue
		}
		select {
		case <-c.tx.spaceCh:
		case <-c.tx.rdone:
		case <-c.closed:
		case <-dl:
		}
	}
}

// Close closes both directions. Blocked Reads and Writes on this end return
// net.ErrClosed; the peer reads the rest of the data and then io.EOF, and
// its Writes fail with ErrBrokenPipe. Close is idempotent.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.rx.closeRead()
		c.tx.closeWrite()
		c.rdl.Stop()
		c.wdl.Stop()
		if c.release != nil {
			c.release()
		}
	})
	return nil
}

// CloseWrite shuts down the writing side, like (*net.TCPConn).CloseWrite:
// the peer reads io.EOF after the buffered data, and later Writes on this
// end fail with net.ErrClosed. Reading goes on.
func (c *conn) CloseWrite() error {
	if deadline.IsClosed(c.closed) {
		return c.opErr("close", net.ErrClosed)
	}
	c.tx.closeWrite()
	return nil
}

// LocalAddr returns this end's address, a *Addr.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address, a *Addr.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if deadline.IsClosed(c.closed) {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.Set(t)
	c.wdl.Set(t)
	return nil
}

// SetReadDeadline sets the deadline for current and future Reads.
func (c *conn) SetReadDeadline(t time.Time) error {
	if deadline.IsClosed(c.closed) {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for current and future Writes.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if deadline.IsClosed(c.closed) {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.Set(t)
	return nil
}
