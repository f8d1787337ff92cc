package link

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
)

// Moving a link to another connection (spec/links.md §5.4): after hole
// punching, the two ends of a relayed link carry the same Noise session on
// a direct connection instead, so no circuit or stream notices.

// MoveVersion is the LinkMove subprotocol version this package speaks.
const MoveVersion = 1

// MoveTokenLen is the size of a link's move token.
const MoveTokenLen = 32

// moveTimeout bounds the wait of a reader that got the peer's MOVE for
// the connection Move gives it.
const moveTimeout = 10 * time.Second

var (
	// ErrMoveUnsupported is returned by Move when the peer's HELLO does
	// not list LinkMove.
	ErrMoveUnsupported = errors.New("link: the peer cannot move the link")
	// ErrMoved is returned by a second Move: a link moves once.
	ErrMoved = errors.New("link: the link has moved already")
)

// moveCell is the wire form of a MOVE cell: circuit 0, command MOVE, a
// zero body.
var moveCell = func() (b [cell.Size]byte) {
	b[4] = byte(cell.CmdMove)
	return b
}()

// MoveToken returns the token that binds a new connection to this link
// (spec/links.md §5.4): SHA-256("darkmatter link move" || 0x00 || the
// handshake hash). Both ends compute the same; nobody else knows it.
func (l *Link) MoveToken() [MoveTokenLen]byte { return l.moveToken }

func moveToken(binding [32]byte) [MoveTokenLen]byte {
	h := sha256.New()
	h.Write([]byte("darkmatter link move\x00"))
	h.Write(binding[:])
	return [MoveTokenLen]byte(h.Sum(nil))
}

// CanMove reports whether both ends speak LinkMove.
func (l *Link) CanMove() bool {
	return l.peerProto.Supports(protover.LinkMove, MoveVersion)
}

// Move continues the link on conn, a connection to the same peer that
// the caller has bound to this link (the initiator of the move wrote the
// move preamble and token on it; the other end checked them): the writer
// sends a MOVE cell as the last thing on the old connection and writes on
// conn from then on; the reader switches to conn after the peer's MOVE.
// Once both have switched the old connection is closed. Cells in flight
// are neither lost nor reordered. Move returns at once; a link moves only
// once. The link takes conn over, also on error (a conn it holds already
// stays open).
func (l *Link) Move(conn net.Conn) error {
	if !l.CanMove() {
		conn.Close()
		return ErrMoveUnsupported
	}
	l.connMu.Lock()
	switch {
	case l.connClosed:
		l.connMu.Unlock()
		conn.Close()
		return ErrClosed
	case l.next != nil:
		l.connMu.Unlock()
		if conn != l.next {
			conn.Close()
		}
		return ErrMoved
	}
	l.next = conn
	l.conns = append(l.conns, conn)
	close(l.nextReady)
	l.connMu.Unlock()
	l.cur.Store(&conn)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// Moved reports whether the link carries its cells on a connection given
// to Move: both directions have switched and the old connection is
// closed.
func (l *Link) Moved() bool { return l.oldClosed.Load() }

// nextConn returns the connection Move gave, or nil.
func (l *Link) nextConn() net.Conn {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	return l.next
}

// moveWriter, on the writer goroutine, sends MOVE on the old connection
// and continues on the new one, once Move has given one.
func (w *writer) moveWriter() error {
	l := w.l
	if w.moved {
		return nil
	}
	select {
	case <-l.nextReady: // Move has given a connection
	default:
		return nil // the usual case: a channel check, no lock
	}
	next := l.nextConn()
	out := appendFrameHeader(make([]byte, 0, FrameHeaderLen+cell.Size*2+TagLen), 0)
	out = append(out, moveCell[:]...)
	out, err := w.sealMessage(out, 0)
	if err != nil {
		return err
	}
	if err := w.write(out); err != nil {
		return err
	}
	w.moved, w.conn, w.wdl = true, next, time.Time{}
	l.switchedOne()
	return nil
}

// moveReader, on the reader goroutine after a message that held MOVE,
// waits for Move's connection and reads from it from now on.
func (l *Link) moveReader() error {
	if !l.CanMove() {
		return protoErr("MOVE from a peer that did not list LinkMove")
	}
	if l.rd.buffered() {
		return protoErr("bytes after MOVE on the old connection")
	}
	t := time.NewTimer(moveTimeout)
	defer t.Stop()
	select {
	case <-l.nextReady:
	case <-l.quit:
		return ErrClosed
	case <-t.C:
		return fmt.Errorf("%w: MOVE, but no new connection within %v", ErrProtocol, moveTimeout)
	}
	if l.readMoved {
		return protoErr("second MOVE")
	}
	l.readMoved = true
	l.rd.conn = l.nextConn()
	l.switchedOne()
	return nil
}

// switchedOne counts a direction that has switched; after both, the old
// connection is closed.
func (l *Link) switchedOne() {
	if l.switched.Add(1) != 2 {
		return
	}
	l.connMu.Lock()
	old := l.conns[0]
	l.conns = l.conns[1:]
	l.connMu.Unlock()
	old.Close()
	l.oldClosed.Store(true)
}

// closeConns closes every connection of the link.
func (l *Link) closeConns() {
	l.connMu.Lock()
	l.connClosed = true
	cs := l.conns
	l.connMu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}
