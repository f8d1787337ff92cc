package dir

import (
	"context"
	"errors"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Peer is the link a directory exchange runs over. Peers are compared with
// ==, so each link must be one comparable value (a pointer).
type Peer interface {
	// Send queues c for the peer and takes ownership of it.
	Send(c *cell.Cell) error
	// LinkQueueLen returns how many of the link's own cells (circuit 0:
	// directory cells) wait to be sent: an answer adds DIR_DESC cells
	// only while it is below the answer window.
	LinkQueueLen() int
	// Source names where the peer connects from, as admission counts
	// introducers: linkmgr.Link.Source (an IPv4 address or an IPv6 /64).
	Source() string
}

// DIR_DONE status (spec/cells.md §2.4): the first payload byte; an empty
// payload means DoneComplete, and an unknown status is taken as DoneCut.
const (
	// DoneComplete: the answer holds every descriptor the peer knew.
	DoneComplete byte = 0
	// DoneCut: the answer was cut short (the fetcher did not read it fast
	// enough); the descriptors sent are valid.
	DoneCut byte = 1
	// DoneRefused: the DIR_GET was refused (too many DIR_GETs on this
	// link, or too many answers in flight); nothing was sent. Ask later
	// or elsewhere.
	DoneRefused byte = 2
)

var (
	// ErrPeerClosed is returned by Fetch when the link closed before the
	// peer's DIR_DONE.
	ErrPeerClosed = errors.New("dir: link closed during the directory fetch")
	// ErrFetchReplaced is returned by a Fetch that a later Fetch from the
	// same peer replaced.
	ErrFetchReplaced = errors.New("dir: replaced by a newer fetch from the same peer")
	// ErrRefused is returned by Fetch when the peer refused the DIR_GET
	// (DIR_DONE with status DoneRefused).
	ErrRefused = errors.New("dir: the peer refused the directory request; ask later")
	// ErrClosed is returned by Fetch after Close.
	ErrClosed = errors.New("dir: directory closed")
)

// peerLocked returns p's state, made if it has none. dir.mu must be held.
func (dir *Directory) peerLocked(p Peer) *peerState {
	ps := dir.peers[p]
	if ps == nil {
		ps = &peerState{}
		dir.peers[p] = ps
	}
	return ps
}

// fetch is one DIR_GET waiting for its DIR_DONE.
type fetch struct {
	done chan struct{}
	err  error // set before done is closed
	got  int   // DIR_DESC cells taken; Directory.mu guards it
}

// peerState is what the directory keeps for a link that sent DIR_GET: its
// request rate and its answer in flight.
type peerState struct {
	gets ratelimit.Bucket // its DIR_GETs
	ans  *answer          // in flight, or nil

	greqs ratelimit.Bucket         // its gossip requests
	want  []*descriptor.Descriptor // a WANT being received (more flag set)
}

// answer is a DIR_GET being answered. Only the goroutine that holds it
// (HandleCell for the first window, then the serve loop) touches it.
type answer struct {
	p    Peer
	list []*descriptor.Descriptor // the directory when the DIR_GET came
	next int                      // index in list of the next to send
	last time.Time                // when it last sent a cell
	// gossip: an answer to a WANT, sent as GOSSIP DESC messages and
	// ended by a GOSSIP DONE, instead of DIR_DESC and DIR_DONE.
	gossip bool
}

// Fetch asks p for every descriptor it knows (DIR_GET) and waits until p
// answers DIR_DONE, ctx ends or PeerClosed(p) is called. The descriptors
// arrive through HandleCell, which stores the ones that verify: only while
// a Fetch waits on that link, and at most Config.MaxRelays of them. A
// second Fetch from the same peer replaces the first, which fails with
// ErrFetchReplaced. An answer the peer cut short (DoneCut) is not an
// error; a refused one is ErrRefused.
func (dir *Directory) Fetch(ctx context.Context, p Peer) error {
	f := &fetch{done: make(chan struct{})}
	dir.mu.Lock()
	if dir.closed {
		dir.mu.Unlock()
		return ErrClosed
	}
	if old := dir.fetches[p]; old != nil {
		old.err = ErrFetchReplaced
		close(old.done)
	}
	dir.fetches[p] = f
	dir.mu.Unlock()
	if err := p.Send(cell.New(0, cell.CmdDirGet)); err != nil {
		dir.finish(p, f, err)
		return err
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		dir.finish(p, f, ctx.Err())
		<-f.done
		return f.err
	}
}

// finish ends fetch f from p with err, unless it ended already.
func (dir *Directory) finish(p Peer, f *fetch, err error) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	dir.finishLocked(p, f, err)
}

func (dir *Directory) finishLocked(p Peer, f *fetch, err error) {
	if f == nil || dir.fetches[p] != f {
		return
	}
	delete(dir.fetches, p)
	f.err = err
	close(f.done)
}

// PeerClosed forgets link p: a Fetch waiting on it ends with ErrPeerClosed,
// and its answer in flight and request rate are dropped. The link
// manager's owner calls it when the link to p closes.
func (dir *Directory) PeerClosed(p Peer) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	dir.finishLocked(p, dir.fetches[p], ErrPeerClosed)
	dir.endSyncLocked(p, dir.syncs[p], ErrPeerClosed)
	if ps := dir.peers[p]; ps != nil {
		if ps.ans != nil {
			dir.answering--
		}
		dir.wanting -= len(ps.want)
		delete(dir.peers, p)
	}
}

// HandleCell handles a directory cell from p and takes ownership of c:
// DIR_GET is answered (paced, see Config.AnswerWindow), a DIR_DESC is
// added if a Fetch waits on p and it verifies, and DIR_DONE ends the Fetch
// waiting on p. Other cells, and DIR_DESC or DIR_DONE that no Fetch asked
// for, are dropped and counted.
func (dir *Directory) HandleCell(p Peer, c *cell.Cell) {
	defer c.Free()
	switch c.Cmd() {
	case cell.CmdDirGet:
		dir.answer(p)
	case cell.CmdDirDesc:
		dir.takeDesc(p, c)
	case cell.CmdGossip:
		dir.handleGossip(p, c)
	case cell.CmdDirDone:
		status := DoneComplete
		if b, err := c.Payload(); err == nil && len(b) > 0 {
			status = b[0]
		}
		dir.mu.Lock()
		defer dir.mu.Unlock()
		f := dir.fetches[p]
		if f == nil {
			dir.stats.Unsolicited++
			return
		}
		var err error
		switch status {
		case DoneComplete:
		case DoneRefused:
			err = ErrRefused
		default: // DoneCut, and unknown statuses alike
			dir.stats.CutReceived++
		}
		dir.finishLocked(p, f, err)
	default:
		dir.stats.Unsolicited++
	}
}

// takeDesc adds the descriptor in a DIR_DESC from p if a Fetch waits on p
// and has taken fewer than MaxRelays.
func (dir *Directory) takeDesc(p Peer, c *cell.Cell) {
	dir.mu.Lock()
	f := dir.fetches[p]
	switch {
	case f == nil:
		dir.stats.Unsolicited++
		dir.mu.Unlock()
		return
	case f.got >= dir.maxRelays:
		dir.stats.Excess++
		dir.mu.Unlock()
		return
	}
	f.got++
	dir.mu.Unlock()
	b, err := c.Payload()
	var d *descriptor.Descriptor
	if err == nil {
		d, err = dir.parse(b)
	}
	if err != nil {
		dir.mu.Lock()
		dir.stats.Bad++
		dir.mu.Unlock()
		return
	}
	dir.AddFrom(d, p.Source())
}

// answer starts answering a DIR_GET from p: it refuses one over the
// link's rate or beyond MaxAnswers, drops one while p's previous answer is
// in flight, sends the first window at once and leaves the rest to the
// serve loop.
func (dir *Directory) answer(p Peer) {
	now := time.Now()
	dir.mu.Lock()
	if dir.closed {
		dir.mu.Unlock()
		return
	}
	ps := dir.peerLocked(p)
	if ps.ans != nil {
		// Its DIR_DONE will end the fetcher's wait for this one too.
		dir.stats.GetsDropped++
		dir.mu.Unlock()
		return
	}
	list := dir.snapshotLocked()
	busy := len(list) > dir.window && dir.answering >= dir.maxAnswers
	if busy || !ps.gets.Take(now, 1/dir.getInterval.Seconds(), dir.getBurst) {
		dir.stats.GetsRefused++
		dir.mu.Unlock()
		// One cell for one cell, and only while the queue has room: a
		// peer that does not read gets nothing more queued.
		if p.LinkQueueLen() < dir.window {
			dir.sendDone(p, DoneRefused)
		}
		return
	}
	dir.run(&answer{p: p, list: list, last: now}, ps, now)
}

// run starts answer a for the link of ps: it sends the first window at
// once and leaves the rest to the serve loop. dir.mu must be held; run
// releases it.
func (dir *Directory) run(a *answer, ps *peerState, now time.Time) {
	p := a.p
	ps.ans = a
	dir.answering++
	dir.mu.Unlock()
	if dir.step(a, now) {
		return
	}
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if dir.peers[p] != ps || dir.closed {
		return // the link closed meanwhile
	}
	dir.pending = append(dir.pending, a)
	if !dir.running {
		dir.running = true
		dir.wg.Add(1)
		go dir.serveLoop()
	}
}

// step sends a's next descriptors while p's queue is below the window,
// and DIR_DONE at the end, or DIR_DONE DoneCut when a made no progress for
// AnswerTimeout. It reports whether a is over (then it is out of the
// table).
func (dir *Directory) step(a *answer, now time.Time) (over bool) {
	sent := false
	for a.next < len(a.list) && a.p.LinkQueueLen() < dir.window {
		d := a.list[a.next]
		a.next++
		if d.Expired(dir.now()) {
			continue
		}
		var c *cell.Cell
		if a.gossip {
			c = gossipCell(appendDesc(nil, d))
		} else {
			c = cell.New(0, cell.CmdDirDesc)
			if err := c.SetPayload(d.Marshal()); err != nil {
				c.Free()
				continue
			}
		}
		if err := dir.sendCounted(a.p, c); err != nil {
			dir.endAnswer(a, func(st *Stats) { st.AnswersCut++ })
			return true
		}
		sent = true
	}
	switch {
	case a.next == len(a.list):
		dir.sendEnd(a, DoneComplete)
		dir.endAnswer(a, func(st *Stats) { st.Answers++ })
		return true
	case sent:
		a.last = now
	case now.Sub(a.last) >= dir.answerTimeout:
		dir.sendEnd(a, DoneCut)
		dir.endAnswer(a, func(st *Stats) { st.AnswersCut++ })
		return true
	}
	return false
}

// sendEnd ends answer a: DIR_DONE, or GOSSIP DONE for a gossip answer.
func (dir *Directory) sendEnd(a *answer, status byte) {
	if a.gossip {
		dir.sendCounted(a.p, gossipCell(appendDone(nil, status)))
		return
	}
	dir.sendDone(a.p, status)
}

func (dir *Directory) sendDone(p Peer, status byte) {
	c := cell.New(0, cell.CmdDirDone)
	if status != DoneComplete {
		c.SetPayload([]byte{status})
	}
	p.Send(c)
}

// endAnswer takes a out of the table, if the link is still there, and
// counts it.
func (dir *Directory) endAnswer(a *answer, count func(*Stats)) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	count(&dir.stats)
	if ps := dir.peers[a.p]; ps != nil && ps.ans == a {
		ps.ans = nil
		dir.answering--
	}
}

// serveLoop moves the answers that did not fit in their first window,
// every pollInterval, until none is left or Close.
func (dir *Directory) serveLoop() {
	defer dir.wg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var work []*answer
	for {
		select {
		case <-dir.done:
			return
		case now := <-t.C:
			dir.mu.Lock()
			// Keep the answers whose link is still open; the loop owns
			// them, the table keeps them only for PeerClosed.
			work = work[:0]
			for _, a := range dir.pending {
				if ps := dir.peers[a.p]; ps != nil && ps.ans == a {
					work = append(work, a)
				}
			}
			clear(dir.pending)
			dir.pending = dir.pending[:0]
			dir.mu.Unlock()
			var left []*answer
			for _, a := range work {
				if !dir.step(a, now) {
					left = append(left, a)
				}
			}
			clear(work)
			dir.mu.Lock()
			dir.pending = append(dir.pending, left...)
			if len(dir.pending) == 0 {
				dir.running = false
				dir.mu.Unlock()
				return
			}
			dir.mu.Unlock()
		}
	}
}
