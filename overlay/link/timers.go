package link

import (
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// The link's two timers run in the writer goroutine's select (writeLoop):
//
//	keepalive  KeepAlive after the last write              send a PADDING cell
//	idle       a Read has waited IdleTimeout for data      close with ErrIdle
//
// A write blocked for IdleTimeout fails on the conn's write deadline
// (writer.write) and closes the link with ErrWriteTimeout.

// paddingCell is the wire form of a PADDING cell: circuit 0, command 0, a
// zero body.
var paddingCell [cell.Size]byte

// timerKeepAlive sends one PADDING cell because nothing was written for
// KeepAlive.
func (w *writer) timerKeepAlive() error {
	w.buf = bufPool.Get().(*[]byte)
	out := appendFrameHeader((*w.buf)[:0], MinMessageLen)
	out = append(out, paddingCell[:]...)
	out, err := w.l.send.seal(out, FrameHeaderLen)
	if err == nil {
		w.l.messages.Add(1)
		err = w.write(out)
	}
	*w.buf = out[:0]
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
