package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

var errSendLinkCell = errors.New("link: HELLO and REKEY cells are sent by the link itself")

// Send queues c for sending and takes ownership of it; on error c is freed.
// It refuses HELLO and REKEY, which only the link sends; any other command
// goes out, even one this package does not know (the peer drops those it
// does not know: send them only if its PeerProtocols list them).
// It never waits for the network: cells go out in Send order from the
// writer goroutine. After the link closed it returns ErrClosed. A Send that
// finds Config.MaxQueue cells already waiting drops c and returns
// ErrQueueFull; the link stays open, and a peer that stops reading for good
// is caught by the write timeout.
func (l *Link) Send(c *cell.Cell) error {
	if cmd := c.Cmd(); cmd == cell.CmdHello || cmd == cell.CmdRekey {
		c.Free()
		return errSendLinkCell
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
	rekey := time.NewTimer(l.rekeyInterval)
	defer rekey.Stop()
	w := writer{l: l, rekeyTimer: rekey}
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
		case <-rekey.C:
			if err := w.timerRekey(); err != nil {
				return err
			}
			keepAlive.Reset(l.keepAlive)
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

	sinceRekey int         // messages sealed with the current send key
	rekeyDue   bool        // RekeyInterval passed: the next message ends with REKEY
	rekeyTimer *time.Timer // writeLoop's RekeyInterval timer
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
			n := min(len(l.batch)-i, w.room())
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

// appendMessage appends one frame holding cells (at most w.room()) and
// frees them.
func (w *writer) appendMessage(out []byte, cells []*cell.Cell) ([]byte, error) {
	off := len(out)
	out = appendFrameHeader(out, 0)
	for i, c := range cells {
		out = append(out, c.Bytes()...)
		c.Free()
		cells[i] = nil
	}
	return w.sealMessage(out, off)
}

// rekeyNext reports whether the next message must end with a REKEY cell:
// it is the RekeyMessages-th with the current key, or RekeyInterval has
// passed.
func (w *writer) rekeyNext() bool {
	return w.rekeyDue || w.sinceRekey+1 >= w.l.rekeyMessages
}

// room returns how many cells the next message can take from the queue:
// one less when it must end with REKEY.
func (w *writer) room() int {
	if w.rekeyNext() {
		return MaxCellsPerMessage - 1
	}
	return MaxCellsPerMessage
}

// sealMessage completes the frame that starts at out[off]: a header and
// whole cells, to which it adds a REKEY cell if one is due. It sets the
// length, encrypts the message in place and, after a REKEY, rekeys the
// send cipher (spec/links.md §5.2).
func (w *writer) sealMessage(out []byte, off int) ([]byte, error) {
	l := w.l
	rekey := w.rekeyNext()
	if rekey {
		out = append(out, rekeyCell[:]...)
	}
	n := len(out) - off - FrameHeaderLen
	binary.BigEndian.PutUint16(out[off:], uint16(n+TagLen))
	out, err := l.send.seal(out, off+FrameHeaderLen)
	if err != nil {
		return nil, err
	}
	l.cellsSent.Add(uint64(n / cell.Size))
	l.messages.Add(1)
	if !rekey {
		w.sinceRekey++
		return out, nil
	}
	if err := l.send.rekey(); err != nil {
		return nil, err
	}
	l.rekeysSent.Add(1)
	w.sinceRekey, w.rekeyDue = 0, false
	if w.rekeyTimer != nil {
		w.rekeyTimer.Reset(l.rekeyInterval)
	}
	return out, nil
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
