package circuit

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// relayCirc is a relay's state for one circuit passing through it. Forward
// cells arrive on prev and are handled on prev's reader goroutine; backward
// cells arrive on next.
type relayCirc struct {
	sw     *Switch
	prev   Channel
	prevID uint32
	// hsCell is the CREATE while it waits for a handshake worker; the
	// switch's queue owns it (guarded by Switch.mu until a worker takes it).
	hsCell *cell.Cell
	// idle counts idle-timer ticks since the last cell either way.
	idle atomic.Int32

	// mu guards the following and serialises backward sealing with sending,
	// so backward counters match the order on the prev channel.
	mu        sync.Mutex
	layer     *layer.Relay // nil until the handshake is done
	next      Channel
	nextID    uint32
	extending bool
	created   chan []byte // CREATED payload while extending
	edge      *edge       // set once streams arrive: this hop is the circuit's end
	joint     *joint      // set once the circuit waits for or is in a joint
	// intro is set once ESTABLISH_INTRO made this a service's intro
	// circuit, introduced once its client sent INTRODUCE1 (intro.go).
	intro      *introCirc
	introduced bool
	dead       bool
	done       chan struct{} // closed by destroy
}

type prevEnd struct{ c *relayCirc }
type nextEnd struct{ c *relayCirc }

func (e prevEnd) handle(c *cell.Cell) { e.c.fromPrev(c) }
func (e prevEnd) channelClosed()      { e.c.destroy(cell.DestroyLinkClosed, false, true) }
func (e prevEnd) kill(reason byte)    { e.c.destroy(reason, true, true) }
func (e nextEnd) handle(c *cell.Cell) { e.c.fromNext(c) }
func (e nextEnd) channelClosed()      { e.c.destroy(cell.DestroyLinkClosed, true, false) }
func (e nextEnd) kill(reason byte)    { e.c.destroy(reason, true, true) }

// touch notes that a cell passed (the idle timer, timers.go).
func (rc *relayCirc) touch() {
	if rc.idle.Load() != 0 {
		rc.idle.Store(0)
	}
}

// fromPrev handles a cell from the client side.
func (rc *relayCirc) fromPrev(c *cell.Cell) {
	rc.touch()
	switch c.Cmd() {
	case cell.CmdRelay:
	case cell.CmdDestroy:
		// Whatever the reason received, the next hop learns only that
		// the circuit was destroyed beyond it (spec/circuits.md §5.3).
		c.Free()
		rc.destroy(cell.DestroyDestroyed, false, true)
		return
	default:
		rc.reject(c, cell.DestroyProtocol)
		return
	}
	rc.mu.Lock()
	l, next, nextID, dead := rc.layer, rc.next, rc.nextID, rc.dead
	rc.mu.Unlock()
	if dead {
		c.Free()
		return
	}
	if l == nil {
		// RELAY before CREATED: the sender cannot have the keys.
		rc.reject(c, cell.DestroyProtocol)
		return
	}
	tag := layer.ForwardTag(c.Body())
	forMe, err := l.Forward(c.Body())
	if err != nil {
		c.Free()
		rc.sw.logf.Printf("circuit: forward cell failed authentication; destroying circuit")
		rc.destroy(cell.DestroyAuth, true, true)
		return
	}
	if forMe {
		rc.handleMessage(c, tag)
		return
	}
	if next == nil {
		rc.reject(c, cell.DestroyProtocol)
		return
	}
	if h := rc.sw.forwardHook; h != nil {
		h(c)
	}
	c.SetCirc(nextID)
	if next.Send(c) != nil {
		// The next link is overloaded (or gone): the cell is lost, so the
		// circuit cannot continue.
		rc.destroy(cell.DestroyResource, true, true)
	}
}

// fromNext handles a cell from the exit side.
func (rc *relayCirc) fromNext(c *cell.Cell) {
	rc.touch()
	switch c.Cmd() {
	case cell.CmdRelay:
		rc.mu.Lock()
		if rc.dead || rc.next == nil {
			rc.mu.Unlock()
			c.Free()
			return
		}
		rc.layer.Backward(c.Body())
		c.SetCirc(rc.prevID)
		err := rc.prev.Send(c)
		rc.mu.Unlock()
		if err != nil {
			rc.destroy(cell.DestroyResource, true, true)
		}
	case cell.CmdCreated:
		rc.mu.Lock()
		ch := rc.created
		rc.created = nil
		rc.mu.Unlock()
		if ch == nil {
			rc.reject(c, cell.DestroyProtocol)
			return
		}
		p, err := c.Payload()
		if err != nil {
			p = nil
		}
		ch <- append([]byte(nil), p...)
		c.Free()
	case cell.CmdDestroy:
		c.Free()
		rc.destroy(cell.DestroyDestroyed, true, false)
	default:
		rc.reject(c, cell.DestroyProtocol)
	}
}

// originate sends a relay message from this hop to the client, destroying
// the circuit if the cell is lost.
func (rc *relayCirc) originate(cmd cell.RelayCmd, stream uint16, data []byte) error {
	err := rc.emit(cmd, stream, data)
	if err != nil && err != ErrDestroyed {
		rc.destroy(cell.DestroyResource, true, true)
	}
	return err
}

// emit is originate without the destroy: a joint calls it under its lock
// and destroys the circuit after releasing it.
func (rc *relayCirc) emit(cmd cell.RelayCmd, stream uint16, data []byte) error {
	c := cell.New(rc.prevID, cell.CmdRelay)
	if err := cell.PutRelay(c.Body(), cmd, stream, data); err != nil {
		c.Free()
		return err
	}
	rc.touch()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.dead {
		c.Free()
		return ErrDestroyed
	}
	rc.layer.Originate(c.Body())
	if countsInWindow(cmd) {
		tag := layer.BackwardTag(c.Body())
		if rc.edge != nil {
			rc.edge.noteSent(tag)
		}
		if rc.joint != nil {
			rc.joint.noteSent(rc, tag)
		}
	}
	return rc.prev.Send(c)
}

// handleMessage handles a relay message addressed to this hop.
func (rc *relayCirc) handleMessage(c *cell.Cell, tag [layer.TagSize]byte) {
	m, err := cell.ParseRelay(c.Body())
	if err != nil {
		rc.reject(c, cell.DestroyProtocol)
		return
	}
	switch {
	case !m.Cmd.Known():
		// A newer client's command: drop and count (spec/cells.md §4).
		c.Free()
		rc.sw.counters.unknownRelay.Add(1)
		return
	case m.Cmd == cell.RelayDrop:
		c.Free()
		return
	case m.Cmd == cell.RelayExtend:
		e, err := cell.ParseExtend(m.Data)
		if err != nil {
			rc.reject(c, cell.DestroyProtocol)
			return
		}
		e.Handshake = append([]byte(nil), e.Handshake...)
		c.Free()
		rc.extend(e)
		return
	case m.Cmd == cell.RelayJoinEstablish, m.Cmd == cell.RelayJoin:
		err := rc.sw.handleJoin(rc, m)
		c.Free()
		if err != nil {
			rc.destroy(cell.DestroyProtocol, true, true)
		}
		return
	case m.Cmd >= cell.RelayEstablishIntro && m.Cmd <= cell.RelayIntroduceAck:
		err := rc.sw.handleIntro(rc, m)
		c.Free()
		switch {
		case err == errIntroFull:
			rc.destroy(cell.DestroyResource, true, true)
		case err != nil:
			rc.destroy(cell.DestroyProtocol, true, true)
		}
		return
	}
	rc.mu.Lock()
	j, ex := rc.joint, rc.edge
	if j == nil && ex == nil && rc.freeEnd() {
		ex = newEdge(rc, rc.sw.cfg.MaxStreams)
		rc.edge = ex
	}
	rc.mu.Unlock()
	if j != nil {
		err = j.handle(rc, c, m, tag)
	} else if ex != nil {
		err = ex.handleMessage(c, m, tag)
	} else {
		c.Free()
		err = errProtocol
	}
	if err != nil {
		rc.destroy(cell.DestroyProtocol, true, true)
	}
}

// sendMsg implements carrier: this hop originates a message to the client.
func (rc *relayCirc) sendMsg(cmd cell.RelayCmd, stream uint16, data []byte, _ *EndToEnd) error {
	return rc.originate(cmd, stream, data)
}

// handler implements carrier: the switch's handlers serve a relay's streams.
func (rc *relayCirc) handler(kind StreamKind) StreamHandler { return rc.sw.handlers[kind] }
func (rc *relayCirc) spawn(f func()) bool                   { return rc.sw.goFunc(f) }
func (rc *relayCirc) ctx() context.Context                  { return rc.sw.ctx }

// prevAddr is the previous hop's link address, when the channel has one.
func (rc *relayCirc) prevAddr() net.Addr {
	if a, ok := rc.prev.(interface{ RemoteAddr() net.Addr }); ok {
		return a.RemoteAddr()
	}
	return nil
}

// extend opens the next hop and forwards the client's handshake.
func (rc *relayCirc) extend(e *cell.Extend) {
	rc.mu.Lock()
	if !rc.freeEnd() {
		rc.mu.Unlock()
		rc.destroy(cell.DestroyProtocol, true, true)
		return
	}
	rc.extending = true
	created := make(chan []byte, 1)
	rc.created = created
	rc.mu.Unlock()
	s := rc.sw
	if why := s.loops(rc, e); why != "" {
		s.counters.extendRefused.Add(1)
		s.logf.Printf("circuit: EXTEND refused: %s", why)
		rc.destroy(cell.DestroyExtendRefused, true, true)
		return
	}
	s.goFunc(func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ExtendTimeout)
		defer cancel()
		fail := func(why string, err error) {
			reason := cell.DestroyExtendFailed
			switch {
			case errors.Is(err, ErrExtendRefused):
				reason = cell.DestroyExtendRefused
				s.counters.extendRefused.Add(1)
			case errors.Is(err, errTooManyCircuits):
				reason = cell.DestroyResource
			}
			s.logf.Printf("circuit: extend to %v failed: %s: %v", safelog.S(e.Addr), why, err)
			rc.destroy(reason, true, true)
		}
		ch, err := s.cfg.Extender.Channel(ctx, keys.IdentityPublicKey(e.Identity), keys.LinkPublicKey(e.Link), e.Addr)
		if err != nil {
			fail("link", err)
			return
		}
		id, err := s.register(ch, nextEnd{rc})
		if err != nil {
			fail("register", err)
			return
		}
		rc.mu.Lock()
		if rc.dead {
			rc.mu.Unlock()
			s.unregister(ch, id)
			return
		}
		rc.next, rc.nextID = ch, id
		rc.mu.Unlock()
		cr := cell.New(id, cell.CmdCreate)
		cr.SetPayload(e.Handshake)
		if err := ch.Send(cr); err != nil {
			fail("send", err)
			return
		}
		var reply []byte
		select {
		case reply = <-created:
		case <-ctx.Done():
			fail("waiting for CREATED", ctx.Err())
			return
		case <-ch.Done():
			fail("link closed", ErrDestroyed)
			return
		case <-rc.done:
			return
		}
		rc.mu.Lock()
		rc.extending = false
		rc.mu.Unlock()
		if err := rc.originate(cell.RelayExtended, 0, reply); err != nil {
			rc.destroy(cell.DestroyProtocol, true, true)
		}
	})
}

// peerStatic is implemented by channels that know their peer's static link
// key (*link.Link); a client's is fresh for every link.
type peerStatic interface {
	PeerStatic() keys.LinkPublicKey
}

// loops says why extending rc as e asks would run the circuit through one
// relay twice in a row, or "": to this relay itself, or back to the
// previous hop. (A client never puts one relay twice in a path; a relay
// cannot see further than its neighbours, so longer loops are the
// client's to avoid.)
func (s *Switch) loops(rc *relayCirc, e *cell.Extend) string {
	if s.cfg.Identity != (keys.IdentityPublicKey{}) && keys.IdentityPublicKey(e.Identity) == s.cfg.Identity {
		return "to this relay"
	}
	if p, ok := rc.prev.(peerStatic); ok && p.PeerStatic() == keys.LinkPublicKey(e.Link) {
		return "back to the previous hop"
	}
	return ""
}

// reject frees c and destroys the circuit towards both sides: the cell
// broke the protocol (or failed authentication).
func (rc *relayCirc) reject(c *cell.Cell, reason byte) {
	c.Free()
	rc.destroy(reason, true, true)
}

// destroy tears the circuit down, sending DESTROY to the sides named.
func (rc *relayCirc) destroy(reason byte, toPrev, toNext bool) {
	rc.mu.Lock()
	if rc.dead {
		rc.mu.Unlock()
		return
	}
	rc.dead = true
	close(rc.done)
	next, nextID, ex, j, ic := rc.next, rc.nextID, rc.edge, rc.joint, rc.intro
	rc.mu.Unlock()
	rc.sw.unregister(rc.prev, rc.prevID)
	if toPrev {
		sendDestroy(rc.prev, rc.prevID, reason)
	}
	if next != nil {
		rc.sw.unregister(next, nextID)
		if toNext {
			sendDestroy(next, nextID, reason)
		}
	}
	if ex != nil {
		ex.close(ErrDestroyed)
	}
	if j != nil {
		j.circuitDead(rc)
	}
	if ic != nil {
		rc.sw.intros.circuitDead(ic)
	}
}
