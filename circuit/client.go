package circuit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
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

	// established receives JOIN_ESTABLISHED; joined is closed once JOINED
	// installed the end-to-end layer.
	established chan struct{}
	joined      chan struct{}

	// mu guards the following.
	mu         sync.Mutex
	nextStream uint16
	streamHigh bool // allocate stream IDs with the high bit set (the JOIN side)
	peerRelay  protover.Set
	handlers   map[StreamKind]StreamHandler
	onJoined   func(payload []byte) (E2ELayer, error)
	intro      introState // introclient.go
	dead       bool
	reason     byte
}

// BuildCircuit builds a circuit through path, telescoping: CREATE to the
// first hop, then one EXTEND per further hop.
func (s *Switch) BuildCircuit(ctx context.Context, path []Hop) (*ClientCirc, error) {
	if len(path) == 0 || len(path) > layer.MaxHops {
		return nil, fmt.Errorf("circuit: bad path length %d", len(path))
	}
	for i := range path {
		for j := range i {
			if path[i].Identity == path[j].Identity {
				return nil, fmt.Errorf("circuit: relay at hops %d and %d: a path never holds a relay twice", j+1, i+1)
			}
		}
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
		sw:          s,
		ch:          ch,
		hops:        path,
		created:     time.Now(),
		reply:       make(chan []byte, 1),
		established: make(chan struct{}, 1),
		joined:      make(chan struct{}),
		lc:          lc,
		peerRelay:   path[len(path)-1].Protocols,
	}
	cc.edge = newEdge(cc, s.cfg.MaxStreams)
	id, err := s.register(ch, cc)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock() // ChannelClosed may destroy cc from now on
	cc.id = id
	cc.mu.Unlock()
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
		if err := cc.sendTo(i-1, cell.RelayExtend, 0, b, nil); err != nil {
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

// sendMsg implements carrier: it sends a relay message to the last hop, or
// with x an inner message sealed end to end inside an E2E message.
func (cc *ClientCirc) sendMsg(cmd cell.RelayCmd, stream uint16, data []byte, x *EndToEnd) error {
	return cc.sendTo(len(cc.hops)-1, cmd, stream, data, x)
}

// handler implements carrier: streams arriving at a client end go to the
// handlers registered with Handle.
func (cc *ClientCirc) handler(kind StreamKind) StreamHandler {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.handlers[kind]
}

func (cc *ClientCirc) spawn(f func()) bool  { return cc.sw.goFunc(f) }
func (cc *ClientCirc) ctx() context.Context { return cc.sw.ctx }
func (cc *ClientCirc) prevAddr() net.Addr   { return nil }

// Handle makes this client end serve incoming streams of kind with h (a
// hidden service accepts streams on its circuits); nil stops serving them.
func (cc *ClientCirc) Handle(kind StreamKind, h StreamHandler) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.handlers == nil {
		cc.handlers = make(map[StreamKind]StreamHandler)
	}
	if h == nil {
		delete(cc.handlers, kind)
		return
	}
	cc.handlers[kind] = h
}

func (cc *ClientCirc) sendTo(hop int, cmd cell.RelayCmd, stream uint16, data []byte, x *EndToEnd) error {
	c := cell.New(cc.id, cell.CmdRelay)
	cc.sendMu.Lock()
	if x != nil {
		sealed, err := x.seal(cmd, stream, data)
		if err != nil {
			cc.sendMu.Unlock()
			c.Free()
			return err
		}
		cmd, stream, data = cell.RelayE2E, 0, sealed
	}
	if err := cell.PutRelay(c.Body(), cmd, stream, data); err != nil {
		cc.sendMu.Unlock()
		c.Free()
		return err
	}
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
	if countsInWindow(cmd) {
		cc.noteSent(cc.lc.LastTag())
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
		last := hop == len(cc.hops)-1
		switch {
		case !m.Cmd.Known():
			// A newer relay's command: drop and count.
			c.Free()
			cc.sw.counters.unknownRelay.Add(1)
			return
		case m.Cmd == cell.RelayDrop:
			c.Free() // padding, from any hop
			return
		case m.Cmd == cell.RelayExtended:
			if hop != cc.lc.Hops()-1 || cc.lc.Hops() == len(cc.hops) {
				cc.reject(c, cell.DestroyProtocol)
				return
			}
			cc.deliverReply(m.Data)
			c.Free()
			return
		case m.Cmd == cell.RelayJoinEstablished, m.Cmd == cell.RelayJoined:
			err := errProtocol
			if last {
				err = cc.joinMessage(m)
			}
			c.Free()
			if err != nil {
				cc.destroy(cell.DestroyProtocol, true)
			}
			return
		case m.Cmd >= cell.RelayEstablishIntro && m.Cmd <= cell.RelayIntroduceAck:
			err := errProtocol
			if last {
				err = cc.introMessage(m)
			}
			c.Free()
			if err != nil {
				cc.destroy(cell.DestroyProtocol, true)
			}
			return
		case !last:
			// Only the last hop carries streams.
			cc.reject(c, cell.DestroyProtocol)
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

func (cc *ClientCirc) channelClosed()   { cc.destroy(cell.DestroyLinkClosed, false) }
func (cc *ClientCirc) kill(reason byte) { cc.destroy(reason, true) }

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
	id := cc.id
	cc.mu.Unlock()
	cc.sw.unregister(cc.ch, id)
	if send {
		cc.sendMu.Lock()
		sendDestroy(cc.ch, id, reason)
		cc.sendMu.Unlock()
	}
	cc.close(&DestroyedError{Reason: reason})
}

// OpenStream opens a stream to target ("host:port") at the last hop. The
// host name is sent to the exit unresolved.
func (cc *ClientCirc) OpenStream(ctx context.Context, target string) (*Stream, error) {
	b := cell.Begin{Target: target}
	cc.mu.Lock()
	peer := cc.peerRelay
	cc.mu.Unlock()
	cc.edge.mu.Lock()
	joined := cc.edge.e2e != nil
	cc.edge.mu.Unlock()
	if !joined && !peer.IsEmpty() && !peer.Supports(protover.Exit, 1) {
		return nil, fmt.Errorf("%w: the last hop is not an exit", streamerr.New(streamerr.NoExit))
	}
	halfClose := peer.Supports(protover.Relay, 2)
	if halfClose {
		b.Flags |= cell.BeginHalfClose
	}
	data, err := b.Marshal()
	if err != nil {
		return nil, streamerr.New(streamerr.BadAddress)
	}
	return cc.openStream(ctx, cell.RelayBegin, target, data, halfClose)
}

// OpenDirStream opens a stream to the last hop's directory (BEGIN_DIR); the
// hop must list Dir=2. Reading it yields the hop's relay descriptors, each
// as | length (2) | descriptor | (spec/streams.md §5), then EOF.
func (cc *ClientCirc) OpenDirStream(ctx context.Context) (*Stream, error) {
	last := cc.hops[len(cc.hops)-1].Protocols
	if !last.Supports(protover.Dir, 2) {
		return nil, fmt.Errorf("%w: the last hop serves no directory streams", streamerr.New(streamerr.Unsupported))
	}
	return cc.openStream(ctx, cell.RelayBeginDir, "dir", []byte{cell.BeginHalfClose}, true)
}

// OpenDHTStream opens a stream to the last hop's DHT proxy (BEGIN_DHT); the
// hop must list DHT=1. The stream carries DHT calls that the hop makes for
// the client (spec/streams.md §5.1), so the DHT nodes asked learn only the
// hop, never the client.
func (cc *ClientCirc) OpenDHTStream(ctx context.Context) (*Stream, error) {
	last := cc.hops[len(cc.hops)-1].Protocols
	if !last.Supports(protover.DHT, 1) {
		return nil, fmt.Errorf("%w: the last hop is no DHT proxy", streamerr.New(streamerr.Unsupported))
	}
	return cc.openStream(ctx, cell.RelayBeginDHT, "dht", []byte{cell.BeginHalfClose}, true)
}

// OpenComputeStream opens a stream to the last hop's executor of delegated
// calls (BEGIN_COMPUTE); the hop must list Compute=1. What the stream
// carries is spec/compute.md §4; this layer only opens it, with half-close.
func (cc *ClientCirc) OpenComputeStream(ctx context.Context) (*Stream, error) {
	last := cc.hops[len(cc.hops)-1].Protocols
	if !last.Supports(protover.Compute, 1) {
		return nil, fmt.Errorf("%w: the last hop runs no delegated calls", streamerr.New(streamerr.Unsupported))
	}
	return cc.openStream(ctx, cell.RelayBeginCompute, "compute", []byte{cell.BeginHalfClose}, true)
}

func (cc *ClientCirc) openStream(ctx context.Context, cmd cell.RelayCmd, target string, data []byte, halfClose bool) (*Stream, error) {
	var st *Stream
	for tries := 0; ; tries++ {
		cc.mu.Lock()
		cc.nextStream = (cc.nextStream + 1) & 0x7fff
		if cc.nextStream == 0 {
			cc.nextStream = 1
		}
		id := cc.nextStream
		if cc.streamHigh {
			id |= 0x8000
		}
		cc.mu.Unlock()
		st = newStream(cc.edge, id, target)
		st.circ = cc
		st.halfClose = halfClose
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
	if err := cc.send(cmd, st.id, data); err != nil {
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

// EstablishJoint asks the last hop to wait for another circuit that sends
// JOIN with cookie (spec/circuits.md §7); the hop must list Joint=1. It
// returns once the hop agreed. When the other circuit joins, onJoined runs
// on the circuit's reader with the JOIN payload and returns the end-to-end
// layer for the joined circuit (or an error, which destroys the circuit);
// WaitJoined reports it.
func (cc *ClientCirc) EstablishJoint(ctx context.Context, cookie [cell.CookieLen]byte, onJoined func(payload []byte) (E2ELayer, error)) error {
	if onJoined == nil {
		return errors.New("circuit: EstablishJoint needs an onJoined function")
	}
	if err := cc.canJoin(); err != nil {
		return err
	}
	cc.mu.Lock()
	cc.onJoined = onJoined
	cc.mu.Unlock()
	if err := cc.sendTo(len(cc.hops)-1, cell.RelayJoinEstablish, 0, cookie[:], nil); err != nil {
		return err
	}
	return cc.wait(ctx, cc.established)
}

// WaitJoined waits until the circuit was joined and its end-to-end layer is
// in place.
func (cc *ClientCirc) WaitJoined(ctx context.Context) error {
	select {
	case <-cc.joined:
		return nil
	default:
	}
	return cc.wait(ctx, cc.joined)
}

// Join joins this circuit to the one waiting at the last hop with cookie,
// sending payload to that circuit's client; l protects the joined
// circuit's streams from now on. Streams this side opens use IDs with the
// high bit set, so both sides may open streams.
func (cc *ClientCirc) Join(ctx context.Context, cookie [cell.CookieLen]byte, payload []byte, l E2ELayer) error {
	if err := cc.canJoin(); err != nil {
		return err
	}
	if len(payload) > cell.MaxData-cell.CookieLen {
		return cell.ErrRelayLength
	}
	cc.mu.Lock()
	cc.streamHigh = true
	cc.peerRelay = joinedPeer
	cc.mu.Unlock()
	cc.edge.mu.Lock()
	cc.edge.e2e = newEndToEnd(l)
	cc.edge.mu.Unlock()
	return cc.sendTo(len(cc.hops)-1, cell.RelayJoin, 0, append(cookie[:], payload...), nil)
}

// joinedPeer is what a client assumes of the client at the other end of a
// joint until an end-to-end handshake says more: this implementation's
// relay protocol (half-close).
var joinedPeer = protover.New(map[protover.ID]string{protover.Relay: "1-2"})

func (cc *ClientCirc) canJoin() error {
	if last := cc.hops[len(cc.hops)-1].Protocols; !last.IsEmpty() && !last.Supports(protover.Joint, 1) {
		return errors.New("circuit: the last hop does not join circuits")
	}
	if cc.numStreams() > 0 {
		return errors.New("circuit: a circuit with streams cannot be joined")
	}
	return nil
}

func (cc *ClientCirc) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-cc.done:
		return cc.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// joinMessage handles JOIN_ESTABLISHED and JOINED from the last hop, on the
// reader goroutine.
func (cc *ClientCirc) joinMessage(m cell.RelayMsg) error {
	cc.mu.Lock()
	onJoined := cc.onJoined
	if m.Cmd == cell.RelayJoined {
		cc.onJoined = nil
	}
	cc.mu.Unlock()
	if onJoined == nil || m.Stream != 0 {
		return errProtocol
	}
	if m.Cmd == cell.RelayJoinEstablished {
		select {
		case cc.established <- struct{}{}:
			return nil
		default:
			return errProtocol // a second JOIN_ESTABLISHED
		}
	}
	l, err := onJoined(m.Data)
	if err != nil {
		return err
	}
	cc.mu.Lock()
	cc.peerRelay = joinedPeer
	cc.mu.Unlock()
	cc.edge.mu.Lock()
	cc.edge.e2e = newEndToEnd(l)
	cc.edge.mu.Unlock()
	close(cc.joined)
	return nil
}
