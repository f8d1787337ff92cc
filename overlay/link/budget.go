package link

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Budget bounds the cells queued for sending on all the links that share
// it (Config.Budget): a node-wide memory budget, like Tor's MaxMemInQueues.
// A Send that would take the count over the budget first runs the
// out-of-memory handler: it drops the queued cells of the circuits whose
// oldest queued cell is the oldest across all links of the budget, oldest
// first, until the count is at most nine tenths of the budget (so that the
// handler does not run again at once), logs one line, and tells each
// link's Handler through CircuitDropper. Cells a link's writer has already
// taken count until they are written, but are never dropped.
//
// A Budget is safe for concurrent use. Create it with NewBudget.
type Budget struct {
	max, low int64
	used     atomic.Int64 // cells queued on the budget's links, plus reserved by Sends under way
	peak     atomic.Int64

	runs     atomic.Uint64
	circuits atomic.Uint64
	cells    atomic.Uint64

	// mu serialises the out-of-memory handler and guards the following.
	// Lock order: Budget.mu, then Link.qmu; a Send never holds its
	// link's qmu while it takes mu.
	mu    sync.Mutex
	links map[*Link]struct{}
	cands []victim // scratch for reclaim
}

// victim is a candidate of the out-of-memory handler: a circuit queue and
// when its oldest cell was queued.
type victim struct {
	l  *Link
	id uint32
	t  int64
}

// NewBudget returns a budget of maxCells queued cells (each about 4 KiB);
// maxCells <= 0 means DefaultBudget.
func NewBudget(maxCells int) *Budget {
	if maxCells <= 0 {
		maxCells = DefaultBudget
	}
	return &Budget{
		max:   int64(maxCells),
		low:   int64(maxCells) - int64(maxCells)/10,
		links: make(map[*Link]struct{}),
	}
}

// BudgetStats are a Budget's counters.
type BudgetStats struct {
	Max    int // the budget, in cells
	Queued int // cells queued now on the budget's links (taken by writers included)
	Peak   int // the most cells ever queued at once
	// Runs counts the times the out-of-memory handler ran; Circuits and
	// Cells count the circuits whose queues it dropped and their cells.
	Runs     uint64
	Circuits uint64
	Cells    uint64
}

// Stats returns the budget's counters.
func (b *Budget) Stats() BudgetStats {
	return BudgetStats{
		Max:      int(b.max),
		Queued:   int(b.used.Load()),
		Peak:     int(b.peak.Load()),
		Runs:     b.runs.Load(),
		Circuits: b.circuits.Load(),
		Cells:    b.cells.Load(),
	}
}

// Queued returns how many cells are queued now on the budget's links.
func (b *Budget) Queued() int { return int(b.used.Load()) }

func (b *Budget) register(l *Link) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.links[l] = struct{}{}
	b.mu.Unlock()
}

func (b *Budget) unregister(l *Link) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.links, l)
	b.mu.Unlock()
}

// release returns n cells to the budget.
func (b *Budget) release(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// reserve counts one more cell, which circuit id of l is about to queue.
// Over the budget it runs the out-of-memory handler; it returns false when
// the cell must be refused: the handler dropped circuit id of l itself, or
// could not make room. l.qmu must not be held.
func (b *Budget) reserve(l *Link, id uint32) bool {
	u := b.used.Add(1)
	if u <= b.max {
		for p := b.peak.Load(); u > p && !b.peak.CompareAndSwap(p, u); p = b.peak.Load() {
		}
		return true
	}
	if senderDropped, ok := b.reclaim(l, id); senderDropped || !ok {
		b.used.Add(-1)
		return false
	}
	return true
}

// reclaim is the out-of-memory handler. It drops the queues of the
// circuits holding the oldest queued cells across the budget's links until
// the count is at most b.low. It reports whether it dropped circuit id of
// sender (the Send under way is then refused, and sender's Handler is not
// told: the Send's caller learns it from ErrQueueFull), and whether the
// count is now within the budget.
func (b *Budget) reclaim(sender *Link, id uint32) (senderDropped, ok bool) {
	b.mu.Lock()
	if b.used.Load() <= b.max {
		b.mu.Unlock()
		return false, true
	}
	cands := b.cands[:0]
	for l := range b.links {
		l.qmu.Lock()
		if !l.closed {
			for q := l.active.head; q != nil; q = q.next {
				cands = append(cands, victim{l, q.id, q.oldest()})
			}
		}
		l.qmu.Unlock()
	}
	slices.SortFunc(cands, func(x, y victim) int { return cmp.Compare(x.t, y.t) })
	now := monoNow()
	var circuits, cells int
	var oldest time.Duration
	var closing []*Link
	links := make(map[*Link]struct{})
	for _, v := range cands {
		if b.used.Load() <= b.low {
			break
		}
		self := v.l == sender && v.id == id
		n, own := v.l.dropCircuit(v.id, !self)
		if n == 0 {
			continue
		}
		if own {
			closing = append(closing, v.l)
		}
		if circuits == 0 {
			oldest = time.Duration(now - v.t)
		}
		circuits++
		cells += n
		links[v.l] = struct{}{}
		senderDropped = senderDropped || self
	}
	clear(cands)
	if cap(cands) > 4096 {
		cands = nil // do not keep a large scratch slice after a rare peak
	}
	b.cands = cands[:0]
	ok = b.used.Load() <= b.max
	b.mu.Unlock()
	for _, l := range closing {
		l.closeWith(errBudgetOwnDropped)
		senderDropped = senderDropped || l == sender
	}

	b.runs.Add(1)
	b.circuits.Add(uint64(circuits))
	b.cells.Add(uint64(cells))
	sender.logf.Printf("link: memory budget of %d queued cells exceeded: dropped the queued cells of %d circuit(s) (%d cells) on %d link(s), the oldest queued %v ago",
		b.max, circuits, cells, len(links), oldest.Round(time.Millisecond))
	return senderDropped, ok
}
