package link

import (
	"errors"
	"fmt"
	"io"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// readLoop is the reader goroutine: it reads frames, decrypts them in
// place and hands the cells to the Handler. It returns the error that ends
// the link (nil never: a local Close shows up as a read error, which
// closeWith then ignores).
func (l *Link) readLoop() error {
	for {
		msg, err := l.rd.next(MaxMessageLen)
		if err != nil {
			return readErr(err)
		}
		move, err := l.receive(msg)
		if err != nil {
			return err
		}
		if move {
			if err := l.moveReader(); err != nil {
				return err
			}
		}
		select {
		case <-l.quit:
			return ErrClosed
		default:
		}
	}
}

// receive checks, decrypts and dispatches one transport message. A
// message whose last cell is REKEY rekeys the receive cipher after it; a
// message that holds MOVE is the last on its connection (move is true).
func (l *Link) receive(msg []byte) (move bool, err error) {
	n := len(msg)
	if n == 0 {
		return false, protoErr("reject frame after the handshake")
	}
	if n < MinMessageLen || (n-TagLen)%cell.Size != 0 {
		return false, protoErr("transport message of %d bytes is not whole cells", n)
	}
	pt, oerr := l.recv.open(msg)
	if oerr != nil {
		return false, protoErr("transport message failed authentication")
	}
	cells := len(pt) / cell.Size
	l.bytesRecv.Add(uint64(FrameHeaderLen + n))
	l.cellsRecv.Add(uint64(cells))
	for off := 0; off < len(pt); off += cell.Size {
		b := pt[off : off+cell.Size]
		switch cell.Command(b[4]) {
		case cell.CmdPadding:
			continue
		case cell.CmdHello:
			return false, protoErr("second HELLO")
		case cell.CmdMove:
			move = true
			continue
		case cell.CmdRekey:
			if off+cell.Size != len(pt) {
				return false, protoErr("REKEY is not the last cell of its message")
			}
			if err := l.recv.rekey(); err != nil {
				return false, err
			}
			l.rekeysRecv.Add(1)
			continue
		}
		c, perr := cell.Parse(b)
		if errors.Is(perr, cell.ErrCommand) {
			// A command of a newer Link version: drop and count it.
			l.unknownCells.Add(1)
			continue
		}
		if perr != nil {
			return false, protoErr("%w", perr)
		}
		if l.h == nil {
			c.Free()
			continue
		}
		l.h.HandleCell(l, c)
	}
	return move, nil
}

func readErr(err error) error {
	switch {
	case errors.Is(err, ErrProtocol):
		return err
	case errors.Is(err, io.EOF):
		return ErrPeerClosed
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w mid-frame: %w", ErrPeerClosed, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("link: read: %w", scrub(err))
}
