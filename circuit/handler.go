package circuit

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// StreamKind says what an incoming stream asks a circuit end for; each kind
// is opened by its own relay command (spec/streams.md §1).
type StreamKind uint8

// Stream kinds.
const (
	// KindTCP is a BEGIN stream to "host:port": the exit handler.
	KindTCP StreamKind = 1
	// KindDir is a BEGIN_DIR stream to the end's directory (Relay=2, Dir=2).
	KindDir StreamKind = 2
	// KindDHT is a BEGIN_DHT stream to the end's DHT proxy (DHT=1,
	// spec/streams.md §5.1).
	KindDHT StreamKind = 3
	// KindCompute is a BEGIN_COMPUTE stream to the end's executor of
	// delegated calls (Compute=1, spec/streams.md §5.2).
	KindCompute StreamKind = 4
)

func (k StreamKind) String() string {
	switch k {
	case KindTCP:
		return "tcp"
	case KindDir:
		return "dir"
	case KindDHT:
		return "dht"
	case KindCompute:
		return "compute"
	}
	return "kind?"
}

// A StreamHandler serves the streams of one kind that arrive at a circuit
// end: a relay's (the exit, the directory) or a client's (a hidden service).
type StreamHandler interface {
	// ServeStream runs on its own goroutine for each incoming stream. It
	// must answer the request with Accept or Reject; returning without an
	// answer rejects with MISC. ctx ends when the stream is closed here or
	// aborted by the other end (END with an error reason), when its circuit
	// ends, or when the node shuts down; after a clean END from the other
	// end the handler reads EOF and ctx goes on.
	ServeStream(ctx context.Context, req *StreamRequest)
}

// StreamHandlerFunc adapts a function to a StreamHandler.
type StreamHandlerFunc func(ctx context.Context, req *StreamRequest)

// ServeStream calls f.
func (f StreamHandlerFunc) ServeStream(ctx context.Context, req *StreamRequest) { f(ctx, req) }

// StreamRequest is an incoming stream waiting for its handler's answer.
type StreamRequest struct {
	Kind   StreamKind
	Target string // BEGIN's "host:port"; empty for other kinds
	st     *Stream
	prev   net.Addr
	once   sync.Once
}

// PrevHop returns the remote address of the link the stream's circuit
// came in on at a relay: the circuit's previous hop, all a relay learns of
// where a circuit comes from. It is nil at a client's end (a hidden
// service), where the previous hop is a rendezvous point far away.
func (r *StreamRequest) PrevHop() net.Addr { return r.prev }

// Accept answers CONNECTED and returns the stream.
func (r *StreamRequest) Accept() (*Stream, error) {
	err := errors.New("circuit: stream request already answered")
	r.once.Do(func() { err = r.st.e.send(cell.RelayConnected, r.st.id, nil) })
	if err != nil {
		r.st.closeWith(streamerr.Destroyed)
		return nil, err
	}
	return r.st, nil
}

// Reject answers END with reason and forgets the stream.
func (r *StreamRequest) Reject(reason streamerr.Reason) {
	r.once.Do(func() { r.st.closeWith(reason) })
}

// serve runs h for r and rejects r if h did not answer.
func (r *StreamRequest) serve(ctx context.Context, h StreamHandler) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // end ctx with the stream or the circuit
		select {
		case <-r.st.doneCh:
		case <-r.st.aborted:
		case <-r.st.e.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	h.ServeStream(ctx, r)
	r.Reject(streamerr.Misc)
}

// StreamListener is a StreamHandler that queues accepted streams for
// Accept, like a net.Listener; a client end that serves streams (a hidden
// service) registers one.
type StreamListener struct {
	ch     chan *Stream
	done   chan struct{}
	once   sync.Once
	addr   net.Addr
	Reason streamerr.Reason // END reason when the queue is full (default RESOURCE_LIMIT)
}

// NewStreamListener returns a listener that queues up to backlog streams;
// addr is what Addr reports.
func NewStreamListener(backlog int, addr net.Addr) *StreamListener {
	if addr == nil {
		addr = streamAddr("darkmatter")
	}
	return &StreamListener{ch: make(chan *Stream, backlog), done: make(chan struct{}), addr: addr}
}

// ServeStream implements StreamHandler.
func (l *StreamListener) ServeStream(ctx context.Context, req *StreamRequest) {
	reason := l.Reason
	if reason == streamerr.Done {
		reason = streamerr.ResourceLimit
	}
	select {
	case <-l.done:
		req.Reject(streamerr.Misc)
		return
	default:
	}
	if len(l.ch) == cap(l.ch) {
		req.Reject(reason)
		return
	}
	st, err := req.Accept()
	if err != nil {
		return
	}
	select {
	case l.ch <- st:
	default:
		st.closeWith(reason)
	}
}

// Accept waits for the next stream.
func (l *StreamListener) Accept() (net.Conn, error) {
	select {
	case st := <-l.ch:
		return st, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes queued streams.
func (l *StreamListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		for {
			select {
			case st := <-l.ch:
				st.Close()
			default:
				return
			}
		}
	})
	return nil
}

// Addr returns the listener's address.
func (l *StreamListener) Addr() net.Addr { return l.addr }

var _ net.Listener = (*StreamListener)(nil)
