package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

var errSendLinkCell = errors.New("link: HELLO and REKEY cells are sent by the link itself")

// Send queues c for sending on its circuit's queue and takes ownership of
// it; on error c is freed. It refuses HELLO and REKEY, which only the link
// sends; any other command goes out, even one this package does not know
// (the peer drops those it does not know: send them only if its
// PeerProtocols list them). It never waits for the network: the writer
// goroutine sends each circuit's cells in Send order, and serves the
// circuits round robin (spec/links.md §6.1). After the link closed it
// returns ErrClosed.
//
// Send drops c and returns ErrQueueFull, and the link stays open, when c's
// circuit already has MaxCircuitQueue cells queued (the circuit is then
// poisoned: its later cells are refused too, see CircuitDropper), or when
// the link's MaxQueue or the node's Budget is reached and the circuit
// holding the oldest queued cell is c's own. Otherwise reaching those
// bounds drops the queues of the circuits holding the oldest cells, and
// their owner hears of it through CircuitDropper. A DESTROY is never
// refused for a full circuit queue: it replaces the queue, since the
// circuit ends. Send may run the Budget's out-of-memory handler, which
// locks other links' queues, but never calls back into the Handler.
func (l *Link) Send(c *cell.Cell) error {
	cmd := c.Cmd()
	if cmd == cell.CmdHello || cmd == cell.CmdRekey {
		c.Free()
		return errSendLinkCell
	}
	id := c.Circ()
	if l.budget != nil && !l.budget.reserve(l, id) {
		c.Free()
		l.queueFull.Add(1)
		return ErrQueueFull
	}
	t := monoNow()
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		l.budget.release(1)
		c.Free()
		return ErrClosed
	}
	q := l.queueFor(id)
	freed, err := l.admitLocked(q, cmd)
	if err != nil {
		l.releaseIfIdleLocked(q)
		l.qmu.Unlock()
		l.budget.release(freed + 1)
		c.Free()
		l.queueFull.Add(1)
		if err == errOwnQueueDropped {
			l.closeWith(err)
		}
		return ErrQueueFull
	}
	l.enqueueLocked(q, c, t)
	wake := l.queued == 1
	if !l.stallArmed {
		l.stallArmed = true
		if l.stall == nil {
			l.stall = time.AfterFunc(l.stallTimeout, l.checkStall)
		} else {
			l.stall.Reset(l.stallTimeout)
		}
	}
	l.qmu.Unlock()
	l.budget.release(freed)
	if wake {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// errOwnQueueDropped closes a link whose own cells (circuit 0) were the
// oldest when its MaxQueue was reached, or filled circuit 0's queue.
var errOwnQueueDropped = fmt.Errorf("%w: the link's own cells were the oldest queued", ErrQueueFull)

// admitLocked decides whether a cell with command cmd may join q, and
// makes room for it. It returns the cells it freed (to release from the
// budget) and ErrQueueFull to refuse the cell, or errOwnQueueDropped when
// q is circuit 0, whose queue it dropped because the link's bound was
// reached (the caller closes the link).
func (l *Link) admitLocked(q *circQueue, cmd cell.Command) (freed int, err error) {
	ends := cmd == cell.CmdDestroy || cmd == cell.CmdCreate || cmd == cell.CmdCreated
	if q.poisoned {
		if !ends {
			return 0, ErrQueueFull
		}
		// The circuit ID ends or starts afresh. Cells queued before
		// the gap may still go out ahead of a DESTROY; a new circuit
		// must not receive the old one's cells.
		q.poisoned = false
		if cmd != cell.CmdDestroy {
			freed += l.dropLocked(q)
		}
	}
	if q.n >= l.maxCircQueue {
		if q.id == 0 {
			// Circuit 0 is never poisoned, which would silence the
			// link for good: a link whose own cells pile up this far
			// has a peer that does not read them, and is closed.
			freed += l.dropLocked(q)
			return freed, errOwnQueueDropped
		}
		if cmd != cell.CmdDestroy {
			q.poisoned = true
			return freed, ErrQueueFull
		}
		freed += l.dropLocked(q) // the circuit ends: its backlog is moot
	}
	if l.queued+l.inflight < l.maxQueue {
		return freed, nil
	}
	v := l.oldestQueueLocked()
	if v == nil {
		return freed, ErrQueueFull // the writer holds them all
	}
	freed += l.dropLocked(v)
	if v.id == 0 {
		return freed, errOwnQueueDropped
	}
	v.poisoned = true
	l.circuitsDropped.Add(1)
	if v == q {
		return freed, ErrQueueFull
	}
	l.notifyLocked(v.id)
	return freed, nil
}

// dropCircuit is the out-of-memory handler's action on this link: it
// drops circuit id's queued cells and poisons its queue, and tells the
// Handler if notify is set. It returns how many cells it freed, already
// released from the budget, and whether they were circuit 0's: the caller
// then closes the link (after releasing its own locks). l.qmu must not be
// held.
func (l *Link) dropCircuit(id uint32, notify bool) (n int, own bool) {
	l.qmu.Lock()
	q := l.circs[id]
	if l.closed || q == nil || q.n == 0 {
		l.qmu.Unlock()
		return 0, false
	}
	n = l.dropLocked(q)
	if id != 0 {
		q.poisoned = true
		l.circuitsDropped.Add(1)
		if notify {
			l.notifyLocked(id)
		}
	}
	l.qmu.Unlock()
	l.budget.release(n)
	return n, id == 0
}

// errBudgetOwnDropped closes a link whose own cells (circuit 0) the
// node's memory budget dropped.
var errBudgetOwnDropped = fmt.Errorf("%w: the node's memory budget dropped the link's own cells", ErrQueueFull)

// notifyLocked queues a CircuitDropped call for circuit id and starts the
// goroutine that makes it.
func (l *Link) notifyLocked(id uint32) {
	if l.dropper == nil || l.closed {
		return
	}
	l.drops = append(l.drops, id)
	if !l.notifying {
		l.notifying = true
		l.notifyWG.Add(1)
		go l.notifyDrops()
	}
}

// notifyDrops calls CircuitDropped for the queued drops, without locks,
// until there are none. The reader goroutine waits for it before
// Handler.Closed.
func (l *Link) notifyDrops() {
	defer l.notifyWG.Done()
	var ids []uint32
	for {
		l.qmu.Lock()
		ids, l.drops = l.drops, ids[:0]
		if len(ids) == 0 {
			l.drops = nil
			l.notifying = false
			l.qmu.Unlock()
			return
		}
		l.qmu.Unlock()
		for _, id := range ids {
			l.dropper.CircuitDropped(l, id)
		}
	}
}

// drainQueue frees the cells left when the writer exits and returns them
// to the budget. Sends after closeWith do not queue, so nothing is added
// afterwards.
func (l *Link) drainQueue() {
	l.qmu.Lock()
	n := l.inflight
	for _, q := range l.circs {
		n += q.clear()
		putQueue(q)
	}
	l.circs, l.circsPeak, l.active = nil, 0, circList{}
	l.queued, l.inflight = 0, 0
	for i, c := range l.batch {
		if c != nil {
			c.Free()
		}
		l.batch[i] = nil
	}
	l.batch = nil
	if l.stall != nil {
		l.stall.Stop()
	}
	l.qmu.Unlock()
	l.budget.release(n)
	l.budget.unregister(l)
}

// checkStall runs on the stall timer: it closes the link with ErrStalled
// if a cell has waited StallTimeout to be written, and otherwise sets the
// timer for when the oldest cell would have waited that long.
func (l *Link) checkStall() {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return
	}
	t, ok := l.oldestLocked()
	if !ok {
		l.stallArmed = false
		l.qmu.Unlock()
		return
	}
	waited := time.Duration(monoNow() - t)
	if waited < l.stallTimeout {
		l.stall.Reset(l.stallTimeout - waited)
		l.qmu.Unlock()
		return
	}
	l.qmu.Unlock()
	l.closeWith(fmt.Errorf("%w: a cell waited %v to be written", ErrStalled, waited.Round(time.Millisecond)))
}

// writeLoop is the writer goroutine: it waits for cells or a timer and
// writes. It returns nil when the link is shutting down, or the error that
// must close it.
func (l *Link) writeLoop() error {
	rekey := time.NewTimer(l.rekeyInterval)
	defer rekey.Stop()
	w := writer{l: l, conn: l.conn, rekeyTimer: rekey}
	keepAlive := time.NewTimer(l.keepAlive)
	defer keepAlive.Stop()
	idle := time.NewTimer(l.idle)
	defer idle.Stop()
	for {
		wrote, err := w.flushQueue()
		if err != nil {
			return err
		}
		if err := w.moveWriter(); err != nil {
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
	l     *Link
	conn  net.Conn // where the writer writes: the link's conn, then Move's
	moved bool
	buf   *[]byte   // from bufPool while there is something to write
	wdl   time.Time // the write deadline currently set on the conn

	sinceRekey int         // messages sealed with the current send key
	rekeyDue   bool        // RekeyInterval passed: the next message ends with REKEY
	rekeyTimer *time.Timer // writeLoop's RekeyInterval timer
}

// flushQueue writes queued cells until there are none: it takes one
// message's worth at a time from the circuit queues in round-robin order
// (up to MaxCellsPerMessage cells, one less when a REKEY is due), seals
// them as one Noise message and writes it. Taking one message at a time
// keeps the scheduler's order meaningful: a circuit that becomes active
// waits for at most the message being written. It returns whether it
// wrote anything.
func (w *writer) flushQueue() (wrote bool, err error) {
	l := w.l
	for {
		l.qmu.Lock()
		done := l.inflight
		var oldest int64
		l.batch, oldest = l.pullLocked(l.batch[:0], min(writeBatchCells, w.room()))
		n := len(l.batch)
		l.inflight, l.inflightOldest = n, oldest
		l.qmu.Unlock()
		l.budget.release(done)
		if n == 0 {
			break
		}
		if w.buf == nil {
			w.buf = bufPool.Get().(*[]byte)
		}
		var out []byte
		if out, err = w.appendMessage((*w.buf)[:0], l.batch); err != nil {
			return true, err
		}
		err = w.write(out)
		*w.buf = out[:0]
		wrote = true
		if err != nil {
			return true, err
		}
	}
	if w.buf != nil {
		bufPool.Put(w.buf)
		w.buf = nil
	}
	return wrote, nil
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
		if err := w.conn.SetWriteDeadline(w.wdl); err != nil {
			return writeErr(err)
		}
	}
	_, err := w.conn.Write(b)
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
