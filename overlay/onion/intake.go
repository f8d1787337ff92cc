package onion

import (
	"container/heap"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/internal/defaults"
)

// PoWConfig configures the introduction puzzle (spec/hidden-services.md
// §6). Zero fields take the defaults in brackets.
type PoWConfig struct {
	// Disable never asks clients for work; introductions are still served
	// highest effort first.
	Disable bool
	// Update is how often the effort is reconsidered [1 min].
	Update time.Duration
	// QueueLen bounds the introductions waiting for a worker [256]; when
	// full the lowest effort is dropped.
	QueueLen int
	// InboxLen bounds the introductions waiting to be decrypted [1024].
	InboxLen int
	// MinEffort is the first effort asked for under attack [16].
	MinEffort uint32
	// MaxEffort caps the effort [1<<20].
	MaxEffort uint32
	// ReplayCache bounds the remembered introductions [16384].
	ReplayCache int
}

func (c *PoWConfig) setDefaults() {
	defaults.Set(&c.Update, time.Minute)
	defaults.Set(&c.QueueLen, 256)
	defaults.Set(&c.InboxLen, 1024)
	defaults.Set(&c.ReplayCache, 16384)
	if c.MinEffort == 0 {
		c.MinEffort = 16
	}
	if c.MaxEffort == 0 {
		c.MaxEffort = 1 << 20
	}
}

// pending is a decrypted, checked introduction waiting for a worker.
type pending struct {
	in    hs.Intro
	reply []byte
	layer *hs.Layer
	n     uint64 // arrival order
}

// queue is a max-heap by effort, oldest first among equals.
type queue []*pending

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].in.PoWEffort != q[j].in.PoWEffort {
		return q[i].in.PoWEffort > q[j].in.PoWEffort
	}
	return q[i].n < q[j].n
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*pending)) }
func (q *queue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}

// intake takes INTRODUCE2 bodies from the introduction circuits, decrypts
// and checks them on one goroutine, queues them by puzzle effort and
// serves them with a few workers, and raises the effort it asks for when
// it cannot keep up (Tor's proposal 327, with a hash puzzle).
type intake struct {
	s     *Service
	cfg   PoWConfig
	seed  [32]byte
	inbox chan []byte
	done  chan struct{}
	wg    sync.WaitGroup
	eff   atomic.Uint32

	mu         sync.Mutex
	q          queue
	n          uint64
	ready      chan struct{} // a token per queued introduction
	overloaded bool
	replay     replayCache
	stopped    bool
}

func newIntake(s *Service, cfg PoWConfig) *intake {
	in := &intake{
		s:      s,
		cfg:    cfg,
		inbox:  make(chan []byte, cfg.InboxLen),
		done:   make(chan struct{}),
		ready:  make(chan struct{}, cfg.QueueLen+1),
		replay: newReplayCache(cfg.ReplayCache),
	}
	rand.Read(in.seed[:])
	return in
}

func (in *intake) effort() uint32 { return in.eff.Load() }

func (in *intake) start() {
	in.wg.Go(in.decryptLoop)
	for range in.s.cfg.Workers {
		in.wg.Go(in.work)
	}
	in.wg.Go(in.updateLoop)
}

func (in *intake) stop() {
	in.mu.Lock()
	if in.stopped {
		in.mu.Unlock()
		return
	}
	in.stopped = true
	in.mu.Unlock()
	close(in.done)
	in.wg.Wait()
}

// offer takes an INTRODUCE2 body from an introduction circuit's reader; it
// never blocks.
func (in *intake) offer(body []byte) {
	b := append([]byte(nil), body...)
	select {
	case in.inbox <- b:
	default:
		in.drop(true)
	}
}

func (in *intake) drop(overload bool) {
	in.s.mu.Lock()
	in.s.stats.Dropped++
	in.s.mu.Unlock()
	if overload {
		in.mu.Lock()
		in.overloaded = true
		in.mu.Unlock()
	}
}

func (in *intake) decryptLoop() {
	for {
		select {
		case <-in.done:
			return
		case b := <-in.inbox:
			in.handle(b)
		}
	}
}

// handle decrypts and checks one introduction and queues it.
func (in *intake) handle(b []byte) {
	s := in.s
	if len(b) <= 32 {
		in.drop(false)
		return
	}
	auth := [32]byte(b[:32])
	if !s.ourAuthKey(auth) {
		in.drop(false)
		return
	}
	s.mu.Lock()
	s.stats.Introductions++
	s.mu.Unlock()
	for _, bk := range s.blindedKeys() {
		intro, replay, reply, l, err := hs.ServiceAccept(nil, s.env.Network(), s.pub, bk, auth, s.secrets, b[32:])
		if err != nil {
			continue
		}
		if intro.PoWEffort > 0 && !hs.CheckPoW(in.seed, bk, intro.PoWEffort, intro.PoWNonce) {
			in.drop(false)
			return
		}
		in.mu.Lock()
		fresh := in.replay.add(replay)
		if fresh && intro.PoWEffort > 0 {
			var k [32]byte
			k[0] = 1 // a puzzle solution, apart from handshake keys
			copy(k[1:], intro.PoWNonce[:])
			copy(k[17:], bk[:15])
			fresh = in.replay.add(k)
		}
		if !fresh {
			in.mu.Unlock()
			s.mu.Lock()
			s.stats.Replays++
			s.stats.Dropped++
			s.mu.Unlock()
			return
		}
		in.n++
		heap.Push(&in.q, &pending{in: intro, reply: reply, layer: l, n: in.n})
		dropped := false
		if len(in.q) > in.cfg.QueueLen {
			in.removeLowestLocked()
			in.overloaded = true
			dropped = true
		} else {
			in.ready <- struct{}{}
		}
		in.mu.Unlock()
		if dropped {
			in.drop(false)
		}
		return
	}
	in.drop(false)
}

// removeLowestLocked drops the queued introduction of lowest effort, the
// newest among equals.
func (in *intake) removeLowestLocked() {
	lo := 0
	for i, p := range in.q {
		if in.q.Less(lo, i) {
			lo = i
		}
		_ = p
	}
	heap.Remove(&in.q, lo)
}

// work serves queued introductions, highest effort first.
func (in *intake) work() {
	for {
		select {
		case <-in.done:
			return
		case <-in.ready:
		}
		in.mu.Lock()
		if len(in.q) == 0 {
			in.mu.Unlock()
			continue
		}
		p := heap.Pop(&in.q).(*pending)
		in.mu.Unlock()
		if err := in.s.rendezvous(p.in, p.reply, p.layer); err != nil {
			in.s.env.Logf("onion: rendezvous failed: %v", err)
		}
	}
}

// updateLoop reconsiders the effort every Update: up when introductions
// were dropped or the queue stays half full, down when it is empty.
func (in *intake) updateLoop() {
	if in.cfg.Disable {
		return
	}
	t := time.NewTicker(in.cfg.Update)
	defer t.Stop()
	for {
		select {
		case <-in.done:
			return
		case <-t.C:
		}
		in.mu.Lock()
		busy := in.overloaded || len(in.q) > in.cfg.QueueLen/2
		idle := len(in.q) == 0 && !in.overloaded
		in.overloaded = false
		in.mu.Unlock()
		cur := in.eff.Load()
		next := cur
		switch {
		case busy:
			next = min(max(cur*2, in.cfg.MinEffort), in.cfg.MaxEffort)
		case idle:
			next = cur / 2
			if next < in.cfg.MinEffort {
				next = 0
			}
		}
		if next != cur {
			in.eff.Store(next)
			in.s.env.Logf("onion: introduction puzzle effort %d -> %d", cur, next)
			in.s.poke()
		}
	}
}

// replayCache remembers up to max values, forgetting the oldest first.
type replayCache struct {
	max  int
	seen map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newReplayCache(max int) replayCache {
	return replayCache{max: max, seen: make(map[[32]byte]struct{})}
}

// add reports whether v was new, remembering it.
func (c *replayCache) add(v [32]byte) bool {
	if _, ok := c.seen[v]; ok {
		return false
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, v)
	} else {
		delete(c.seen, c.ring[c.next])
		c.ring[c.next] = v
		c.next = (c.next + 1) % c.max
	}
	c.seen[v] = struct{}{}
	return true
}
