package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

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
		if !answered && !n.isRelay() {
			if d := n.dir.Get(b.Identity.NodeID()); d != nil {
				if h, ok := n.hopOf(d); ok {
					n.mgr.SetGuard(h)
				}
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
	n.progress(75, fmt.Sprintf("know %d relays", len(n.dir.List())))
	return nil
}

// enoughRelays reports whether the directory holds a full path with an exit.
func (n *Node) enoughRelays() bool {
	pathLen := n.cfg.PathLen
	if pathLen <= 0 {
		pathLen = 3
	}
	ds := n.dir.List()
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
	l, err := n.links.Channel(ctx, b.Identity, b.Link, b.Addr)
	if err != nil {
		return err
	}
	return n.dir.Fetch(ctx, l)
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

// announceParallel bounds the dials of announce in flight.
const announceParallel = 8

// announce links a new relay to up to Config.Announce relays of its
// directory (in random order), so that their HELLO carries its descriptor
// to each: a relay extends only to relays it knows, and until the
// directory gossips, relays that started earlier learn of later ones this
// way or at their next refresh. The addresses dialled pass the same checks
// as an EXTEND's. It takes at most announceTimeout; failures are only
// logged.
func (n *Node) announce(ctx context.Context) { n.announceWith(ctx, false) }

// announceWith is announce; with relink, a relay already linked to gets a
// new link (a new HELLO) too.
func (n *Node) announceWith(ctx context.Context, relink bool) {
	if n.cfg.Announce < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	ds := n.dir.List()
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	sem := make(chan struct{}, announceParallel)
	var wg sync.WaitGroup
	count := 0
	for _, d := range ds {
		if count >= n.cfg.Announce {
			break
		}
		if d.Identity == n.keys.Identity.Public() {
			continue
		}
		dial := n.links.Channel
		if n.links.Connected(d.Identity, d.Link) != nil {
			if !relink {
				continue
			}
			dial = n.links.Dial
		}
		h, ok := n.hopOf(d)
		if !ok || n.checkDialAddr(h.Addr) != "" {
			continue
		}
		count++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := dial(ctx, h.Identity, h.Link, h.Addr); err != nil {
				n.logf.Printf("overlay: announcing to a relay: %v", err)
			}
		})
	}
	wg.Wait()
}

// announceTimeout bounds announce.
const announceTimeout = 10 * time.Second
