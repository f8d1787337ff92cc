package link

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

var errSendHello = errors.New("link: HELLO is sent by the link itself")

// Send queues c for sending and takes ownership of it; on error c is freed.
// It never waits for the network: cells go out in Send order from the
// writer goroutine. After the link closed it returns ErrClosed. A Send that
// finds Config.MaxQueue cells already waiting drops c and returns
// ErrQueueFull; the link stays open, and a peer that stops reading for good
// is caught by the write timeout.
func (l *Link) Send(c *cell.Cell) error {
	if c.Cmd() == cell.CmdHello {
		c.Free()
		return errSendHello
	}
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		c.Free()
		return ErrClosed
	}
	if len(l.q)+l.inflight >= l.maxQueue {
		l.qmu.Unlock()
		c.Free()
		return ErrQueueFull
	}
	l.q = append(l.q, c)
	first := len(l.q) == 1
	l.qmu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// drainQueue frees the cells left when the writer exits. Sends after
// closeWith do not queue, so nothing is added afterwards.
func (l *Link) drainQueue() {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	for i, c := range l.q {
		c.Free()
		l.q[i] = nil
	}
	l.q = nil
	for i, c := range l.batch {
		if c != nil {
			c.Free()
		}
		l.batch[i] = nil
	}
	l.batch = nil
	l.inflight = 0
}

// writeLoop is the writer goroutine: it waits for cells or a timer and
// writes. It returns nil when the link is shutting down, or the error that
// must close it.
func (l *Link) writeLoop() error {
	w := writer{l: l}
	keepAlive := time.NewTimer(l.keepAlive)
	defer keepAlive.Stop()
	idle := time.NewTimer(l.idle)
	defer idle.Stop()
	for {
		wrote, err := w.flushQueue()
		if err != nil {
			return err
		}
		if wrote {
			keepAlive.Reset(l.keepAlive)
		}
		select {
		case <-l.wake:
		case <-keepAlive.C:
			if err := w.timerKeepAlive(); err != nil {
				return err
			}
			keepAlive.Reset(l.keepAlive)
		case <-idle.C:
			d, err := l.timerIdle()
			if err != nil {
				return err
			}
			idle.Reset(d)
		case <-l.quit:
			return nil
		}
	}
}

// bufPool holds write buffers, so an idle link keeps none.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufLen)
	return &b
}}

// writer is the writer goroutine's state.
type writer struct {
	l   *Link
	buf *[]byte   // from bufPool while there is something to write
	wdl time.Time // the write deadline currently set on the conn
}

// flushQueue writes every queued cell, taking the whole queue at each turn
// and batching up to MaxCellsPerMessage cells per Noise message and up to
// writeBatchLen bytes per conn.Write. It returns whether it wrote anything.
func (w *writer) flushQueue() (wrote bool, err error) {
	l := w.l
	var out []byte
	for {
		l.qmu.Lock()
		l.batch, l.q = l.q, l.batch[:0]
		l.inflight = len(l.batch)
		l.qmu.Unlock()
		if len(l.batch) == 0 {
			break
		}
		if out == nil {
			w.buf = bufPool.Get().(*[]byte)
			out = (*w.buf)[:0]
		}
		for i := 0; i < len(l.batch); {
			if len(out) >= writeBatchLen {
				if err := w.write(out); err != nil {
					return true, err
				}
				out = out[:0]
			}
			n := min(len(l.batch)-i, MaxCellsPerMessage)
			if out, err = w.appendMessage(out, l.batch[i:i+n]); err != nil {
				return true, err
			}
			i += n
		}
		l.batch = l.batch[:0]
	}
	if out == nil {
		return false, nil
	}
	if len(out) > 0 {
		err = w.write(out)
	}
	*w.buf = out[:0]
	bufPool.Put(w.buf)
	w.buf = nil
	return true, err
}

// appendMessage appends one frame holding cells and frees them.
func (w *writer) appendMessage(out []byte, cells []*cell.Cell) ([]byte, error) {
	off := len(out)
	out = appendFrameHeader(out, len(cells)*cell.Size+TagLen)
	for i, c := range cells {
		out = append(out, c.Bytes()...)
		c.Free()
		cells[i] = nil
	}
	w.l.cellsSent.Add(uint64(len(cells)))
	w.l.messages.Add(1)
	return w.l.send.seal(out, off+FrameHeaderLen)
}

// write writes b, keeping a write deadline IdleTimeout ahead so that a
// peer that stops reading cannot block the writer for ever. The deadline
// is moved only when a quarter of it has passed, so most writes do not
// touch it.
func (w *writer) write(b []byte) error {
	l := w.l
	now := time.Now()
	if w.wdl.Sub(now) < l.idle*3/4 {
		w.wdl = now.Add(l.idle)
		if err := l.conn.SetWriteDeadline(w.wdl); err != nil {
			return writeErr(err)
		}
	}
	_, err := l.conn.Write(b)
	l.writes.Add(1)
	l.bytesSent.Add(uint64(len(b)))
	if err != nil {
		return writeErr(err)
	}
	return nil
}

func writeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: peer stopped reading", ErrWriteTimeout)
	}
	return fmt.Errorf("link: write: %w", scrub(err))
}
