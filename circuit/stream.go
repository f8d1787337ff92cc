package circuit

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

var errDeadline = os.ErrDeadlineExceeded

// Stream is one end of a stream over a circuit. On the client it is the
// net.Conn an application uses; at the exit it is pumped to and from a TCP
// connection. Reads and writes obey the stream and circuit windows.
type Stream struct {
	e    *edge
	id   uint16
	addr streamAddr
	circ *ClientCirc // nil at the exit
	// halfClose says END DONE closes one direction only (the BEGIN flag,
	// spec/streams.md §4); set before the stream is shared.
	halfClose bool

	// opened reports the BEGIN outcome on the client: nil or the END error.
	opened chan error

	// mu guards the following.
	mu        sync.Mutex
	queue     []*cell.Cell // received DATA cells, oldest first
	off       int          // read offset into queue[0]'s data
	consumed  int          // cells consumed since our last stream SENDME
	recvWin   int          // DATA cells the other edge may still send
	pkgWin    int          // DATA cells we may still send on this stream
	winCh     chan struct{}
	readCh    chan struct{} // signalled when data or EOF arrives
	remoteEnd bool          // END received (or circuit gone)
	endErr    error         // nil for a clean END
	localEnd  bool          // our END sent (CloseWrite or Close)
	local     bool          // Close called
	rdl, wdl  deadline
	doneCh    chan struct{} // closed on Close
	// aborted is closed when the other edge (or the circuit) ended the
	// stream with an error: what is queued for the application is moot.
	aborted   chan struct{}
	isAborted bool
	// measure, if set, gets the bytes read and the time from the first
	// read to the last when the stream is closed here (throughput.go).
	measure             func(bytes uint64, d time.Duration)
	nread               uint64
	firstRead, lastRead time.Time
}

type streamAddr string

func (a streamAddr) Network() string { return "darkmatter" }
func (a streamAddr) String() string  { return string(a) }

func newStream(e *edge, id uint16, target string) *Stream {
	return &Stream{
		e:       e,
		id:      id,
		addr:    streamAddr(target),
		opened:  make(chan error, 1),
		pkgWin:  StreamWindow,
		recvWin: StreamWindow,
		winCh:   make(chan struct{}),
		readCh:  make(chan struct{}, 1),
		doneCh:  make(chan struct{}),
		aborted: make(chan struct{}),
		rdl:     newDeadline(),
		wdl:     newDeadline(),
	}
}

// handle processes a relay message for this stream. It owns c.
func (st *Stream) handle(c *cell.Cell, m cell.RelayMsg) error {
	switch m.Cmd {
	case cell.RelayData:
		st.mu.Lock()
		if st.remoteEnd || st.local {
			st.mu.Unlock()
			c.Free()
			return nil
		}
		if st.recvWin <= 0 {
			st.mu.Unlock()
			c.Free()
			return errProtocol // the other edge ignored the stream window
		}
		st.recvWin--
		st.queue = append(st.queue, c)
		st.mu.Unlock()
		st.signal()
		return nil
	case cell.RelayConnected:
		c.Free()
		select {
		case st.opened <- nil:
		default:
		}
		return nil
	case cell.RelayEnd:
		reason := streamerr.Done
		if len(m.Data) > 0 {
			reason = streamerr.Reason(m.Data[0])
		}
		c.Free()
		if reason == streamerr.Done && st.halfClose {
			st.remoteHalfClosed()
			return nil
		}
		st.remoteClosed(reason)
		return nil
	case cell.RelaySendme:
		c.Free()
		st.mu.Lock()
		st.pkgWin += StreamSendmeInc
		over := st.pkgWin > StreamWindow
		close(st.winCh)
		st.winCh = make(chan struct{})
		st.mu.Unlock()
		if over {
			return errProtocol
		}
		return nil
	default:
		c.Free()
		return errProtocol
	}
}

func (st *Stream) signal() {
	select {
	case st.readCh <- struct{}{}:
	default:
	}
}

// remoteHalfClosed records an END DONE on a half-close stream: the other
// edge sends no more data, but may still read ours.
func (st *Stream) remoteHalfClosed() {
	st.mu.Lock()
	st.remoteEnd = true
	finished := st.localEnd
	st.mu.Unlock()
	select {
	case st.opened <- streamerr.New(streamerr.Misc):
	default:
	}
	st.signal()
	if finished {
		st.e.removeStream(st)
	}
}

// remoteClosed records that the other edge (or the circuit) ended the stream
// in both directions.
func (st *Stream) remoteClosed(reason streamerr.Reason) {
	st.mu.Lock()
	if !st.remoteEnd || reason != streamerr.Done {
		st.remoteEnd = true
		st.localEnd = true // nothing more may be sent
		if reason != streamerr.Done && st.endErr == nil {
			st.endErr = streamerr.New(reason)
		}
		close(st.winCh)
		st.winCh = make(chan struct{})
	}
	if reason != streamerr.Done && !st.isAborted {
		st.isAborted = true
		close(st.aborted)
	}
	st.mu.Unlock()
	var err error
	if reason != streamerr.Done {
		err = streamerr.New(reason)
	} else {
		err = streamerr.New(streamerr.Misc)
	}
	select {
	case st.opened <- err:
	default:
	}
	st.signal()
	st.e.removeStream(st)
}

// Circuit returns the client circuit carrying the stream (nil at an exit).
func (st *Stream) Circuit() *ClientCirc { return st.circ }

// Buffered returns how many received bytes wait to be read.
func (st *Stream) Buffered() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for i, c := range st.queue {
		m, _ := cell.ParseRelay(c.Body())
		n += len(m.Data)
		if i == 0 {
			n -= st.off
		}
	}
	return n
}

// Read reads stream data.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		if st.local {
			st.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(st.queue) > 0 {
			n := st.readLocked(p)
			if st.measure != nil && n > 0 {
				st.noteReadLocked(n)
			}
			sendmes := 0
			for st.consumed >= StreamSendmeInc && !st.remoteEnd {
				st.consumed -= StreamSendmeInc
				st.recvWin += StreamSendmeInc
				sendmes++
			}
			st.mu.Unlock()
			for ; sendmes > 0; sendmes-- {
				st.e.send(cell.RelaySendme, st.id, nil)
			}
			return n, nil
		}
		if st.remoteEnd {
			err := st.endErr
			st.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		dl := st.rdl.wait()
		st.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-st.readCh:
		case <-st.doneCh:
		case <-dl:
			return 0, errDeadline
		}
	}
}

// readLocked copies queued data into p.
func (st *Stream) readLocked(p []byte) int {
	n := 0
	for n < len(p) && len(st.queue) > 0 {
		c := st.queue[0]
		m, _ := cell.ParseRelay(c.Body())
		k := copy(p[n:], m.Data[st.off:])
		n += k
		st.off += k
		if st.off == len(m.Data) {
			c.Free()
			st.queue[0] = nil
			st.queue = st.queue[1:]
			st.off = 0
			st.consumed++
		}
	}
	if len(st.queue) == 0 {
		st.queue = st.queue[:0:0]
	}
	return n
}

// Write sends p as DATA cells, waiting for window as needed.
func (st *Stream) Write(p []byte) (int, error) {
	n := 0
	max := st.e.maxData()
	for n < len(p) {
		if err := st.takeWindow(); err != nil {
			return n, err
		}
		k := min(len(p)-n, max)
		if err := st.e.send(cell.RelayData, st.id, p[n:n+k]); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (st *Stream) takeWindow() error {
	for {
		st.mu.Lock()
		if st.local {
			st.mu.Unlock()
			return net.ErrClosed
		}
		if st.localEnd || st.endErr != nil || (st.remoteEnd && !st.halfClose) {
			err := st.endErr
			st.mu.Unlock()
			if err == nil {
				err = io.ErrClosedPipe
			}
			return err
		}
		if st.pkgWin > 0 {
			st.pkgWin--
			dl := st.wdl.wait()
			st.mu.Unlock()
			return st.e.takeWindow(context.Background(), dl)
		}
		ch := st.winCh
		dl := st.wdl.wait()
		st.mu.Unlock()
		select {
		case <-ch:
		case <-st.doneCh:
		case <-dl:
			return errDeadline
		}
	}
}

// ErrNoHalfClose is returned by CloseWrite on a stream whose other end
// does not speak half-close (it lacks Relay=2, spec/protover.md).
var ErrNoHalfClose = errors.New("circuit: the other end of the stream does not support half-close")

// CloseWrite sends END DONE in our direction only: the other end reads EOF
// and may keep sending until its own END (spec/streams.md §4). Write fails
// afterwards. It returns ErrNoHalfClose, sending nothing, if the other end
// does not support half-close.
func (st *Stream) CloseWrite() error {
	if !st.halfClose {
		return ErrNoHalfClose
	}
	st.mu.Lock()
	if st.local || st.localEnd {
		st.mu.Unlock()
		return nil
	}
	st.localEnd = true
	finished := st.remoteEnd
	close(st.winCh) // wake a blocked Write
	st.winCh = make(chan struct{})
	st.mu.Unlock()
	err := st.e.send(cell.RelayEnd, st.id, []byte{byte(streamerr.Done)})
	if finished {
		st.e.removeStream(st)
	}
	return err
}

// Close ends the stream in both directions. It sends END DONE unless the
// other end already closed; on a half-close stream whose other direction is
// still open it sends END CLOSED instead, which aborts it (like a TCP reset).
func (st *Stream) Close() error {
	st.reportThroughput()
	return st.closeWith(streamerr.Done)
}

func (st *Stream) closeWith(reason streamerr.Reason) error {
	st.mu.Lock()
	if st.local {
		st.mu.Unlock()
		return nil
	}
	st.local = true
	sendEnd := !st.localEnd && (st.endErr == nil) && !(st.remoteEnd && !st.halfClose)
	if st.halfClose && !st.remoteEnd && reason == streamerr.Done {
		reason = streamerr.Closed
		sendEnd = true
	}
	st.localEnd = true
	for _, c := range st.queue {
		c.Free()
	}
	st.queue = nil
	close(st.doneCh)
	st.mu.Unlock()
	st.e.removeStream(st)
	if sendEnd {
		st.e.send(cell.RelayEnd, st.id, []byte{byte(reason)})
	}
	return nil
}

// LocalAddr and RemoteAddr return the target, the only address a stream has.
func (st *Stream) LocalAddr() net.Addr  { return streamAddr("darkmatter") }
func (st *Stream) RemoteAddr() net.Addr { return st.addr }

func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rdl.set(t)
	return nil
}

func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.wdl.set(t)
	return nil
}

// deadline is a resettable deadline whose channel closes when it passes.
type deadline struct {
	timer *time.Timer
	ch    chan struct{}
}

func newDeadline() deadline { return deadline{ch: make(chan struct{})} }

// set must be called with the stream's mutex held.
func (d *deadline) set(t time.Time) {
	if d.timer != nil && !d.timer.Stop() {
		// Already fired: the channel is closed; make a new one.
		d.ch = make(chan struct{})
	} else if d.timer == nil {
		select {
		case <-d.ch:
			d.ch = make(chan struct{})
		default:
		}
	}
	d.timer = nil
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} { return d.ch }

var _ net.Conn = (*Stream)(nil)
