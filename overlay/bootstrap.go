package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/dir"
)

// fetchDirectory learns the relay list at start: it synchronises with the
// bootstrap relays (tried in random order) until one answered and the
// directory holds a path. A client then synchronises with its primary
// guards too (syncDirSources), so that no single relay decides what it
// knows (spec/gossip.md §6); a new client makes the bootstrap relay that
// answered its first guard.
func (n *Node) fetchDirectory(ctx context.Context) error {
	var errs []error
	answered := false
	order := rand.Perm(len(n.cfg.Bootstrap))
	for i, j := range order {
		b := n.cfg.Bootstrap[j]
		n.progress(10+40*i/len(order), "synchronising the directory with a bootstrap relay")
		if err := n.fetchFrom(ctx, b); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !answered && !n.isRelay() && len(n.mgr.Guards()) == 0 {
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
	if !n.isRelay() {
		n.progress(60, "synchronising the directory with the guards")
		n.syncDirSources(ctx)
	}
	n.progress(75, fmt.Sprintf("know %d relays", len(n.dir.List())))
	return nil
}

// syncDirSources synchronises a client's directory with each of its
// primary guards: its directory sources, like Tor's directory guards.
// They are the only relays a client links to (the guard sample never
// puts them at a later hop), and there are several of them, so the relay
// list never comes from one relay alone.
func (n *Node) syncDirSources(ctx context.Context) {
	answered := 0
	for _, h := range n.mgr.PrimaryGuards() {
		if ctx.Err() != nil {
			break
		}
		if n.fetchFrom(ctx, descriptor.Bootstrap{Identity: h.Identity, Link: h.Link, Addr: h.Addr}) == nil {
			answered++
		}
	}
	n.mu.Lock()
	n.dirSources = answered
	n.mu.Unlock()
}

// syncRelay links to the relay d describes and synchronises the directory
// with it.
func (n *Node) syncRelay(ctx context.Context, d *descriptor.Descriptor) error {
	h, ok := n.hopOf(d)
	if !ok {
		return errors.New("overlay: no address to reach the relay")
	}
	if why := n.checkDialAddr(h.Addr); why != "" {
		return errors.New("overlay: will not dial " + why)
	}
	return n.fetchFrom(ctx, descriptor.Bootstrap{Identity: h.Identity, Link: h.Link, Addr: h.Addr})
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

// fetchFrom synchronises the directory with one relay: an anti-entropy
// round (GOSSIP) with a relay that speaks it, the whole directory (DIR_GET)
// from an older one.
func (n *Node) fetchFrom(ctx context.Context, b descriptor.Bootstrap) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l, err := n.links.Channel(ctx, b.Identity, b.Link, b.Addr)
	if err != nil {
		n.dir.NoteReachable(b.Identity.NodeID(), false)
		return err
	}
	if !n.isRelay() {
		// A client's bootstrap relays and guards are sources it chose
		// (dir.ChooseSource): they may give it the whole relay list.
		n.dir.ChooseSource(l.Source(), true)
	}
	if dir.SupportsGossip(l.PeerProtocols()) {
		_, err = n.dir.Sync(ctx, l)
	} else {
		err = n.dir.Fetch(ctx, l)
	}
	if err == nil {
		n.seedDHT()
	}
	return err
}

// refreshLoop keeps the directory fresh: a client synchronises with its
// directory sources every DirRefresh; a relay gossips with GossipFanout
// random relays every Gossip interval (jittered), which spreads a new
// descriptor through the network in O(log N) rounds. With now, the first
// round runs at once (a client restarted from its saved relay list).
func (n *Node) refreshLoop(now bool) {
	every := n.cfg.DirRefresh
	if n.isRelay() {
		every = n.cfg.Gossip
	}
	if now {
		n.refreshRound()
	}
	t := time.NewTimer(jitter(every))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.refreshRound()
			t.Reset(jitter(every))
		}
	}
}

// refreshRound is one round of refreshLoop.
func (n *Node) refreshRound() {
	if n.isRelay() {
		n.gossipRound(n.ctx)
		return
	}
	n.syncDirSources(n.ctx)
	if n.dirSourceCount() == 0 {
		n.fetchDirectory(n.ctx)
	}
}

// dirSourceCount returns how many directory sources answered last time.
func (n *Node) dirSourceCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dirSources
}

// jitter returns d ± 25%, so that nodes started together do not gossip in
// lockstep.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// DefaultGossip and DefaultGossipFanout are Config.Gossip and
// Config.GossipFanout when zero.
const (
	DefaultGossip       = 30 * time.Second
	DefaultGossipFanout = 2
)

// gossipRound synchronises the directory with GossipFanout random relays
// that speak GOSSIP.
func (n *Node) gossipRound(ctx context.Context) {
	ds := n.gossipCandidates()
	self := n.NodeID()
	done := 0
	for _, d := range ds {
		if done >= n.cfg.GossipFanout || ctx.Err() != nil {
			break
		}
		if d.NodeID() == self || !dir.SupportsGossip(d.Protocols) {
			continue
		}
		if err := n.syncRelay(ctx, d); err != nil {
			n.logf.Printf("overlay: gossip with a relay: %v", err)
		}
		done++
	}
}

// gossipCandidates returns the relays of the directory in random order,
// the confirmed ones first: descriptors one peer pushed, whose addresses
// may lead nowhere, must not soak up the rounds that spread real relays.
func (n *Node) gossipCandidates() []*descriptor.Descriptor {
	es := n.dir.Entries()
	rand.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	ds := make([]*descriptor.Descriptor, 0, len(es))
	for _, confirmed := range []bool{true, false} {
		for _, e := range es {
			if e.Info.Confirmed == confirmed {
				ds = append(ds, e.Desc)
			}
		}
	}
	return ds
}

// announceParallel bounds the dials of announce in flight.
const announceParallel = 8

// announce links a new relay to up to Config.Announce relays of its
// directory (in random order, confirmed relays first), so that their HELLO carries its descriptor
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
	ds := n.gossipCandidates()
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
