package circuit

import (
	"context"
	"crypto/subtle"
	"sync"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// edge is the stream-carrying end of a circuit: the client, or the exit hop.
// It multiplexes streams and keeps the circuit-level windows.
type edge struct {
	// send seals a relay message towards the other edge and queues it, in
	// order. It must be safe for concurrent use.
	send func(cmd cell.RelayCmd, stream uint16, data []byte) error

	// mu guards the following.
	mu      sync.Mutex
	streams map[uint16]*Stream
	pkgWin  int           // DATA cells we may still send
	winCh   chan struct{} // closed and replaced when pkgWin grows
	recvWin int           // DATA cells the peer may still send us
	recvd   int           // DATA cells received since our last circuit SENDME
	sent    int           // DATA cells sent
	// digests holds the tags of every CircSendmeInc-th DATA cell we sent,
	// oldest first: a circuit SENDME must echo the head one, which proves
	// the other edge received the cells (Tor proposal 289).
	digests [][layer.TagSize]byte
	closed  bool
	err     error
	done    chan struct{}
}

func newEdge() *edge {
	return &edge{
		streams: make(map[uint16]*Stream),
		pkgWin:  CircWindow,
		recvWin: CircWindow,
		winCh:   make(chan struct{}),
		done:    make(chan struct{}),
	}
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

// noteDataSent records the layer tag of a DATA cell just sealed for the
// other edge. The caller serialises it with sealing.
func (e *edge) noteDataSent(tag [layer.TagSize]byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent++
	if e.sent%CircSendmeInc == 0 && len(e.digests) < CircWindow/CircSendmeInc {
		e.digests = append(e.digests, tag)
	}
}

// handleMessage handles a stream or circuit-level relay message for this
// edge. It owns c. digest is the layer tag the cell arrived with. It
// returns an error for protocol violations, after which the circuit is
// destroyed.
func (e *edge) handleMessage(c *cell.Cell, m cell.RelayMsg, digest [layer.TagSize]byte) error {
	if m.Stream == 0 {
		defer c.Free()
		if m.Cmd != cell.RelaySendme {
			return errProtocol
		}
		e.mu.Lock()
		// The SENDME must echo the tag of the cell it acknowledges.
		if len(e.digests) == 0 || len(m.Data) != layer.TagSize ||
			subtle.ConstantTimeCompare(m.Data, e.digests[0][:]) != 1 {
			e.mu.Unlock()
			return errProtocol
		}
		e.digests = e.digests[1:]
		e.pkgWin += CircSendmeInc
		if e.pkgWin > CircWindow {
			e.mu.Unlock()
			return errProtocol
		}
		close(e.winCh)
		e.winCh = make(chan struct{})
		e.mu.Unlock()
		return nil
	}
	e.mu.Lock()
	st := e.streams[m.Stream]
	sendme := false
	if m.Cmd == cell.RelayData {
		e.recvWin--
		e.recvd++
		if e.recvWin < 0 {
			e.mu.Unlock()
			c.Free()
			return errProtocol
		}
		if e.recvd >= CircSendmeInc {
			e.recvd -= CircSendmeInc
			e.recvWin += CircSendmeInc
			sendme = true
		}
	}
	e.mu.Unlock()
	if sendme {
		e.send(cell.RelaySendme, 0, digest[:])
	}
	if st == nil {
		// A stream we already closed; data in flight is dropped. An END
		// for an unknown stream is ignored.
		c.Free()
		return nil
	}
	return st.handle(c, m)
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
	e.mu.Unlock()
	for _, st := range streams {
		st.remoteClosed(streamerr.Destroyed)
	}
}
