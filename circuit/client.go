package circuit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// ClientCirc is a circuit this node built. Streams open at its last hop.
type ClientCirc struct {
	sw      *Switch
	ch      Channel
	id      uint32
	hops    []Hop
	created time.Time
	*edge

	// reply receives CREATED / EXTENDED payloads during the build.
	reply chan []byte

	// sendMu serialises sealing with sending so forward counters match
	// the order cells leave on ch.
	sendMu sync.Mutex
	lc     *layer.Client

	// mu guards the following.
	mu         sync.Mutex
	nextStream uint16
	dead       bool
	reason     byte
}

// BuildCircuit builds a circuit through path, telescoping: CREATE to the
// first hop, then one EXTEND per further hop.
func (s *Switch) BuildCircuit(ctx context.Context, path []Hop) (*ClientCirc, error) {
	if len(path) == 0 || len(path) > layer.MaxHops {
		return nil, fmt.Errorf("circuit: bad path length %d", len(path))
	}
	lc, err := layer.NewClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ExtendTimeout*time.Duration(len(path)))
	defer cancel()
	first := path[0]
	ch, err := s.cfg.Linker.Channel(ctx, first.Identity, first.Link, first.Addr)
	if err != nil {
		return nil, &BuildError{Hop: 0, Err: err}
	}
	cc := &ClientCirc{
		sw:      s,
		ch:      ch,
		hops:    path,
		created: time.Now(),
		edge:    newEdge(),
		reply:   make(chan []byte, 1),
		lc:      lc,
	}
	cc.send = cc.sendRelay
	id, err := s.register(ch, cc)
	if err != nil {
		return nil, err
	}
	cc.id = id
	if err := ctx.Err(); err != nil {
		cc.destroy(cell.DestroyNone, false)
		return nil, err
	}
	for i, hop := range path {
		if err := cc.extendTo(ctx, i, hop); err != nil {
			cc.destroy(cell.DestroyNone, true)
			return nil, &BuildError{Hop: i, Err: err}
		}
	}
	return cc, nil
}

// BuildError says which hop of a circuit could not be reached.
type BuildError struct {
	Hop int // 0-based index of the hop that failed
	Err error
}

func (e *BuildError) Error() string { return fmt.Sprintf("circuit: build hop %d: %v", e.Hop+1, e.Err) }
func (e *BuildError) Unwrap() error { return e.Err }

func (cc *ClientCirc) extendTo(ctx context.Context, i int, hop Hop) error {
	if hop.KEM == nil {
		return errors.New("hop has no KEM key")
	}
	st, msg, err := onionhs.ClientStart(cc.sw.cfg.Random, cc.sw.cfg.Network,
		onionhs.RelayKeys{Onion: hop.Onion, KEM: hop.KEM})
	if err != nil {
		return err
	}
	if i == 0 {
		c := cell.New(cc.id, cell.CmdCreate)
		c.SetPayload(msg)
		if err := cc.ch.Send(c); err != nil {
			return err
		}
	} else {
		e := cell.Extend{Identity: hop.Identity, Link: hop.Link, Addr: hop.Addr, Handshake: msg}
		b, err := e.Marshal()
		if err != nil {
			return err
		}
		if err := cc.sendTo(i-1, cell.RelayExtend, 0, b); err != nil {
			return err
		}
	}
	var reply []byte
	select {
	case reply = <-cc.reply:
	case <-cc.done:
		return cc.err
	case <-ctx.Done():
		return ctx.Err()
	}
	keys, err := st.Finish(reply)
	if err != nil {
		return err
	}
	cc.sendMu.Lock()
	err = cc.lc.AddHop(&keys)
	cc.sendMu.Unlock()
	return err
}

// Hops returns the circuit's path.
func (cc *ClientCirc) Hops() []Hop { return cc.hops }

// Created returns when the build started.
func (cc *ClientCirc) Created() time.Time { return cc.created }

// Done is closed when the circuit is destroyed.
func (cc *ClientCirc) Done() <-chan struct{} { return cc.done }

// Err returns why the circuit died.
func (cc *ClientCirc) Err() error {
	cc.edge.mu.Lock()
	defer cc.edge.mu.Unlock()
	return cc.edge.err
}

// Streams returns the number of open streams.
func (cc *ClientCirc) Streams() int { return cc.numStreams() }

// sendRelay sends a relay message to the last hop.
func (cc *ClientCirc) sendRelay(cmd cell.RelayCmd, stream uint16, data []byte) error {
	return cc.sendTo(len(cc.hops)-1, cmd, stream, data)
}

func (cc *ClientCirc) sendTo(hop int, cmd cell.RelayCmd, stream uint16, data []byte) error {
	c := cell.New(cc.id, cell.CmdRelay)
	if err := cell.PutRelay(c.Body(), cmd, stream, data); err != nil {
		c.Free()
		return err
	}
	cc.sendMu.Lock()
	select {
	case <-cc.done:
		cc.sendMu.Unlock()
		c.Free()
		return cc.Err()
	default:
	}
	if err := cc.lc.Seal(c.Body(), hop); err != nil {
		cc.sendMu.Unlock()
		c.Free()
		return err
	}
	if cmd == cell.RelayData {
		cc.noteDataSent(cc.lc.LastTag())
	}
	err := cc.ch.Send(c)
	cc.sendMu.Unlock()
	if err != nil {
		// A sealed cell was lost: the hops' counters moved on without it.
		cc.destroy(cell.DestroyResource, true)
	}
	return err
}

// handle processes a cell arriving from the first hop.
func (cc *ClientCirc) handle(c *cell.Cell) {
	switch c.Cmd() {
	case cell.CmdCreated:
		p, err := c.Payload()
		if err != nil || cc.lc.Hops() != 0 {
			cc.reject(c, cell.DestroyProtocol)
			return
		}
		cc.deliverReply(p)
		c.Free()
	case cell.CmdRelay:
		hop, err := cc.lc.Open(c.Body())
		if err != nil {
			cc.reject(c, cell.DestroyAuth)
			return
		}
		m, err := cell.ParseRelay(c.Body())
		if err != nil {
			cc.reject(c, cell.DestroyProtocol)
			return
		}
		if m.Cmd == cell.RelayExtended {
			if hop != cc.lc.Hops()-1 || cc.lc.Hops() == len(cc.hops) {
				cc.reject(c, cell.DestroyProtocol)
				return
			}
			cc.deliverReply(m.Data)
			c.Free()
			return
		}
		if hop != len(cc.hops)-1 || m.Cmd == cell.RelayDrop {
			// Only the last hop carries streams; DROP is padding.
			c.Free()
			if m.Cmd != cell.RelayDrop {
				cc.destroy(cell.DestroyProtocol, true)
			}
			return
		}
		if err := cc.handleMessage(c, m, layer.BackwardTag(c.Body())); err != nil {
			cc.destroy(cell.DestroyProtocol, true)
		}
	case cell.CmdDestroy:
		reason := c.Body()[0]
		c.Free()
		cc.destroy(reason, false)
	default:
		cc.reject(c, cell.DestroyProtocol)
	}
}

func (cc *ClientCirc) deliverReply(p []byte) {
	select {
	case cc.reply <- append([]byte(nil), p...):
	default:
		cc.destroy(cell.DestroyProtocol, true)
	}
}

func (cc *ClientCirc) channelClosed() { cc.destroy(cell.DestroyLinkClosed, false) }

// Close destroys the circuit.
func (cc *ClientCirc) Close() error {
	cc.destroy(cell.DestroyNone, true)
	return nil
}

// reject frees c and destroys the circuit: the cell broke the protocol or
// failed authentication.
func (cc *ClientCirc) reject(c *cell.Cell, reason byte) {
	c.Free()
	cc.destroy(reason, true)
}

func (cc *ClientCirc) destroy(reason byte, send bool) {
	cc.mu.Lock()
	if cc.dead {
		cc.mu.Unlock()
		return
	}
	cc.dead = true
	cc.reason = reason
	cc.mu.Unlock()
	cc.sw.unregister(cc.ch, cc.id)
	if send {
		cc.sendMu.Lock()
		sendDestroy(cc.ch, cc.id, reason)
		cc.sendMu.Unlock()
	}
	cc.close(&DestroyedError{Reason: reason})
}

// OpenStream opens a stream to target ("host:port") at the last hop. The
// host name is sent to the exit unresolved.
func (cc *ClientCirc) OpenStream(ctx context.Context, target string) (*Stream, error) {
	b := cell.Begin{Target: target}
	data, err := b.Marshal()
	if err != nil {
		return nil, streamerr.New(streamerr.BadAddress)
	}
	var st *Stream
	for tries := 0; ; tries++ {
		cc.mu.Lock()
		cc.nextStream++
		if cc.nextStream == 0 {
			cc.nextStream = 1
		}
		id := cc.nextStream
		cc.mu.Unlock()
		st = newStream(cc.edge, id, target)
		st.circ = cc
		if cc.addStream(st) {
			break
		}
		if err := cc.Err(); err != nil {
			return nil, err
		}
		if tries > 1<<16 {
			return nil, streamerr.New(streamerr.ResourceLimit)
		}
	}
	if err := cc.send(cell.RelayBegin, st.id, data); err != nil {
		cc.removeStream(st)
		return nil, err
	}
	select {
	case err := <-st.opened:
		if err != nil {
			st.closeWith(streamerr.Done)
			if cerr := cc.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, err
		}
		return st, nil
	case <-ctx.Done():
		st.closeWith(streamerr.Done)
		return nil, ctx.Err()
	}
}
