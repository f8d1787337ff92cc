package circuit

import (
	"context"
	"crypto/subtle"
	"net"
	"sync"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// carrier is what an edge sends through: the client circuit, or the relay
// circuit whose last hop this node is. sendMsg seals one relay message
// towards the other edge and queues it; seal transforms the message first
// under the same lock (the end-to-end layer of a joined circuit), or is nil.
// It must be safe for concurrent use and keep the order of calls.
type carrier interface {
	sendMsg(cmd cell.RelayCmd, stream uint16, data []byte, seal *EndToEnd) error
	// handler returns the StreamHandler for kind at this end, or nil.
	handler(kind StreamKind) StreamHandler
	// spawn runs f on a goroutine the switch tracks; false if it is closing.
	spawn(f func()) bool
	ctx() context.Context
	// prevAddr is the remote address of the link the circuit came in on
	// (a relay's end), or nil (a client's end).
	prevAddr() net.Addr
}

// edge is the stream-carrying end of a circuit: the client, or the last
// hop. It multiplexes streams and keeps the circuit-level windows.
type edge struct {
	c          carrier
	maxStreams int

	// mu guards the following.
	mu      sync.Mutex
	streams map[uint16]*Stream
	pkgWin  int           // window cells we may still send
	winCh   chan struct{} // closed and replaced when pkgWin grows
	recvWin int           // window cells the peer may still send us
	recvd   int           // window cells received since our last circuit SENDME
	sent    int           // window cells sent
	// digests holds the tags of every CircSendmeInc-th window cell we sent,
	// oldest first: a circuit SENDME must echo the head one, which proves
	// the other edge received the cells (Tor proposal 289).
	digests [][layer.TagSize]byte
	// e2e, once set, wraps every stream message in an E2E message (a
	// joined circuit, spec/circuits.md §7); ctlq holds control messages
	// waiting for circuit window, which E2E messages need.
	e2e    *EndToEnd
	ctlq   []pendingMsg
	closed bool
	err    error
	done   chan struct{}
}

type pendingMsg struct {
	cmd    cell.RelayCmd
	stream uint16
	data   []byte
}

func newEdge(c carrier, maxStreams int) *edge {
	return &edge{
		c:          c,
		maxStreams: maxStreams,
		streams:    make(map[uint16]*Stream),
		pkgWin:     CircWindow,
		recvWin:    CircWindow,
		winCh:      make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// countsInWindow reports whether a relay message uses circuit window: DATA,
// and E2E messages (whatever they carry, since the joint cannot tell).
func countsInWindow(cmd cell.RelayCmd) bool {
	return cmd == cell.RelayData || cmd == cell.RelayE2E
}

// maxData is the most stream bytes one message carries on this circuit.
func (e *edge) maxData() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e2e != nil {
		return cell.MaxData - cell.RelayHeaderLen - e.e2e.Overhead()
	}
	return cell.MaxData
}

// send sends a stream message to the other edge. DATA must have taken
// circuit window (takeWindow) first. On a joined circuit, other messages
// take window too, or wait in ctlq without blocking the caller (it may be a
// link's reader).
func (e *edge) send(cmd cell.RelayCmd, stream uint16, data []byte) error {
	e.mu.Lock()
	x := e.e2e
	if x != nil && cmd != cell.RelayData {
		if e.pkgWin <= 0 || len(e.ctlq) > 0 {
			e.ctlq = append(e.ctlq, pendingMsg{cmd, stream, append([]byte(nil), data...)})
			e.mu.Unlock()
			return nil
		}
		e.pkgWin--
	}
	e.mu.Unlock()
	return e.c.sendMsg(cmd, stream, data, x)
}

// takeWindow waits until the circuit window allows one DATA cell.
func (e *edge) takeWindow(ctx context.Context, deadline <-chan struct{}) error {
	for {
		e.mu.Lock()
		if e.closed {
			err := e.err
			e.mu.Unlock()
			return err
		}
		if e.pkgWin > 0 {
			e.pkgWin--
			e.mu.Unlock()
			return nil
		}
		ch := e.winCh
		e.mu.Unlock()
		select {
		case <-ch:
		case <-e.done:
		case <-deadline:
			return errDeadline
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// noteSent records the layer tag of a window cell just sealed for the
// other edge. The caller serialises it with sealing.
func (e *edge) noteSent(tag [layer.TagSize]byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent++
	if e.sent%CircSendmeInc == 0 && len(e.digests) < CircWindow/CircSendmeInc {
		e.digests = append(e.digests, tag)
	}
}

// handleSendme credits the circuit window for a circuit SENDME and sends the
// control messages that waited for it.
func (e *edge) handleSendme(data []byte) error {
	e.mu.Lock()
	// The SENDME must echo the tag of the cell it acknowledges.
	if len(e.digests) == 0 || len(data) != layer.TagSize ||
		subtle.ConstantTimeCompare(data, e.digests[0][:]) != 1 {
		e.mu.Unlock()
		return errProtocol
	}
	e.digests = e.digests[1:]
	e.pkgWin += CircSendmeInc
	if e.pkgWin > CircWindow {
		e.mu.Unlock()
		return errProtocol
	}
	var flush []pendingMsg
	for len(e.ctlq) > 0 && e.pkgWin > 0 {
		flush = append(flush, e.ctlq[0])
		e.ctlq = e.ctlq[1:]
		e.pkgWin--
	}
	x := e.e2e
	close(e.winCh)
	e.winCh = make(chan struct{})
	e.mu.Unlock()
	for _, p := range flush {
		e.c.sendMsg(p.cmd, p.stream, p.data, x)
	}
	return nil
}

// countReceived applies the circuit receive window to a window cell whose
// layer tag is digest, sending a circuit SENDME every CircSendmeInc cells.
func (e *edge) countReceived(digest [layer.TagSize]byte) error {
	e.mu.Lock()
	e.recvWin--
	e.recvd++
	if e.recvWin < 0 {
		e.mu.Unlock()
		return errProtocol
	}
	sendme := false
	if e.recvd >= CircSendmeInc {
		e.recvd -= CircSendmeInc
		e.recvWin += CircSendmeInc
		sendme = true
	}
	e.mu.Unlock()
	if sendme {
		// Circuit SENDMEs are for the hop, never end to end.
		return e.c.sendMsg(cell.RelaySendme, 0, digest[:], nil)
	}
	return nil
}

// handleMessage handles a relay message for this edge: a circuit SENDME, an
// E2E message on a joined circuit, or a stream message. It owns c. digest
// is the layer tag the cell arrived with. It returns an error for protocol
// violations, after which the circuit is destroyed.
func (e *edge) handleMessage(c *cell.Cell, m cell.RelayMsg, digest [layer.TagSize]byte) error {
	e.mu.Lock()
	x := e.e2e
	e.mu.Unlock()
	switch {
	case m.Cmd == cell.RelaySendme && m.Stream == 0:
		defer c.Free()
		return e.handleSendme(m.Data)
	case m.Cmd == cell.RelayE2E && m.Stream == 0 && x != nil:
		if err := e.countReceived(digest); err != nil {
			c.Free()
			return err
		}
		inner, err := x.open(c.Body(), m.Data)
		if err != nil {
			c.Free()
			return err
		}
		if inner.Stream == 0 || inner.Cmd == cell.RelayE2E {
			c.Free()
			return errProtocol
		}
		return e.handleStreamMsg(c, inner)
	case m.Stream == 0 || x != nil:
		// Stream commands on stream 0, or plain stream messages on a
		// joined circuit (they must cross the joint inside E2E).
		c.Free()
		return errProtocol
	}
	if m.Cmd == cell.RelayData {
		if err := e.countReceived(digest); err != nil {
			c.Free()
			return err
		}
	}
	return e.handleStreamMsg(c, m)
}

// handleStreamMsg delivers a message on stream m.Stream ≠ 0. It owns c.
func (e *edge) handleStreamMsg(c *cell.Cell, m cell.RelayMsg) error {
	switch m.Cmd {
	case cell.RelayBegin, cell.RelayBeginDir, cell.RelayBeginDHT, cell.RelayBeginCompute:
		defer c.Free() // m.Data aliases c
		return e.handleBegin(m)
	case cell.RelayData, cell.RelayConnected, cell.RelayEnd, cell.RelaySendme:
	default:
		c.Free()
		return errProtocol // EXTEND, JOIN, ... on a stream
	}
	e.mu.Lock()
	st := e.streams[m.Stream]
	e.mu.Unlock()
	if st == nil {
		// A stream we already closed; data in flight is dropped. An END
		// for an unknown stream is ignored.
		c.Free()
		return nil
	}
	return st.handle(c, m)
}

// handleBegin hands a new incoming stream to the handler for its kind.
func (e *edge) handleBegin(m cell.RelayMsg) error {
	req := &StreamRequest{Kind: KindTCP}
	var flags byte
	switch m.Cmd {
	case cell.RelayBeginDir, cell.RelayBeginDHT, cell.RelayBeginCompute:
		switch m.Cmd {
		case cell.RelayBeginDir:
			req.Kind = KindDir
		case cell.RelayBeginDHT:
			req.Kind = KindDHT
		default:
			req.Kind = KindCompute
		}
		if len(m.Data) > 0 {
			flags = m.Data[0]
		}
	default:
		b, err := cell.ParseBegin(m.Data)
		if err != nil {
			return e.send(cell.RelayEnd, m.Stream, []byte{byte(streamerr.BadAddress)})
		}
		req.Target, flags = b.Target, b.Flags
	}
	h := e.c.handler(req.Kind)
	if h == nil {
		return e.send(cell.RelayEnd, m.Stream, []byte{byte(streamerr.Unsupported)})
	}
	if e.numStreams() >= e.maxStreams {
		return e.send(cell.RelayEnd, m.Stream, []byte{byte(streamerr.ResourceLimit)})
	}
	st := newStream(e, m.Stream, req.Target)
	st.halfClose = flags&cell.BeginHalfClose != 0
	if !e.addStream(st) {
		return errProtocol // a stream ID in use
	}
	req.st = st
	req.prev = e.c.prevAddr()
	ctx := e.c.ctx()
	if !e.c.spawn(func() { req.serve(ctx, h) }) {
		st.closeWith(streamerr.ResourceLimit)
	}
	return nil
}

// addStream registers st under its ID; false if the ID is in use.
func (e *edge) addStream(st *Stream) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	if _, used := e.streams[st.id]; used {
		return false
	}
	e.streams[st.id] = st
	return true
}

func (e *edge) removeStream(st *Stream) {
	e.mu.Lock()
	if e.streams[st.id] == st {
		delete(e.streams, st.id)
	}
	e.mu.Unlock()
}

func (e *edge) numStreams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

// close fails every stream with err.
func (e *edge) close(err error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.err = err
	close(e.done)
	streams := make([]*Stream, 0, len(e.streams))
	for _, st := range e.streams {
		streams = append(streams, st)
	}
	e.streams = nil
	e.ctlq = nil
	e.mu.Unlock()
	for _, st := range streams {
		st.remoteClosed(streamerr.Destroyed)
	}
}
