package link

import (
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// The link's three timers run in the writer goroutine's select (writeLoop):
//
//	keepalive  KeepAlive after the last write              send a PADDING cell
//	idle       a Read has waited IdleTimeout for data      close with ErrIdle
//	rekey      RekeyInterval after the last rekey          send a REKEY cell
//
// The writer also rekeys after RekeyMessages messages (writer.sealMessage),
// and that restarts the rekey timer.
//
// A write blocked for IdleTimeout fails on the conn's write deadline
// (writer.write) and closes the link with ErrWriteTimeout.

// paddingCell is the wire form of a PADDING cell: circuit 0, command 0, a
// zero body.
var paddingCell [cell.Size]byte

// rekeyCell is the wire form of a REKEY cell: circuit 0, command REKEY, a
// zero body.
var rekeyCell = func() (b [cell.Size]byte) {
	b[4] = byte(cell.CmdRekey)
	return b
}()

// timerKeepAlive sends one PADDING cell because nothing was written for
// KeepAlive.
func (w *writer) timerKeepAlive() error {
	return w.writeLinkCell(paddingCell[:])
}

// timerRekey sends a REKEY cell and rekeys because the send key has been
// in use for RekeyInterval.
func (w *writer) timerRekey() error {
	w.rekeyDue = true
	return w.writeLinkCell(nil)
}

// writeLinkCell writes one message holding c (a link cell, or nothing when
// the message is only a due REKEY) and any REKEY that is due.
func (w *writer) writeLinkCell(c []byte) error {
	w.buf = bufPool.Get().(*[]byte)
	out := appendFrameHeader((*w.buf)[:0], 0)
	out = append(out, c...)
	out, err := w.sealMessage(out, 0)
	if err == nil {
		err = w.write(out)
	}
	if out != nil {
		*w.buf = out[:0]
	}
	bufPool.Put(w.buf)
	w.buf = nil
	return err
}

// timerIdle checks whether the reader has waited IdleTimeout for data. It
// returns ErrIdle if so, else how long to wait before checking again.
func (l *Link) timerIdle() (time.Duration, error) {
	idle := l.rd.idleFor()
	if idle >= l.idle {
		return 0, fmt.Errorf("%w: peer silent for %v", ErrIdle, idle.Round(time.Millisecond))
	}
	return l.idle - idle, nil
}
