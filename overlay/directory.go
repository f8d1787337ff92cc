package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// maxRelays bounds the directory; a descriptor's age limits are
// descriptor.MaxAge and descriptor.MaxClockSkew.
const maxRelays = 4096

// directory holds verified relay descriptors of one network.
type directory struct {
	network string
	mu      sync.Mutex
	relays  map[keys.NodeID]*descriptor.Descriptor
}

func newDirectory(network string) *directory {
	return &directory{network: network, relays: make(map[keys.NodeID]*descriptor.Descriptor)}
}

// add keeps d if it belongs to this network, is fresh and newer than what
// we have. d must come from descriptor.Parse (signature checked).
func (d *directory) add(desc *descriptor.Descriptor) bool {
	if desc.Network != d.network {
		return false
	}
	if desc.CheckTime(time.Now()) != nil {
		return false
	}
	id := desc.NodeID()
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.relays[id]
	if old == nil && len(d.relays) >= maxRelays {
		return false
	}
	if old != nil && !desc.Published.After(old.Published) {
		return false
	}
	d.relays[id] = desc
	return true
}

func (d *directory) get(id keys.NodeID) *descriptor.Descriptor {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.relays[id]
}

func (d *directory) list() []*descriptor.Descriptor {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	out := make([]*descriptor.Descriptor, 0, len(d.relays))
	for id, desc := range d.relays {
		if now.Sub(desc.Published) > descriptor.MaxAge {
			delete(d.relays, id)
			continue
		}
		out = append(out, desc)
	}
	return out
}

// serveDirectory answers DIR_GET with every known descriptor.
func (n *Node) serveDirectory(l *link.Link) {
	for _, d := range n.dir.list() {
		c := cell.New(0, cell.CmdDirDesc)
		if err := c.SetPayload(d.Marshal()); err != nil {
			c.Free()
			continue
		}
		if l.Send(c) != nil {
			return
		}
	}
	l.Send(cell.New(0, cell.CmdDirDone))
}

// fetchDirectory asks one bootstrap relay (tried in random order) for its
// directory, and makes the first that answers the client's guard: like Tor's
// directory guards, a client talks to one relay only, so no other relay, and
// no exit, ever sees its address.
func (n *Node) fetchDirectory(ctx context.Context) error {
	var errs []error
	answered := false
	order := rand.Perm(len(n.cfg.Bootstrap))
	for i, j := range order {
		b := n.cfg.Bootstrap[j]
		n.progress(10+50*i/len(order), "asking a bootstrap relay for the directory")
		if err := n.fetchFrom(ctx, b); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !answered && n.cfg.Listen == "" {
			if d := n.dir.get(b.Identity.NodeID()); d != nil {
				n.mgr.SetGuard(hopOf(d))
			}
		}
		answered = true
		// Ask further bootstrap relays only while this directory is too
		// small to build a circuit: each one learns our address.
		if n.enoughRelays() {
			break
		}
	}
	if !answered {
		return fmt.Errorf("overlay: no bootstrap relay answered: %w", errors.Join(errs...))
	}
	n.progress(75, fmt.Sprintf("know %d relays", len(n.dir.list())))
	return nil
}

// enoughRelays reports whether the directory holds a full path with an exit.
func (n *Node) enoughRelays() bool {
	pathLen := n.cfg.PathLen
	if pathLen <= 0 {
		pathLen = 3
	}
	ds := n.dir.list()
	exits := 0
	for _, d := range ds {
		if d.Policy().IsExit() {
			exits++
		}
	}
	return len(ds) >= pathLen && exits >= 1
}

func (n *Node) fetchFrom(ctx context.Context, b descriptor.Bootstrap) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ch, err := n.Channel(ctx, b.Identity, b.Link, b.Addr)
	if err != nil {
		return err
	}
	l := ch.(*link.Link)
	done := make(chan struct{})
	n.mu.Lock()
	if old := n.dirWait[l]; old != nil {
		close(old)
	}
	n.dirWait[l] = done
	n.mu.Unlock()
	if err := l.Send(cell.New(0, cell.CmdDirGet)); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshLoop refetches the directory periodically so a long-running client
// learns relays that joined later.
func (n *Node) refreshLoop() {
	t := time.NewTicker(n.cfg.DirRefresh)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if g := n.mgr.Guard(); g != nil {
				if n.fetchFrom(n.ctx, descriptor.Bootstrap{Identity: g.Identity, Link: g.Link, Addr: g.Addr}) == nil {
					continue
				}
			}
			n.fetchDirectory(n.ctx)
		}
	}
}
