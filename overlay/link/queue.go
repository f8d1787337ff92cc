package link

import (
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// Send queues (spec/links.md §6.1). A link keeps one FIFO queue per
// circuit ID that has cells waiting; circuit 0 holds the link's own cells
// (PADDING, directory cells). The writer serves the circuits with queued
// cells round robin, schedQuantum cells per turn, so one busy circuit
// cannot starve another: a circuit that becomes active waits for at most
// one turn of each other active circuit. Circuit 0 goes to the front of
// the round when it becomes active, and after its turn it queues like any
// circuit. Order within a circuit is kept exactly (the hops' layer counters
// depend on it); order across circuits is the scheduler's.
//
// Every queued cell carries the monotonic time it was queued: the oldest
// cells decide which circuits the memory budget drops first (Budget) and
// whether the link is stalled (Config.StallTimeout).
//
// Everything here is guarded by Link.qmu.

// schedQuantum is how many cells a circuit sends per turn of the round
// robin. Cells are all the same size, so a quantum in cells is a quantum
// in bytes. One cell per turn interleaves active circuits most finely; the
// cost is a list move per cell, which is nothing next to sealing the cell.
const schedQuantum = 1

// minRing is the smallest ring a circuit queue allocates.
const minRing = 16

// qcell is a queued cell and when it was queued (monoNow).
type qcell struct {
	c *cell.Cell
	t int64
}

// circQueue is the send queue of one circuit ID.
type circQueue struct {
	id   uint32
	ring []qcell // len is a power of two, or 0
	head int     // index of the oldest cell
	n    int     // cells queued

	// poisoned is set once the link dropped one of this circuit's cells
	// (its queue was full, or the memory budget dropped it): the cells
	// after the gap would fail at the next hop, so the queue refuses all
	// but DESTROY, CREATE and CREATED until one of those ends or reuses
	// the circuit ID. A poisoned queue stays in Link.circs while empty.
	poisoned bool

	// prev and next link the queue into Link.active while n > 0.
	prev, next *circQueue
}

// queuePool recycles circQueues with their rings, so that a circuit that
// drains and fills again does not allocate, and an idle link keeps none.
var queuePool = sync.Pool{New: func() any { return new(circQueue) }}

func getQueue(id uint32) *circQueue {
	q := queuePool.Get().(*circQueue)
	q.id = id
	return q
}

func putQueue(q *circQueue) {
	for i := range q.n {
		q.ring[(q.head+i)&(len(q.ring)-1)] = qcell{}
	}
	*q = circQueue{ring: q.ring}
	queuePool.Put(q)
}

// push appends c, queued at time t, growing the ring by doubling.
func (q *circQueue) push(c *cell.Cell, t int64) {
	if q.n == len(q.ring) {
		ring := make([]qcell, max(minRing, 2*len(q.ring)))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = qcell{c, t}
	q.n++
}

// pop removes and returns the oldest cell. q.n must be > 0.
func (q *circQueue) pop() qcell {
	x := q.ring[q.head]
	q.ring[q.head] = qcell{}
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	return x
}

// oldest returns when the oldest queued cell was queued. q.n must be > 0.
func (q *circQueue) oldest() int64 { return q.ring[q.head].t }

// clear frees every queued cell and returns how many there were.
func (q *circQueue) clear() int {
	n := q.n
	for q.n > 0 {
		q.pop().c.Free()
	}
	q.head = 0
	return n
}

// circList is the round robin of circuits with queued cells: the writer
// serves the head and moves it to the tail.
type circList struct {
	head, tail *circQueue
	n          int
}

func (r *circList) pushBack(q *circQueue) {
	q.prev, q.next = r.tail, nil
	if r.tail != nil {
		r.tail.next = q
	} else {
		r.head = q
	}
	r.tail = q
	r.n++
}

func (r *circList) pushFront(q *circQueue) {
	q.prev, q.next = nil, r.head
	if r.head != nil {
		r.head.prev = q
	} else {
		r.tail = q
	}
	r.head = q
	r.n++
}

func (r *circList) remove(q *circQueue) {
	if q.prev != nil {
		q.prev.next = q.next
	} else {
		r.head = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	} else {
		r.tail = q.prev
	}
	q.prev, q.next = nil, nil
	r.n--
}

// circMapShrink is the number of circuits with queued cells above which an
// emptied circuit map is dropped, since Go maps never shrink: a link that
// once queued for many circuits and then goes idle keeps no large table.
const circMapShrink = 64

// enqueueLocked appends c (of circuit q.id) to q, which is in l.circs,
// and activates q if it was empty.
func (l *Link) enqueueLocked(q *circQueue, c *cell.Cell, t int64) {
	q.push(c, t)
	l.queued++
	if q.n > 1 {
		return
	}
	if q.id == 0 {
		l.active.pushFront(q)
	} else {
		l.active.pushBack(q)
	}
}

// queueFor returns the queue of circuit id, creating it.
func (l *Link) queueFor(id uint32) *circQueue {
	if q := l.circs[id]; q != nil {
		return q
	}
	if l.circs == nil {
		l.circs = make(map[uint32]*circQueue)
	}
	q := getQueue(id)
	l.circs[id] = q
	l.circsPeak = max(l.circsPeak, len(l.circs))
	return q
}

// releaseIfIdleLocked removes q from l.circs if it holds nothing and
// remembers nothing.
func (l *Link) releaseIfIdleLocked(q *circQueue) {
	if q.n > 0 || q.poisoned {
		return
	}
	delete(l.circs, q.id)
	putQueue(q)
	if len(l.circs) == 0 && l.circsPeak > circMapShrink {
		l.circs, l.circsPeak = nil, 0
	}
}

// dropLocked frees q's queued cells (the circuit loses them) and takes q
// out of the round robin. It returns how many cells it freed; the caller
// releases them from the budget.
func (l *Link) dropLocked(q *circQueue) int {
	if q.n == 0 {
		return 0
	}
	l.active.remove(q)
	n := q.clear()
	if len(q.ring) > minRing {
		// A dropped queue usually stays poisoned, empty or with a
		// DESTROY, until its circuit ends: it keeps no large ring
		// (the budget counts cells, not ring slots).
		q.ring = nil
	}
	l.queued -= n
	l.cellsDropped.Add(uint64(n))
	return n
}

// pullLocked moves up to max cells from the circuit queues into dst, in
// round-robin order, and returns dst and when the oldest of them was
// queued.
func (l *Link) pullLocked(dst []*cell.Cell, max int) ([]*cell.Cell, int64) {
	var oldest int64
	first, start := true, len(dst)
	for len(dst) < max && l.active.head != nil {
		q := l.active.head
		for k := 0; k < schedQuantum && q.n > 0 && len(dst) < max; k++ {
			x := q.pop()
			if first || x.t < oldest {
				oldest, first = x.t, false
			}
			dst = append(dst, x.c)
		}
		l.active.remove(q)
		if q.n > 0 {
			l.active.pushBack(q)
		} else {
			l.releaseIfIdleLocked(q)
		}
	}
	l.queued -= len(dst) - start
	return dst, oldest
}

// oldestLocked returns when the oldest cell still waiting to be written
// (queued or taken by the writer) was queued, and whether there is one.
func (l *Link) oldestLocked() (int64, bool) {
	t, ok := l.inflightOldest, l.inflight > 0
	for q := l.active.head; q != nil; q = q.next {
		if o := q.oldest(); !ok || o < t {
			t, ok = o, true
		}
	}
	return t, ok
}

// oldestQueueLocked returns the circuit queue whose head is the oldest
// queued cell, or nil.
func (l *Link) oldestQueueLocked() *circQueue {
	var best *circQueue
	for q := l.active.head; q != nil; q = q.next {
		if best == nil || q.oldest() < best.oldest() {
			best = q
		}
	}
	return best
}

// epoch is the origin of monoNow.
var epoch = time.Now()

// monoNow returns a monotonic clock reading in nanoseconds: it does not
// jump with the wall clock. In a synctest bubble it follows the bubble's
// fake clock.
func monoNow() int64 { return int64(time.Since(epoch)) }
