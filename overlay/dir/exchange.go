package dir

import (
	"context"
	"errors"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Peer is the link a directory exchange runs over. Peers are compared with
// ==, so each link must be one comparable value (a pointer).
type Peer interface {
	// Send queues c for the peer and takes ownership of it.
	Send(c *cell.Cell) error
}

var (
	// ErrPeerClosed is returned by Fetch when the link closed before the
	// peer's DIR_DONE.
	ErrPeerClosed = errors.New("dir: link closed during the directory fetch")
	// ErrFetchReplaced is returned by a Fetch that a later Fetch from the
	// same peer replaced.
	ErrFetchReplaced = errors.New("dir: replaced by a newer fetch from the same peer")
)

// fetch is one DIR_GET waiting for its DIR_DONE.
type fetch struct {
	done chan struct{}
	err  error // set before done is closed
}

// Fetch asks p for every descriptor it knows (DIR_GET) and waits until p
// answers DIR_DONE, ctx ends or PeerClosed(p) is called. The descriptors
// arrive through HandleCell, which stores the ones that verify. A second
// Fetch from the same peer replaces the first, which fails with
// ErrFetchReplaced.
func (dir *Directory) Fetch(ctx context.Context, p Peer) error {
	f := &fetch{done: make(chan struct{})}
	dir.mu.Lock()
	if old := dir.fetches[p]; old != nil {
		old.err = ErrFetchReplaced
		close(old.done)
	}
	dir.fetches[p] = f
	dir.mu.Unlock()
	if err := p.Send(cell.New(0, cell.CmdDirGet)); err != nil {
		dir.finish(p, f, err)
		return err
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		dir.finish(p, f, ctx.Err())
		<-f.done
		return f.err
	}
}

// finish ends fetch f from p with err, unless it ended already.
func (dir *Directory) finish(p Peer, f *fetch, err error) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if f == nil || dir.fetches[p] != f {
		return
	}
	delete(dir.fetches, p)
	f.err = err
	close(f.done)
}

// PeerClosed ends a Fetch waiting on p with ErrPeerClosed. The link
// manager's owner calls it when the link to p closes.
func (dir *Directory) PeerClosed(p Peer) {
	dir.mu.Lock()
	f := dir.fetches[p]
	dir.mu.Unlock()
	dir.finish(p, f, ErrPeerClosed)
}

// HandleCell handles a directory cell from p and takes ownership of c:
// DIR_GET is answered with Serve, a DIR_DESC that verifies is added, and
// DIR_DONE ends the Fetch waiting on p. Other cells are dropped.
func (dir *Directory) HandleCell(p Peer, c *cell.Cell) {
	switch c.Cmd() {
	case cell.CmdDirGet:
		c.Free()
		dir.Serve(p)
	case cell.CmdDirDesc:
		if b, err := c.Payload(); err == nil {
			if d, err := descriptor.Parse(b); err == nil {
				dir.Add(d)
			}
		}
		c.Free()
	case cell.CmdDirDone:
		c.Free()
		dir.mu.Lock()
		f := dir.fetches[p]
		dir.mu.Unlock()
		dir.finish(p, f, nil)
	default:
		c.Free()
	}
}

// Serve sends p every fresh descriptor (one DIR_DESC each) and then
// DIR_DONE. It stops at the first failed Send and returns its error.
func (dir *Directory) Serve(p Peer) error {
	for _, d := range dir.List() {
		c := cell.New(0, cell.CmdDirDesc)
		if err := c.SetPayload(d.Marshal()); err != nil {
			c.Free()
			continue
		}
		if err := p.Send(c); err != nil {
			return err
		}
	}
	return p.Send(cell.New(0, cell.CmdDirDone))
}
