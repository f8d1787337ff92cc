package link

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// Handler receives what a link reads. Its methods are called from the
// link's reader goroutine, one at a time.
type Handler interface {
	// HandleCell is called from the link's single reader goroutine, in
	// arrival order, for every cell except the link's own (PADDING, HELLO,
	// REKEY) and those of unknown commands (dropped and counted in
	// Stats.UnknownCells). It takes ownership of c: it must Free it or
	// pass it on (for example to another link's Send). While it runs the
	// link reads nothing more, so it should not block for long.
	HandleCell(l *Link, c *cell.Cell)
	// Closed is called exactly once after the link has shut down (both
	// goroutines are done and the conn is closed), with the reason: nil
	// for a local Close.
	Closed(l *Link, err error)
}

// CircuitDropper is implemented by a Handler that wants to know when the
// link dropped the queued cells of one of its circuits to stay within a
// bound: the node's memory Budget, or the link's MaxQueue. The circuit
// cannot continue (the cells after the gap would fail at the next hop), so
// the owner should destroy it; until a DESTROY, CREATE or CREATED cell
// for that circuit ID is sent, the link refuses the circuit's other cells
// with ErrQueueFull.
//
// CircuitDropped is called from a goroutine of the link's own (one at a
// time per link, never from Send), with no lock of the link held, so it
// may call Send, Shutdown and the circuit layer; like the other Handler
// methods it must not call Close on this link, and Close waits for it as
// for the other Handler methods. Every call happens before Handler.Closed. A Send that itself returns ErrQueueFull is not
// reported again: its caller already knows. Circuit 0 is never reported:
// a link whose own cells (circuit 0) are the ones to drop is closed
// instead.
type CircuitDropper interface {
	CircuitDropped(l *Link, circ uint32)
}

// Stats are a link's traffic counters since the handshake (the HELLO
// cells are not counted). Cells include PADDING, REKEY and unknown
// commands; bytes are counted on the wire, with frame headers and tags.
type Stats struct {
	CellsSent     uint64
	CellsReceived uint64
	BytesSent     uint64
	BytesReceived uint64
	Messages      uint64 // Noise transport messages sent
	Writes        uint64 // conn.Write calls
	// UnknownCells counts received cells with a command this link does
	// not know, which it dropped (a newer peer may send them).
	UnknownCells uint64
	// RekeysSent and RekeysReceived count REKEY cells: how often each
	// direction's key was replaced.
	RekeysSent     uint64
	RekeysReceived uint64
	// QueueFull counts Sends refused with ErrQueueFull: the circuit's
	// queue was full or poisoned, or the link's or the node's bound left no
	// room for it.
	QueueFull uint64
	// CircuitsDropped counts the circuits whose queued cells the link
	// dropped to stay within the memory Budget or MaxQueue, and
	// CellsDropped every queued cell freed without being sent while the
	// link was open (those, and the queue a DESTROY replaced).
	CircuitsDropped uint64
	CellsDropped    uint64
}

// Link is an authenticated, encrypted link carrying cells for many
// circuits. Create one with Dial or Accept. Its methods are safe for
// concurrent use.
type Link struct {
	conn      net.Conn // the first connection; see cur
	h         Handler
	initiator bool
	peer      keys.LinkPublicKey
	peerHello []byte // the peer's descriptor field, or nil
	peerProto protover.Set
	version   int // the Link version both sides list
	suite     Suite
	keepAlive time.Duration
	idle      time.Duration
	logf      safelog.Logf

	maxQueue     int           // cells queued on the link, all circuits
	maxCircQueue int           // cells queued per circuit
	stallTimeout time.Duration // the longest a queued cell may wait
	budget       *Budget       // nil: no node-wide budget
	dropper      CircuitDropper

	rekeyMessages int
	rekeyInterval time.Duration

	// Owned by the reader goroutine after the handshake.
	rd        *frameReader
	readMoved bool // the reader has switched (reader goroutine only)

	// Moving (move.go). connMu guards conns, next and connClosed.
	moveToken  [MoveTokenLen]byte       // from the Noise handshake hash
	cur        atomic.Pointer[net.Conn] // the newest connection, for the addresses
	connMu     sync.Mutex
	conns      []net.Conn    // open connections, oldest first
	next       net.Conn      // Move's connection, or nil
	nextReady  chan struct{} // closed by Move
	connClosed bool
	switched   atomic.Int32 // directions that moved to next
	oldClosed  atomic.Bool  // both moved and the first conn is closed
	recv       *transportCipher

	// Owned by the writer goroutine after the handshake.
	send  *transportCipher
	batch []*cell.Cell

	qmu            sync.Mutex            // guards the following
	circs          map[uint32]*circQueue // circuits with queued cells, or poisoned
	circsPeak      int                   // most entries in circs since it was made
	active         circList              // the round robin: circuits with queued cells
	queued         int                   // cells in the circuit queues
	inflight       int                   // cells the writer took and has not finished
	inflightOldest int64                 // when the oldest of those was queued
	closed         bool                  // no more Sends
	stall          *time.Timer           // runs checkStall; made on first use
	stallArmed     bool                  // stall is set to fire
	drops          []uint32              // circuits dropped, for CircuitDropped
	notifying      bool                  // a notifyDrops goroutine runs
	notifyWG       sync.WaitGroup        // the notifyDrops goroutine

	wake       chan struct{} // cap 1: the queue became non-empty
	quit       chan struct{} // closed when shutdown starts
	writerDone chan struct{} // closed when the writer goroutine exits
	done       chan struct{} // closed when both goroutines are done, before Handler.Closed
	finished   chan struct{} // closed after Handler.Closed returned

	closeOnce sync.Once
	errMu     sync.Mutex // guards err
	err       error

	cellsSent, cellsRecv   atomic.Uint64
	bytesSent, bytesRecv   atomic.Uint64
	messages, writes       atomic.Uint64
	unknownCells           atomic.Uint64
	rekeysSent, rekeysRecv atomic.Uint64
	queueFull              atomic.Uint64
	circuitsDropped        atomic.Uint64
	cellsDropped           atomic.Uint64
}

func newLink(conn net.Conn, s *settings, h Handler, initiator bool, rd *frameReader, sess *session, peer hello, version int) *Link {
	l := &Link{
		conn:          conn,
		h:             h,
		initiator:     initiator,
		peer:          sess.peer,
		peerHello:     peer.descriptor,
		peerProto:     peer.protocols,
		version:       version,
		suite:         sess.suite,
		keepAlive:     s.keepAlive,
		idle:          s.idleTimeout,
		maxQueue:      s.maxQueue,
		maxCircQueue:  s.maxCircQueue,
		stallTimeout:  s.stallTimeout,
		budget:        s.budget,
		logf:          s.logf,
		rekeyMessages: s.rekeyMessages,
		rekeyInterval: s.rekeyInterval,
		rd:            rd,
		moveToken:     moveToken(sess.binding),
		conns:         []net.Conn{conn},
		nextReady:     make(chan struct{}),
		recv:          sess.recv,
		send:          sess.send,
		wake:          make(chan struct{}, 1),
		quit:          make(chan struct{}),
		writerDone:    make(chan struct{}),
		done:          make(chan struct{}),
		finished:      make(chan struct{}),
	}
	l.dropper, _ = h.(CircuitDropper)
	l.cur.Store(&conn)
	return l
}

// start launches the reader and writer goroutines.
func (l *Link) start() {
	l.budget.register(l)
	go func() {
		defer close(l.writerDone)
		if err := l.writeLoop(); err != nil {
			l.closeWith(err)
		}
		l.drainQueue()
	}()
	go func() {
		err := l.readLoop()
		l.closeWith(err)
		<-l.writerDone
		l.notifyWG.Wait()
		err = l.Err()
		if err != nil {
			l.logf.Printf("link %v: closed: %v", safelog.S(l.RemoteAddr()), err)
		}
		close(l.done)
		if l.h != nil {
			l.h.Closed(l, err)
		}
		close(l.finished)
	}()
}

// closeWith starts the shutdown, recording err as the reason if it is the
// first call. It does not wait.
func (l *Link) closeWith(err error) {
	l.closeOnce.Do(func() {
		l.errMu.Lock()
		l.err = err
		l.errMu.Unlock()
		l.qmu.Lock()
		l.closed = true
		l.qmu.Unlock()
		close(l.quit)
		l.closeConns()
	})
}

// Close closes the link and its conn, waits until both goroutines have
// exited and Handler.Closed has returned, and returns nil. Cells still
// queued are dropped. It is idempotent. It must not be called from this
// link's Handler callbacks, which run on the reader goroutine it waits for:
// they call Shutdown instead.
func (l *Link) Close() error {
	l.closeWith(nil)
	<-l.finished
	return nil
}

// Shutdown starts closing the link, like Close, but does not wait. Handler
// callbacks use it to close their own link.
func (l *Link) Shutdown() { l.closeWith(nil) }

// Done returns a channel that is closed once the link has shut down: both
// goroutines have exited, the conn is closed and Err is final. It is
// closed just before Handler.Closed is called, so a caller that adds a new
// link to a table and then finds Done closed knows that Closed has run or
// will run after the addition.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err returns why the link closed: nil while it is open and after a local
// Close, otherwise the error that closed it (the same that Handler.Closed
// received once Done is closed).
func (l *Link) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// PeerStatic returns the peer's static link key, authenticated by the
// handshake.
func (l *Link) PeerStatic() keys.LinkPublicKey { return l.peer }

// PeerHello returns the descriptor field of the peer's HELLO: a relay's
// signed descriptor (not parsed or verified here), empty for a client.
// The caller must not modify it.
func (l *Link) PeerHello() []byte { return l.peerHello }

// PeerProtocols returns the subprotocol versions the peer listed in its
// HELLO, unverified (a relay's signed descriptor lists them too).
func (l *Link) PeerProtocols() protover.Set { return l.peerProto }

// Version returns the Link subprotocol version the link runs: the highest
// both HELLOs list.
func (l *Link) Version() int { return l.version }

// Suite returns the Noise cipher suite of the link.
func (l *Link) Suite() Suite { return l.suite }

// Initiator reports whether we dialled the link.
func (l *Link) Initiator() bool { return l.initiator }

// RemoteAddr returns the conn's remote address. Log it only through
// safelog.S.
func (l *Link) RemoteAddr() net.Addr { return (*l.cur.Load()).RemoteAddr() }

// LocalAddr returns the conn's local address.
func (l *Link) LocalAddr() net.Addr { return (*l.cur.Load()).LocalAddr() }

// QueueLen returns how many cells wait to be written, on all circuits
// (those the writer has taken but not yet written included).
func (l *Link) QueueLen() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return l.queued + l.inflight
}

// CircuitQueueLen returns how many cells of circuit circ wait in its queue
// (not counting those the writer has taken), for callers that pace what
// they send, such as a directory answer on circuit 0: a Send beyond
// MaxCircuitQueue cells fails.
func (l *Link) CircuitQueueLen(circ uint32) int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	if q := l.circs[circ]; q != nil {
		return q.n
	}
	return 0
}

// Stats returns the traffic counters.
func (l *Link) Stats() Stats {
	return Stats{
		CellsSent:       l.cellsSent.Load(),
		CellsReceived:   l.cellsRecv.Load(),
		BytesSent:       l.bytesSent.Load(),
		BytesReceived:   l.bytesRecv.Load(),
		Messages:        l.messages.Load(),
		Writes:          l.writes.Load(),
		UnknownCells:    l.unknownCells.Load(),
		RekeysSent:      l.rekeysSent.Load(),
		RekeysReceived:  l.rekeysRecv.Load(),
		QueueFull:       l.queueFull.Load(),
		CircuitsDropped: l.circuitsDropped.Load(),
		CellsDropped:    l.cellsDropped.Load(),
	}
}
