package circuit

import (
	"crypto/subtle"
	"sync"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/layer"
)

// A joint joins two circuits end to end at a relay that is the last hop of
// both (a rendezvous point, spec/circuits.md §7). One client sends
// JOIN_ESTABLISH with a cookie and waits; the other sends JOIN with the same
// cookie; the relay answers JOINED on the first and from then on passes E2E
// messages from either circuit to the other, unread: they are sealed by an
// end-to-end layer between the two clients.
//
// Flow control holds across the joint hop by hop. Each circuit has its own
// windows between its client and this relay, counting E2E messages. The
// relay acknowledges (circuit SENDME) a side's messages only once it has
// passed them on to the other side, and it passes a message on only while
// the other side's window is open; until then it waits in pending. So a
// joint never holds more than CircWindow messages per direction, and a
// client that stops reading stalls the other client after at most two
// windows in flight.
type joint struct {
	mu   sync.Mutex // guards side; held while originating on either circuit
	side [2]jointSide
	sw   *Switch
	dead bool
}

type jointSide struct {
	rc *relayCirc
	// Towards this side's client.
	pkgWin  int                   // E2E messages we may still originate
	sent    int                   // E2E messages originated
	digests [][layer.TagSize]byte // tags every CircSendmeInc-th sent, for SENDME checks
	pending [][]byte              // E2E data from the other side waiting for pkgWin
	// From this side's client.
	recvWin   int                   // E2E messages its client may still send
	recvd     int                   // E2E messages received
	forwarded int                   // of those, passed on to the other side
	acks      [][layer.TagSize]byte // tags every CircSendmeInc-th received, to echo once forwarded
}

// jointTable holds the circuits waiting for a JOIN, by cookie.
type jointTable struct {
	mu      sync.Mutex
	waiting map[[cell.CookieLen]byte]*relayCirc
	joints  map[*joint]struct{}
}

func (t *jointTable) stats() (waiting, joints, buffered int) {
	t.mu.Lock()
	waiting = len(t.waiting)
	js := make([]*joint, 0, len(t.joints))
	for j := range t.joints {
		js = append(js, j)
	}
	t.mu.Unlock()
	for _, j := range js {
		j.mu.Lock()
		buffered += len(j.side[0].pending) + len(j.side[1].pending)
		j.mu.Unlock()
	}
	return waiting, len(js), buffered
}

// handleJoin handles JOIN_ESTABLISH and JOIN from rc's client; an error
// destroys rc.
func (s *Switch) handleJoin(rc *relayCirc, m cell.RelayMsg) error {
	if m.Stream != 0 || len(m.Data) < cell.CookieLen ||
		(m.Cmd == cell.RelayJoinEstablish && len(m.Data) != cell.CookieLen) {
		return errProtocol
	}
	var cookie [cell.CookieLen]byte
	copy(cookie[:], m.Data)
	rc.mu.Lock()
	free := rc.freeEnd()
	rc.mu.Unlock()
	if !free {
		return errProtocol
	}
	t := &s.joints
	if m.Cmd == cell.RelayJoinEstablish {
		t.mu.Lock()
		if _, dup := t.waiting[cookie]; dup || len(t.waiting) >= s.cfg.MaxJoints {
			t.mu.Unlock()
			return errProtocol
		}
		t.waiting[cookie] = rc
		t.mu.Unlock()
		j := &joint{sw: s}
		j.side[0] = newJointSide(rc)
		rc.mu.Lock()
		rc.joint = j
		rc.mu.Unlock()
		return rc.emit(cell.RelayJoinEstablished, 0, nil)
	}
	t.mu.Lock()
	a := t.waiting[cookie]
	delete(t.waiting, cookie)
	if a == nil {
		t.mu.Unlock()
		return errProtocol // no circuit waits with this cookie
	}
	a.mu.Lock()
	j := a.joint
	a.mu.Unlock()
	if t.joints == nil {
		t.joints = make(map[*joint]struct{})
	}
	t.joints[j] = struct{}{}
	t.mu.Unlock()

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.dead {
		return errProtocol
	}
	j.side[1] = newJointSide(rc)
	rc.mu.Lock()
	rc.joint = j
	rc.mu.Unlock()
	return a.emit(cell.RelayJoined, 0, m.Data[cell.CookieLen:])
}

func newJointSide(rc *relayCirc) jointSide {
	return jointSide{rc: rc, pkgWin: CircWindow, recvWin: CircWindow}
}

// which returns rc's index in j; the caller holds j.mu.
func (j *joint) which(rc *relayCirc) int {
	if j.side[0].rc == rc {
		return 0
	}
	return 1
}

// noteSent records the tag of an E2E message originated towards rc's
// client. originate calls it with rc.mu held, from a call the joint made
// with j.mu held, so it takes no lock.
func (j *joint) noteSent(rc *relayCirc, tag [layer.TagSize]byte) {
	s := &j.side[j.which(rc)]
	s.sent++
	if s.sent%CircSendmeInc == 0 {
		s.digests = append(s.digests, tag)
	}
}

// handle processes a message for this hop on a circuit in the joint. It
// owns c. An error destroys rc (and so the joint).
func (j *joint) handle(rc *relayCirc, c *cell.Cell, m cell.RelayMsg, tag [layer.TagSize]byte) error {
	defer c.Free()
	j.mu.Lock()
	defer j.mu.Unlock()
	i := j.which(rc)
	if j.side[1].rc == nil || j.dead {
		return errProtocol // still waiting: nothing may cross yet
	}
	me, other := &j.side[i], &j.side[1-i]
	switch {
	case m.Cmd == cell.RelayE2E && m.Stream == 0:
		me.recvWin--
		me.recvd++
		if me.recvWin < 0 {
			return errProtocol
		}
		if me.recvd%CircSendmeInc == 0 {
			me.acks = append(me.acks, tag)
		}
		data := append([]byte(nil), m.Data...)
		if h := j.sw.jointHook; h != nil {
			h(data)
		}
		if other.pkgWin > 0 && len(other.pending) == 0 {
			return j.pass(1-i, data)
		}
		other.pending = append(other.pending, data)
		return nil
	case m.Cmd == cell.RelaySendme && m.Stream == 0:
		if len(me.digests) == 0 || len(m.Data) != layer.TagSize ||
			subtle.ConstantTimeCompare(m.Data, me.digests[0][:]) != 1 {
			return errProtocol
		}
		me.digests = me.digests[1:]
		me.pkgWin += CircSendmeInc
		if me.pkgWin > CircWindow {
			return errProtocol
		}
		for len(me.pending) > 0 && me.pkgWin > 0 {
			data := me.pending[0]
			me.pending[0] = nil
			me.pending = me.pending[1:]
			if err := j.pass(i, data); err != nil {
				return err
			}
		}
		return nil
	}
	return errProtocol // streams do not open at a joint
}

// pass originates data as an E2E message towards side to's client and
// acknowledges it to the other side once a SENDME's worth has crossed. The
// caller holds j.mu and has checked the window. An error means a sealed
// cell was lost: the caller's circuit is destroyed, and with it the joint.
func (j *joint) pass(to int, data []byte) error {
	dst, src := &j.side[to], &j.side[1-to]
	dst.pkgWin--
	if err := dst.rc.emit(cell.RelayE2E, 0, data); err != nil {
		return err
	}
	src.forwarded++
	if src.forwarded%CircSendmeInc == 0 && len(src.acks) > 0 {
		ack := src.acks[0]
		src.acks = src.acks[1:]
		src.recvWin += CircSendmeInc
		return src.rc.emit(cell.RelaySendme, 0, ack[:])
	}
	return nil
}

// circuitDead tears the joint down when one of its circuits died: the other
// circuit is destroyed with reason 8 (DESTROYED), like any DESTROY passed
// on (spec/circuits.md §5.3): the reason never crosses the joint.
func (j *joint) circuitDead(rc *relayCirc) {
	t := &j.sw.joints
	t.mu.Lock()
	if t.waiting != nil {
		for k, w := range t.waiting {
			if w == rc {
				delete(t.waiting, k)
			}
		}
	}
	delete(t.joints, j)
	t.mu.Unlock()
	j.mu.Lock()
	if j.dead {
		j.mu.Unlock()
		return
	}
	j.dead = true
	var other *relayCirc
	for i := range j.side {
		if j.side[i].rc != nil && j.side[i].rc != rc {
			other = j.side[i].rc
		}
		j.side[i].pending = nil
	}
	j.mu.Unlock()
	if other != nil {
		other.destroy(cell.DestroyDestroyed, true, true)
	}
}

// SetJointHook installs f, which sees every E2E message crossing a joint at
// this relay and may change it in place before it is passed on: for tests
// that check what a rendezvous relay sees, or that tamper with it. Set it
// before the relay carries joints; nil removes it.
func (s *Switch) SetJointHook(f func([]byte)) { s.jointHook = f }
