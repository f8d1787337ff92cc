package dir

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Defaults for the GossipConfig fields of the same names.
const (
	// DefaultGossipInterval and DefaultGossipBurst rate gossip requests
	// per link: a burst of 8, then one per 5 s. One Sync round costs 1 to
	// 4 requests (a SUMMARY_REQ, IDS_REQs, one WANT).
	DefaultGossipInterval = 5 * time.Second
	DefaultGossipBurst    = 8
	// DefaultMaxIDCells bounds the IDS cells of one IDS_REQ answer (16
	// cells, 1,616 entries, 64 KiB).
	DefaultMaxIDCells = 16
	// DefaultSyncTimeout bounds one Sync round.
	DefaultSyncTimeout = 2 * time.Minute
)

// GossipConfig bounds the gossip exchange. The zero value means the
// defaults.
type GossipConfig struct {
	// Interval and Burst rate the gossip requests of one link
	// (SUMMARY_REQ, IDS_REQ, the last cell of a WANT): a token bucket of
	// Burst, refilled one per Interval. A request over the rate is
	// answered BUSY. Zero means DefaultGossipInterval, DefaultGossipBurst.
	Interval time.Duration
	Burst    int
	// MaxIDCells bounds the IDS cells that answer one IDS_REQ; also no
	// more than the answer window minus the link's queue is sent. The
	// buckets that did not fit are asked again. Zero means
	// DefaultMaxIDCells.
	MaxIDCells int
	// MaxWanting bounds the WANT entries the directory holds over all
	// links while their WANT requests are still arriving (each link holds
	// at most MaxRelays). Zero means 4 × MaxRelays.
	MaxWanting int
	// SyncTimeout bounds one Sync round. Zero means DefaultSyncTimeout.
	SyncTimeout time.Duration
}

func (g *GossipConfig) setDefaults(maxRelays int) {
	defaults.Set(&g.Interval, DefaultGossipInterval)
	defaults.Set(&g.Burst, DefaultGossipBurst)
	defaults.Set(&g.MaxIDCells, DefaultMaxIDCells)
	defaults.Set(&g.MaxWanting, 4*maxRelays)
	defaults.Set(&g.SyncTimeout, DefaultSyncTimeout)
}

var (
	// ErrSyncReplaced is returned by a Sync that a later Sync with the
	// same peer replaced.
	ErrSyncReplaced = errors.New("dir: replaced by a newer sync with the same peer")
	// ErrSyncProtocol is returned by a Sync whose peer broke the
	// exchange (an IDS answer that answered no bucket).
	ErrSyncProtocol = errors.New("dir: the peer broke the gossip exchange")
)

// SyncResult is what one Sync round did.
type SyncResult struct {
	Buckets   int    // summary buckets that differed
	Wanted    int    // descriptors asked for (WANT)
	Learned   int    // new relays stored
	Updated   int    // newer descriptors of known relays stored
	Refused   int    // received descriptors admission refused (AddFrom)
	Bad       int    // received descriptors that did not parse or verify
	Missing   int    // wanted descriptors the peer did not send
	BytesSent uint64 // GOSSIP cells sent in this round (cell.Size each)
	BytesRecv uint64 // GOSSIP cells received for this round
}

// Sync stages.
const (
	stageSummary = iota
	stageIDs
	stageDescs
)

// session is one Sync round with a peer. Directory.mu guards it.
type session struct {
	notify   chan struct{} // signalled on every change; capacity 1
	stage    int
	summary  *Msg
	ids      []IDEntry // IDS entries received, at most MaxRelays
	idsLast  bool      // the IDS answer to the last IDS_REQ ended
	answered int       // buckets it answered
	wanted   map[keys.NodeID]bool
	done     bool  // DONE received
	err      error // set once the round must stop
	res      SyncResult
}

func (s *session) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Sync runs one anti-entropy round with p (spec/gossip.md §4): it asks
// for p's SUMMARY, asks for the IDS of the buckets that differ from its
// own, and WANTs the descriptors it lacks or holds older. The descriptors
// arrive through HandleCell and are stored through AddFrom with p.Source()
// as their source, after Config.Parse; only wanted ones are taken.
// Call it only for a peer that speaks GOSSIP (SupportsGossip). A second
// Sync with the same peer replaces the first (ErrSyncReplaced); a BUSY
// answer is ErrRefused; a closed link is ErrPeerClosed.
func (dir *Directory) Sync(ctx context.Context, p Peer) (SyncResult, error) {
	ctx, cancel := context.WithTimeout(ctx, dir.gossip.SyncTimeout)
	defer cancel()
	s := &session{notify: make(chan struct{}, 1)}
	dir.mu.Lock()
	if dir.closed {
		dir.mu.Unlock()
		return SyncResult{}, ErrClosed
	}
	dir.endSyncLocked(p, dir.syncs[p], ErrSyncReplaced)
	dir.syncs[p] = s
	dir.mu.Unlock()
	err := dir.syncRound(ctx, p, s)
	dir.mu.Lock()
	dir.endSyncLocked(p, s, nil)
	if err == nil {
		s.res.Missing = len(s.wanted)
	}
	res := s.res
	dir.mu.Unlock()
	return res, err
}

func (dir *Directory) syncRound(ctx context.Context, p Peer, s *session) error {
	if err := dir.sendSync(p, s, &Msg{Type: MsgSummaryReq}); err != nil {
		return err
	}
	if err := dir.waitSync(ctx, s, func() bool { return s.summary != nil }); err != nil {
		return err
	}
	mine := summaryOf(dir.freshIDs())
	var diff []byte
	for b := range Buckets {
		if mine.Hashes[b] != s.summary.Hashes[b] {
			diff = append(diff, byte(b))
		}
	}
	dir.mu.Lock()
	s.res.Buckets = len(diff)
	s.stage = stageIDs
	dir.mu.Unlock()
	for len(diff) > 0 {
		dir.mu.Lock()
		s.idsLast, s.answered = false, 0
		dir.mu.Unlock()
		if err := dir.sendSync(p, s, &Msg{Type: MsgIDsReq, Buckets: diff}); err != nil {
			return err
		}
		if err := dir.waitSync(ctx, s, func() bool { return s.idsLast }); err != nil {
			return err
		}
		dir.mu.Lock()
		n := min(s.answered, len(diff))
		dir.mu.Unlock()
		if n == 0 {
			return ErrSyncProtocol
		}
		diff = diff[n:]
	}
	want := dir.wantsFrom(s, p.Source())
	if len(want) == 0 {
		return nil
	}
	dir.mu.Lock()
	s.stage = stageDescs
	s.wanted = make(map[keys.NodeID]bool, len(want))
	for _, id := range want {
		s.wanted[id] = true
	}
	s.res.Wanted = len(want)
	dir.mu.Unlock()
	for len(want) > 0 {
		n := min(len(want), MaxWantPerMsg)
		m := &Msg{Type: MsgWant, Want: want[:n], More: n < len(want)}
		if err := dir.sendSync(p, s, m); err != nil {
			return err
		}
		want = want[n:]
	}
	return dir.waitSync(ctx, s, func() bool { return s.done })
}

// wantsFrom returns the NodeIDs among the peer's IDS entries that this
// directory lacks or holds older, leaving out versions it refused lately
// and ones that cannot be fresh; at most MaxRelays, and no more new relays
// than the peer's source may still introduce (the rest would be refused:
// they are asked for in a later round, once relays it introduced are
// confirmed). A peer that lists, at the version we hold, a relay another
// source introduced confirms it (spec/gossip.md §5): listing is offering.
func (dir *Directory) wantsFrom(s *session, src string) []keys.NodeID {
	now := dir.now()
	oldest := now.Add(-descriptor.MaxAge).Unix()
	newest := now.Add(descriptor.MaxClockSkew).Unix()
	sg := sourceGroup(src)
	dir.mu.Lock()
	defer dir.mu.Unlock()
	room := dir.maxRelays
	if !localSource(src) {
		room = max(dir.sourceLimitLocked(src)-dir.sources[src], 0)
	}
	var want []keys.NodeID
	for _, e := range s.ids {
		if e.Published < oldest || e.Published > newest || len(want) >= dir.maxRelays {
			continue
		}
		if pub, ok := dir.refused[e.ID]; ok && pub == e.Published {
			continue
		}
		have := dir.relays[e.ID]
		if have != nil && src != "" && sg != have.srcGroup && have.d.Published.Unix() <= e.Published {
			dir.confirmLocked(have)
		}
		if have != nil && have.d.Published.Unix() >= e.Published {
			continue
		}
		if have == nil {
			if room == 0 {
				continue
			}
			room--
		}
		want = append(want, e.ID)
	}
	return want
}

// waitSync waits until cond (called under dir.mu) holds or the round
// stops.
func (dir *Directory) waitSync(ctx context.Context, s *session, cond func() bool) error {
	for {
		dir.mu.Lock()
		ok, err := cond(), s.err
		dir.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendSync sends m to p for round s, counting its bytes.
func (dir *Directory) sendSync(p Peer, s *session, m *Msg) error {
	dir.mu.Lock()
	s.res.BytesSent += cell.Size
	dir.mu.Unlock()
	return dir.sendCounted(p, gossipCell(m.Marshal()))
}

// sendCounted sends c to p, counting the bytes of a GOSSIP cell.
func (dir *Directory) sendCounted(p Peer, c *cell.Cell) error {
	gossip := c.Cmd() == cell.CmdGossip
	err := p.Send(c)
	if gossip {
		dir.mu.Lock()
		dir.stats.GossipBytesSent += cell.Size
		dir.mu.Unlock()
	}
	return err
}

// endSyncLocked ends round s with p, with err unless nil.
func (dir *Directory) endSyncLocked(p Peer, s *session, err error) {
	if s == nil || dir.syncs[p] != s {
		return
	}
	delete(dir.syncs, p)
	if err != nil && s.err == nil {
		s.err = err
	}
	s.signal()
}

// freshIDs returns the (NodeID, published) pairs of the fresh relays.
func (dir *Directory) freshIDs() []IDEntry {
	now := dir.now()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]IDEntry, 0, len(dir.relays))
	for id, e := range dir.relays {
		if !e.d.Expired(now) {
			out = append(out, IDEntry{ID: id, Published: e.d.Published.Unix()})
		}
	}
	return out
}

// handleGossip handles a GOSSIP cell from p.
func (dir *Directory) handleGossip(p Peer, c *cell.Cell) {
	dir.mu.Lock()
	dir.stats.GossipBytesRecv += cell.Size
	dir.mu.Unlock()
	b, err := c.Payload()
	var m *Msg
	if err == nil {
		m, err = ParseMsg(b)
	}
	if err != nil {
		dir.mu.Lock()
		dir.stats.GossipMalformed++
		dir.mu.Unlock()
		return
	}
	switch m.Type {
	case MsgSummaryReq:
		dir.serveSummary(p)
	case MsgIDsReq:
		dir.serveIDs(p, m.Buckets)
	case MsgWant:
		dir.serveWant(p, m)
	case MsgDesc:
		dir.takeGossipDesc(p, m.Desc)
	default:
		dir.takeAnswer(p, m)
	}
}

// takeAnswer gives SUMMARY, IDS, DONE and BUSY to p's Sync round, if one
// waits for it.
func (dir *Directory) takeAnswer(p Peer, m *Msg) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	s := dir.syncs[p]
	ok := s != nil
	if ok {
		switch m.Type {
		case MsgSummary:
			ok = s.stage == stageSummary && s.summary == nil
			if ok {
				s.summary = m
			}
		case MsgIDs:
			ok = s.stage == stageIDs && !s.idsLast
			if ok {
				room := max(dir.maxRelays-len(s.ids), 0)
				if len(m.IDs) > room {
					dir.stats.GossipUnsolicited += uint64(len(m.IDs) - room)
				}
				s.ids = append(s.ids, m.IDs[:min(room, len(m.IDs))]...)
				s.idsLast, s.answered = m.Last, int(m.Answered)
			}
		case MsgDone:
			ok = s.stage == stageDescs && !s.done
			if ok {
				s.done = true
				if m.Status == DoneRefused {
					s.err = ErrRefused
				}
			}
		case MsgBusy:
			s.err = ErrRefused
		}
	}
	if !ok {
		dir.stats.GossipUnsolicited++
		return
	}
	s.res.BytesRecv += cell.Size
	s.signal()
}

// takeGossipDesc stores a DESC if p's Sync round wanted it.
func (dir *Directory) takeGossipDesc(p Peer, raw []byte) {
	dir.mu.Lock()
	s := dir.syncs[p]
	if s == nil || s.stage != stageDescs || s.done || len(s.wanted) == 0 {
		dir.stats.GossipUnsolicited++
		dir.mu.Unlock()
		return
	}
	s.res.BytesRecv += cell.Size
	dir.mu.Unlock()
	d, err := dir.parse(raw)
	dir.mu.Lock()
	if err != nil {
		dir.stats.Bad++
		s.res.Bad++
		dir.mu.Unlock()
		return
	}
	id := d.NodeID()
	if !s.wanted[id] {
		dir.stats.GossipUnsolicited++
		dir.mu.Unlock()
		return
	}
	delete(s.wanted, id)
	known := dir.relays[id] != nil
	dir.mu.Unlock()
	ok, why := dir.AddFrom(d, p.Source())
	dir.mu.Lock()
	switch {
	case !ok:
		s.res.Refused++
		if !errors.Is(why, ErrNotNewer) {
			dir.noteRefusedLocked(id, d)
		}
	case known:
		s.res.Updated++
	default:
		s.res.Learned++
	}
	dir.mu.Unlock()
}

// gossipPeerLocked returns p's state, made if new, and whether a request
// from p is within its rate. dir.mu must be held.
func (dir *Directory) gossipRequestLocked(p Peer, now time.Time) (*peerState, bool) {
	ps := dir.peerLocked(p)
	return ps, ps.greqs.Take(now, 1/dir.gossip.Interval.Seconds(), dir.gossip.Burst)
}

// busy answers a refused request of type t with BUSY, if p's queue has
// room (one cell for one cell: a peer that does not read gets nothing
// more queued).
func (dir *Directory) busy(p Peer, t byte) {
	dir.mu.Lock()
	dir.stats.GossipRefused++
	dir.mu.Unlock()
	if p.LinkQueueLen() < dir.window {
		dir.sendCounted(p, gossipCell((&Msg{Type: MsgBusy, Refused: t}).Marshal()))
	}
}

// serveSummary answers a SUMMARY_REQ.
func (dir *Directory) serveSummary(p Peer) {
	dir.mu.Lock()
	_, ok := dir.gossipRequestLocked(p, time.Now())
	ok = ok && !dir.closed
	dir.mu.Unlock()
	if !ok || p.LinkQueueLen() >= dir.window {
		dir.busy(p, MsgSummaryReq)
		return
	}
	dir.sendCounted(p, gossipCell(summaryOf(dir.freshIDs()).Marshal()))
}

// serveIDs answers an IDS_REQ: the entries of the requested buckets, in
// order, whole buckets only, in at most MaxIDCells cells and no more than
// the link's queue has room for. If the first bucket alone is larger, its
// first entries are sent and it counts as answered.
func (dir *Directory) serveIDs(p Peer, buckets []byte) {
	dir.mu.Lock()
	_, ok := dir.gossipRequestLocked(p, time.Now())
	ok = ok && !dir.closed
	dir.mu.Unlock()
	budget := min(dir.gossip.MaxIDCells, dir.window-p.LinkQueueLen())
	if !ok || budget < 1 {
		dir.busy(p, MsgIDsReq)
		return
	}
	ids := dir.freshIDs()
	sortIDs(ids)
	limit := budget * MaxIDsPerMsg
	var out []IDEntry
	answered := 0
	for _, b := range buckets {
		lo, _ := bucketRange(ids, b)
		hi := lo
		for hi < len(ids) && ids[hi].ID[0] == b {
			hi++
		}
		if len(out)+hi-lo > limit {
			if answered == 0 {
				out = append(out, ids[lo:lo+limit]...)
				answered = 1
			}
			break
		}
		out = append(out, ids[lo:hi]...)
		answered++
	}
	for first := true; first || len(out) > 0; first = false {
		n := min(len(out), MaxIDsPerMsg)
		m := &Msg{Type: MsgIDs, IDs: out[:n]}
		if n == len(out) {
			m.Last, m.Answered = true, uint16(answered)
		}
		if dir.sendCounted(p, gossipCell(m.Marshal())) != nil {
			return
		}
		out = out[n:]
	}
}

// bucketRange returns the index of the first entry of bucket b in sorted
// ids.
func bucketRange(ids []IDEntry, b byte) (int, bool) {
	lo, hi := 0, len(ids)
	for lo < hi {
		mid := (lo + hi) / 2
		if bytes.Compare(ids[mid].ID[:1], []byte{b}) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(ids) && ids[lo].ID[0] == b
}

// serveWant collects the descriptors a WANT names (fresh ones this
// directory holds) and, at its last cell, answers them paced like a
// DIR_GET: DESC messages while the link's queue is below the window,
// then DONE.
func (dir *Directory) serveWant(p Peer, m *Msg) {
	now := time.Now()
	fresh := dir.now()
	dir.mu.Lock()
	if dir.closed {
		dir.mu.Unlock()
		return
	}
	ps := dir.peerLocked(p)
	for _, id := range m.Want {
		e := dir.relays[id]
		if e == nil || e.d.Expired(fresh) {
			continue
		}
		if dir.wanting >= dir.gossip.MaxWanting {
			dir.dropLargestWantLocked(ps)
		}
		if len(ps.want) >= dir.maxRelays || dir.wanting >= dir.gossip.MaxWanting {
			dir.stats.GossipWantsDropped++
			continue
		}
		ps.want = append(ps.want, e.d)
		dir.wanting++
	}
	if m.More {
		dir.mu.Unlock()
		return
	}
	list := ps.want
	ps.want = nil
	dir.wanting -= len(list)
	_, ok := dir.gossipRequestLocked(p, now)
	if ps.ans != nil || (len(list) > dir.window && dir.answering >= dir.maxAnswers) {
		ok = false
	}
	if !ok {
		dir.mu.Unlock()
		dir.busy(p, MsgWant)
		return
	}
	dir.run(&answer{p: p, list: list, last: now, gossip: true}, ps, now)
}

// dropLargestWantLocked forgets the largest unfinished WANT of a link
// other than ps's, if it is larger than ps's own: a link that never ends
// its WANT cannot starve the others of the MaxWanting bound.
func (dir *Directory) dropLargestWantLocked(ps *peerState) {
	var big *peerState
	for _, o := range dir.peers {
		if o != ps && (big == nil || len(o.want) > len(big.want)) {
			big = o
		}
	}
	if big == nil || len(big.want) <= len(ps.want) {
		return
	}
	dir.stats.GossipWantsDropped += uint64(len(big.want))
	dir.wanting -= len(big.want)
	clear(big.want)
	big.want = nil
}
