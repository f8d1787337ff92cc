package circuit

import (
	"errors"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
)

// A CREATE goes through two stages at a relay (spec/circuits.md §5.1):
//
//  1. Admission, on the channel's reader (handleCreate): cheap checks
//     only, no handshake work and no allocation for a refusal: the ID's
//     half, the channel's CREATE token bucket, the circuit limits, the
//     handshake queues, and the replay filter. An admitted CREATE is
//     registered (its circuit exists, without keys) and queued on its
//     channel.
//  2. The handshake, on one of Config.Handshakes workers
//     (handshakeWorker), which take one CREATE from each channel with
//     CREATEs waiting in turn, so one channel's flood cannot starve the
//     others.
//
// Until CREATED is sent the circuit has no keys: a RELAY cell for it is a
// protocol error (the sender cannot have the keys either), a DESTROY
// cancels the handshake.

var errReplay = errors.New("circuit: replayed CREATE handshake")

// handleCreate admits or refuses a CREATE for an unknown circuit ID.
func (s *Switch) handleCreate(ch Channel, c *cell.Cell) {
	id := c.Circ()
	reason, queued := s.admitCreate(ch, id, c)
	if queued {
		return // the worker owns c
	}
	c.Free()
	sendDestroy(ch, id, reason)
}

// admitCreate queues c, or returns the DESTROY reason to refuse it with.
func (s *Switch) admitCreate(ch Channel, id uint32, c *cell.Cell) (reason byte, queued bool) {
	p, err := c.Payload()
	// The peer allocates from its own half of the ID space.
	if err != nil || s.cfg.OnionKeys == nil || ownHalf(ch, id) {
		return cell.DestroyProtocol, false
	}
	if len(p) != onionhs.ClientMessageSize {
		s.counters.handshakeFailed.Add(1)
		return cell.DestroyHandshake, false
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(ch)
	switch {
	case t == nil:
		return cell.DestroyShutdown, false // closing; the channel may be gone
	case !t.creates.Take(now, s.cfg.CreateRate, s.cfg.CreateBurst):
		s.counters.createRateLimited.Add(1)
		return cell.DestroyResource, false
	case t.circs[id] != nil:
		return cell.DestroyProtocol, false // cannot happen: HandleCell looked it up
	case t.peer >= s.cfg.MaxCircuitsPerChannel, s.relayCircs >= s.cfg.MaxCircuits,
		t.source != "" && s.sourceCircs[t.source] >= s.cfg.MaxCircuitsPerSource,
		len(t.hsQueue) >= s.cfg.MaxPendingCreatesPerChannel,
		len(t.hsQueue) > 0 && s.hsPending >= s.cfg.MaxPendingCreates:
		s.counters.createRefused.Add(1)
		return cell.DestroyResource, false
	case s.replay.seen((*[32]byte)(p), now):
		s.counters.replays.Add(1)
		return cell.DestroyHandshake, false
	}
	rc := &relayCirc{sw: s, prev: ch, prevID: id, done: make(chan struct{}), hsCell: c}
	t.circs[id] = prevEnd{rc}
	t.peer++
	s.relayCircs++
	if t.source != "" {
		if s.sourceCircs == nil {
			s.sourceCircs = make(map[string]int)
		}
		s.sourceCircs[t.source]++
	}
	t.hsQueue = append(t.hsQueue, rc)
	s.hsPending++
	if !t.ready {
		t.ready = true
		s.hsReady = append(s.hsReady, t)
	}
	s.hsCond.Signal()
	return 0, true
}

// handshakeWorker answers queued CREATEs until the switch closes.
func (s *Switch) handshakeWorker() {
	defer s.wg.Done()
	for {
		rc := s.nextCreate()
		if rc == nil {
			return
		}
		s.answerCreate(rc)
	}
}

// nextCreate waits for a queued CREATE and takes the oldest one of the
// channel whose turn it is; nil once the switch is closed.
func (s *Switch) nextCreate() *relayCirc {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.hsReady) == 0 && !s.closed {
		s.hsCond.Wait()
	}
	if s.closed {
		return nil
	}
	t := s.hsReady[0]
	s.hsReady[0] = nil
	s.hsReady = s.hsReady[1:]
	rc := t.hsQueue[0]
	t.hsQueue[0] = nil
	t.hsQueue = t.hsQueue[1:]
	s.hsPending--
	if len(t.hsQueue) > 0 {
		s.hsReady = append(s.hsReady, t) // to the back of the round
	} else {
		t.hsQueue, t.ready = nil, false
	}
	return rc
}

// dropQueue frees the CREATEs t has waiting (its channel closed, or the
// switch). The caller holds s.mu.
func (s *Switch) dropQueue(t *chanTable) {
	for _, rc := range t.hsQueue {
		rc.hsCell.Free()
		rc.hsCell = nil
	}
	s.hsPending -= len(t.hsQueue)
	t.hsQueue = nil
	if t.ready {
		t.ready = false
		for i, x := range s.hsReady {
			if x == t {
				s.hsReady = append(s.hsReady[:i], s.hsReady[i+1:]...)
				break
			}
		}
	}
}

// answerCreate runs the handshake of a queued CREATE and answers CREATED,
// or destroys the circuit (reason 6).
func (s *Switch) answerCreate(rc *relayCirc) {
	c := rc.hsCell
	rc.hsCell = nil
	defer c.Free()
	rc.mu.Lock()
	dead := rc.dead
	rc.mu.Unlock()
	if dead {
		return // DESTROYed while it waited
	}
	msg, _ := c.Payload() // checked by admitCreate
	reply, lk, err := s.respond(msg)
	var l *layer.Relay
	if err == nil && !s.replay.add((*[32]byte)(msg), time.Now()) {
		// The same message 1 was admitted twice before either finished.
		s.counters.replays.Add(1)
		err = errReplay
	} else if err != nil {
		s.counters.handshakeFailed.Add(1)
	}
	if err == nil {
		l, err = layer.NewRelay(&lk)
	}
	if err != nil {
		rc.destroy(cell.DestroyHandshake, true, false)
		return
	}
	out := cell.New(rc.prevID, cell.CmdCreated)
	out.SetPayload(reply)
	rc.mu.Lock()
	if rc.dead {
		rc.mu.Unlock()
		out.Free()
		return
	}
	rc.layer = l
	// Sent under rc.mu, so CREATED leaves before any DESTROY of rc.
	err = rc.prev.Send(out)
	rc.mu.Unlock()
	if err != nil {
		rc.destroy(cell.DestroyResource, true, false)
	}
}

// respond answers message 1 with the first onion pair it was made for: the
// current pair, else the previous one (spec/circuits.md §3). A message for
// another onion key fails message 1's AEAD check, before any ML-KEM work;
// since ML-KEM decapsulation never fails, an error from the current pair
// means the message was not made for it.
func (s *Switch) respond(msg []byte) (reply []byte, lk layer.Keys, err error) {
	s.cfg.OnionKeys.UseOnionKeys(func(pairs []keys.OnionPair) {
		err = onionhs.ErrHandshake
		for _, p := range pairs {
			reply, lk, err = onionhs.Respond(s.cfg.Random, s.cfg.Network,
				onionhs.RelayPrivate{Onion: p.Onion, KEM: p.KEM}, msg)
			if err == nil {
				return
			}
		}
	})
	return reply, lk, err
}
