package linkrpc

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
)

// Defaults for the Config fields of the same names (spec/limits.md).
const (
	DefaultMaxMessage  = 64 << 10
	DefaultMaxPending  = 16
	DefaultMaxHandling = 64
	DefaultWindow      = 256
	DefaultRate        = 50.0
	DefaultBurst       = 100
	// DefaultMaxPartial bounds the bytes of requests being received over
	// all peers, and DefaultReassembly how long one may take.
	DefaultMaxPartial = 8 << 20
	DefaultReassembly = 10 * time.Second
)

// Peer is the link messages run over. Peers are compared with ==, so each
// link must be one comparable value (a pointer).
type Peer interface {
	// Send queues c for the peer and takes ownership of it.
	Send(c *cell.Cell) error
	// LinkQueueLen returns how many of the link's own cells wait to be
	// sent: a message is sent only if it fits under the window.
	LinkQueueLen() int
}

// Handler answers requests.
type Handler interface {
	// ServeRPC answers req from p. It runs on its own goroutine; ctx ends
	// when the Mux closes or the link does. A nil answer refuses.
	ServeRPC(ctx context.Context, p Peer, req []byte) []byte
}

// Config configures a Mux.
type Config struct {
	// Cmd is the cell command of the fragments (cell.CmdDHT).
	Cmd cell.Command
	// Handler answers requests; nil refuses them all.
	Handler Handler
	// MaxMessage bounds a request or response in bytes (default 64 KiB).
	MaxMessage int
	// MaxPending bounds, per peer, our calls awaiting an answer and its
	// requests being received or handled (default 16).
	MaxPending int
	// MaxHandling bounds the requests being handled over all peers
	// (default 64).
	MaxHandling int
	// Window: a message is sent only if the link's own queue stays under
	// this many cells with it (default 256); the link manager closes a
	// link whose circuit-0 queue overflows, so a slow peer gets refusals
	// instead.
	Window int
	// Rate and Burst rate the requests each peer makes (a token bucket;
	// default 50/s, burst 100).
	Rate  float64
	Burst int
	// MaxPartial bounds the bytes of requests being received, over all
	// peers (default 8 MiB); Reassembly is how long a request may take to
	// arrive whole before a newer one may push it out (default 10 s).
	MaxPartial int
	Reassembly time.Duration
	// Now is the clock of the rate; nil means time.Now.
	Now func() time.Time
}

// Stats are the Mux's gauges and counters.
type Stats struct {
	Calls    int // our calls awaiting an answer
	Handling int // requests being handled

	Requests      uint64 // requests handled
	Refused       uint64 // requests refused: rate, MaxPending, MaxHandling, too long, nil answer
	Unsolicited   uint64 // responses to no call of ours, malformed fragments
	Unsent        uint64 // messages not sent for the window
	BytesSent     uint64 // fragment data bytes sent
	BytesReceived uint64 // fragment data bytes received
}

var (
	// ErrRefused is returned by Call when the peer refused the request.
	ErrRefused = errors.New("linkrpc: the peer refused the request")
	// ErrBusy is returned by Call when MaxPending calls to the peer wait
	// already, or the link's queue is full.
	ErrBusy = errors.New("linkrpc: too many requests in flight on the link")
	// ErrTooLong is returned for a message over MaxMessage.
	ErrTooLong = errors.New("linkrpc: message too long")
	// ErrPeerClosed is returned by Call when the link closed first.
	ErrPeerClosed = errors.New("linkrpc: link closed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("linkrpc: closed")
)

type key struct {
	p  Peer
	id uint32
}

// call is one of our requests awaiting its response.
type call struct {
	buf  []byte
	done chan struct{}
	err  error // set before done is closed
}

// partial is a request being received.
type partial struct {
	buf   []byte
	start time.Time
}

// peerState counts what one peer holds.
type peerState struct {
	rate    ratelimit.Bucket
	calls   int // our calls to it
	pending int // its requests being received or handled
}

// Mux sends and receives the messages of one cell command on many links.
// It is safe for concurrent use.
type Mux struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	nextID   uint32
	calls    map[key]*call
	partial  map[key]*partial // requests being received
	partialN int              // bytes in partial
	peers    map[Peer]*peerState
	handlers map[key]context.CancelFunc // requests being handled
	handling int
	closed   bool
	stats    Stats
}

// New returns a Mux.
func New(cfg Config) *Mux {
	defaults.Set(&cfg.MaxMessage, DefaultMaxMessage)
	defaults.Set(&cfg.MaxPending, DefaultMaxPending)
	defaults.Set(&cfg.MaxHandling, DefaultMaxHandling)
	defaults.Set(&cfg.Window, DefaultWindow)
	defaults.Set(&cfg.Rate, DefaultRate)
	defaults.Set(&cfg.Burst, DefaultBurst)
	defaults.Set(&cfg.MaxPartial, DefaultMaxPartial)
	defaults.Set(&cfg.Reassembly, DefaultReassembly)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mux{
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		calls:    make(map[key]*call),
		partial:  make(map[key]*partial),
		peers:    make(map[Peer]*peerState),
		handlers: make(map[key]context.CancelFunc),
	}
}

// Close fails every call with ErrClosed, cancels the handlers and waits for
// them.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for k, c := range m.calls {
		m.finishLocked(k, c, ErrClosed)
	}
	clear(m.partial)
	m.partialN = 0
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// Stats returns the gauges and counters.
func (m *Mux) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Calls = len(m.calls)
	st.Handling = m.handling
	return st
}

func (m *Mux) peerLocked(p Peer) *peerState {
	ps := m.peers[p]
	if ps == nil {
		ps = &peerState{}
		m.peers[p] = ps
	}
	return ps
}

// Call sends req to p and waits for the response, ctx, PeerClosed(p) or
// Close.
func (m *Mux) Call(ctx context.Context, p Peer, req []byte) ([]byte, error) {
	if len(req) > m.cfg.MaxMessage {
		return nil, ErrTooLong
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	ps := m.peerLocked(p)
	if ps.calls >= m.cfg.MaxPending {
		m.mu.Unlock()
		return nil, ErrBusy
	}
	m.nextID++
	k := key{p, m.nextID}
	c := &call{done: make(chan struct{})}
	m.calls[k] = c
	ps.calls++
	m.mu.Unlock()

	if !m.send(p, k.id, 0, req) {
		m.mu.Lock()
		m.finishLocked(k, c, ErrBusy)
		m.mu.Unlock()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		m.mu.Lock()
		m.finishLocked(k, c, ctx.Err())
		m.mu.Unlock()
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.buf, nil
}

// finishLocked ends call k with err (nil: its buffer is the response) if
// it has not ended yet.
func (m *Mux) finishLocked(k key, c *call, err error) {
	if m.calls[k] != c {
		return
	}
	delete(m.calls, k)
	if ps := m.peers[k.p]; ps != nil {
		ps.calls--
	}
	c.err = err
	if err != nil {
		c.buf = nil
	}
	close(c.done)
}

// send queues msg as fragments of id with flags, if they fit under the
// window.
func (m *Mux) send(p Peer, id uint32, flags byte, msg []byte) bool {
	n := fragments(len(msg))
	if p.LinkQueueLen()+n > m.cfg.Window {
		m.mu.Lock()
		m.stats.Unsent++
		m.mu.Unlock()
		return false
	}
	for i := range n {
		chunk := msg[min(i*MaxFragment, len(msg)):min((i+1)*MaxFragment, len(msg))]
		f := fragment{id: id, flags: flags, data: chunk}
		if i < n-1 {
			f.flags |= flagMore
		}
		c := cell.New(0, m.cfg.Cmd)
		putFragment(c.Body(), f)
		if p.Send(c) != nil {
			return false
		}
	}
	m.mu.Lock()
	m.stats.BytesSent += uint64(len(msg))
	m.mu.Unlock()
	return true
}

// HandleCell takes a fragment from p. It never blocks: requests are
// handled on their own goroutines.
func (m *Mux) HandleCell(p Peer, c *cell.Cell) {
	defer c.Free()
	f, err := parseFragment(c.Body())
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || m.closed {
		m.stats.Unsolicited++
		return
	}
	m.stats.BytesReceived += uint64(len(f.data))
	k := key{p, f.id}
	if f.flags&flagResponse != 0 {
		m.responseLocked(k, f)
		return
	}
	m.requestLocked(p, k, f)
}

func (m *Mux) responseLocked(k key, f fragment) {
	c := m.calls[k]
	switch {
	case c == nil:
		m.stats.Unsolicited++
	case f.flags&flagRefused != 0:
		m.finishLocked(k, c, ErrRefused)
	case len(c.buf)+len(f.data) > m.cfg.MaxMessage:
		m.finishLocked(k, c, ErrTooLong)
	default:
		c.buf = append(c.buf, f.data...)
		if f.flags&flagMore == 0 {
			m.finishLocked(k, c, nil)
		}
	}
}

func (m *Mux) requestLocked(p Peer, k key, f fragment) {
	pr := m.partial[k]
	ps := m.peerLocked(p)
	now := m.cfg.Now()
	if pr == nil {
		if ps.pending >= m.cfg.MaxPending || !ps.rate.Take(now, m.cfg.Rate, m.cfg.Burst) {
			m.refuseLocked(p, k.id)
			return
		}
		ps.pending++
		pr = &partial{start: now}
	}
	if len(pr.buf)+len(f.data) > m.cfg.MaxMessage || !m.roomLocked(len(f.data), now) {
		m.dropPartialLocked(k)
		ps.pending--
		m.refuseLocked(p, k.id)
		return
	}
	pr.buf = append(pr.buf, f.data...)
	m.partialN += len(f.data)
	if f.flags&flagMore != 0 {
		m.partial[k] = pr
		return
	}
	m.dropPartialLocked(k)
	buf := pr.buf
	if m.cfg.Handler == nil || m.handling >= m.cfg.MaxHandling {
		ps.pending--
		m.refuseLocked(p, k.id)
		return
	}
	m.handling++
	m.stats.Requests++
	ctx, cancel := context.WithCancel(m.ctx)
	m.handlers[k] = cancel
	m.wg.Go(func() {
		defer cancel()
		resp := m.cfg.Handler.ServeRPC(ctx, p, buf)
		if ctx.Err() != nil {
			// PeerClosed or Close cancelled it: the peer is gone, or
			// its call already failed; nothing is sent.
		} else if resp == nil || len(resp) > m.cfg.MaxMessage {
			m.mu.Lock()
			m.stats.Refused++
			m.mu.Unlock()
			m.send(p, k.id, flagResponse|flagRefused, nil)
		} else if !m.send(p, k.id, flagResponse, resp) {
			m.send(p, k.id, flagResponse|flagRefused, nil)
		}
		m.mu.Lock()
		delete(m.handlers, k)
		m.handling--
		if ps := m.peers[p]; ps != nil {
			ps.pending--
		}
		m.mu.Unlock()
	})
}

// roomLocked reports whether n more bytes of requests being received fit
// under MaxPartial, dropping requests that took longer than Reassembly to
// make room.
func (m *Mux) roomLocked(n int, now time.Time) bool {
	if m.partialN+n <= m.cfg.MaxPartial {
		return true
	}
	for k, pr := range m.partial {
		if now.Sub(pr.start) > m.cfg.Reassembly {
			m.dropPartialLocked(k)
			if ps := m.peers[k.p]; ps != nil {
				ps.pending--
			}
		}
	}
	return m.partialN+n <= m.cfg.MaxPartial
}

// dropPartialLocked forgets the request k being received, if any.
func (m *Mux) dropPartialLocked(k key) {
	if pr := m.partial[k]; pr != nil {
		m.partialN -= len(pr.buf)
		delete(m.partial, k)
	}
}

// refuseLocked counts a refused request and answers it so, if the link's
// queue has room.
func (m *Mux) refuseLocked(p Peer, id uint32) {
	m.stats.Refused++
	if p.LinkQueueLen() >= m.cfg.Window {
		m.stats.Unsent++
		return
	}
	c := cell.New(0, m.cfg.Cmd)
	putFragment(c.Body(), fragment{id: id, flags: flagResponse | flagRefused})
	p.Send(c)
}

// PeerClosed fails our calls to p (ErrPeerClosed), drops its requests being
// received, cancels the handlers of its requests and forgets its request
// rate. The Mux keeps a little state for every peer it exchanged messages
// with until then.
func (m *Mux) PeerClosed(p Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.calls {
		if k.p == p {
			m.finishLocked(k, c, ErrPeerClosed)
		}
	}
	ps := m.peers[p]
	for k := range m.partial {
		if k.p == p {
			m.dropPartialLocked(k)
			if ps != nil {
				ps.pending--
			}
		}
	}
	for k, cancel := range m.handlers {
		if k.p == p {
			cancel()
		}
	}
	delete(m.peers, p)
}
