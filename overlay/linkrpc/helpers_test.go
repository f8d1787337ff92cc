package linkrpc

import (
	"context"
	"sync"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// pipe is one direction of an in-memory link: cells sent on it reach the
// receiving Mux on one goroutine, in order, as from the peer remote.
type pipe struct {
	ch     chan *cell.Cell
	to     *Mux
	remote *pipe // the Peer the receiver sees: the pipe back
	done   chan struct{}
	once   sync.Once
}

func (p *pipe) Send(c *cell.Cell) error {
	select {
	case p.ch <- c:
		return nil
	case <-p.done:
		c.Free()
		return ErrPeerClosed
	}
}

func (p *pipe) LinkQueueLen() int { return len(p.ch) }

func (p *pipe) run(wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			select {
			case c := <-p.ch:
				p.to.HandleCell(p.remote, c)
			case <-p.done:
				return
			}
		}
	})
}

func (p *pipe) close() { p.once.Do(func() { close(p.done) }) }

// link joins two Muxes; ab is how a reaches b (and b sees a as ba).
type link struct {
	ab, ba *pipe
	wg     sync.WaitGroup
}

func join(t testing.TB, a, b *Mux) *link {
	l := &link{
		ab: &pipe{ch: make(chan *cell.Cell, 1024), to: b, done: make(chan struct{})},
		ba: &pipe{ch: make(chan *cell.Cell, 1024), to: a, done: make(chan struct{})},
	}
	l.ab.remote, l.ba.remote = l.ba, l.ab
	l.ab.run(&l.wg)
	l.ba.run(&l.wg)
	t.Cleanup(l.close)
	return l
}

func (l *link) close() {
	l.ab.close()
	l.ba.close()
	l.wg.Wait()
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, p Peer, req []byte) []byte

func (f handlerFunc) ServeRPC(ctx context.Context, p Peer, req []byte) []byte { return f(ctx, p, req) }

// echo answers every request with itself, reversed.
var echo = handlerFunc(func(_ context.Context, _ Peer, req []byte) []byte {
	out := make([]byte, len(req))
	for i, b := range req {
		out[len(req)-1-i] = b
	}
	return out
})

func newMux(t testing.TB, cfg Config) *Mux {
	cfg.Cmd = cell.CmdDHT
	m := New(cfg)
	t.Cleanup(func() { m.Close() })
	return m
}
