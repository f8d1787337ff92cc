package overlay

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// Key rotation and republication (spec/keys.md §4, spec/descriptor.md §4).
const (
	// DefaultOnionRotation is Config.OnionRotation when zero.
	DefaultOnionRotation = 7 * 24 * time.Hour
	// OnionOverlap is how long the pair a rotation replaced still answers
	// CREATE: a client may build with a descriptor up to
	// descriptor.MaxAge old, plus an hour of clock skew and build time.
	OnionOverlap = descriptor.MaxAge + time.Hour
	// DefaultRepublish is Config.Republish when zero.
	DefaultRepublish = time.Hour
	// unrotatedOnionLife is the onion key expiry a relay that never
	// rotates publishes, counted from each publication.
	unrotatedOnionLife = 7 * 24 * time.Hour
)

// loadOnionKeys returns the relay's keyring: from cfg.OnionKeyFile if it
// exists, else a current pair made of k's onion and KEM keys, created now
// (and written to cfg.OnionKeyFile if set).
func loadOnionKeys(cfg Config, k *keys.NodeKeys, now time.Time) (*keys.OnionKeyring, error) {
	if cfg.OnionKeyFile != "" {
		cur, prev, err := keys.LoadOnionKeysFile(cfg.OnionKeyFile)
		switch {
		case err == nil:
			ring := keys.NewOnionKeyring(cur)
			if prev != nil {
				ring.SetPrevious(*prev)
			}
			return ring, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	ring := keys.NewOnionKeyring(keys.OnionPair{Onion: k.Onion, KEM: k.KEM, Created: now})
	if cfg.OnionKeyFile != "" {
		if err := keys.WriteOnionKeysFile(cfg.OnionKeyFile, ring.Current(), nil); err != nil {
			return nil, err
		}
	}
	return ring, nil
}

// onionExpires is the onion key expiry a descriptor published at now with
// the current pair cur carries: the end of the pair's overlap after its
// rotation.
func (n *Node) onionExpires(cur keys.OnionPair, now time.Time) time.Time {
	if n.cfg.OnionRotation < 0 {
		return now.Add(unrotatedOnionLife)
	}
	return cur.Created.Add(n.cfg.OnionRotation + OnionOverlap)
}

// nextKeyEvent is when the keyring next changes: the current pair's
// rotation, or the previous pair's retirement if that comes first.
func (n *Node) nextKeyEvent() (time.Time, bool) {
	cur := n.ring.Current()
	var at time.Time
	if n.cfg.OnionRotation > 0 {
		at = cur.Created.Add(n.cfg.OnionRotation)
	}
	if _, ok := n.ring.Previous(); ok {
		if r := cur.Created.Add(OnionOverlap); at.IsZero() || r.Before(at) {
			at = r
		}
	}
	return at, !at.IsZero()
}

// updateOnionKeys rotates the onion pair if its rotation is due and
// erases the previous pair once its overlap is over, saving the keyring
// when it changed. It reports whether the current pair changed.
func (n *Node) updateOnionKeys(now time.Time) (rotated bool, err error) {
	cur := n.ring.Current()
	changed := false
	if n.cfg.OnionRotation > 0 && !now.Before(cur.Created.Add(n.cfg.OnionRotation)) {
		next, err := keys.GenerateOnionPair(nil, now)
		if err != nil {
			return false, err
		}
		n.ring.Rotate(next)
		cur, rotated, changed = next, true, true
		n.logf.Printf("overlay: onion keys rotated")
	}
	if _, ok := n.ring.Previous(); ok && !now.Before(cur.Created.Add(OnionOverlap)) {
		n.ring.Retire()
		changed = true
		n.logf.Printf("overlay: previous onion keys erased")
	}
	if changed && n.cfg.OnionKeyFile != "" {
		var prev *keys.OnionPair
		if p, ok := n.ring.Previous(); ok {
			prev = &p
		}
		if err := keys.WriteOnionKeysFile(n.cfg.OnionKeyFile, cur, prev); err != nil {
			return rotated, err
		}
	}
	return rotated, nil
}

// republishLoop keeps the relay's descriptor fresh: every Config.Republish
// after published, and at once when the onion keys rotate, it signs a new
// descriptor, makes it its HELLO and announces it (reannounce). It also
// erases the previous onion pair when its overlap ends.
func (n *Node) republishLoop(published time.Time) {
	last := published
	for {
		due := last.Add(n.cfg.Republish)
		if at, ok := n.nextKeyEvent(); ok && at.Before(due) {
			due = at
		}
		t := time.NewTimer(time.Until(due))
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		now := time.Now()
		rotated, err := n.updateOnionKeys(now)
		if err != nil {
			n.logf.Printf("overlay: onion keys: %v", err)
		}
		if !rotated && now.Before(last.Add(n.cfg.Republish)) {
			continue
		}
		if err := n.republish(); err != nil {
			n.logf.Printf("overlay: republishing: %v", err)
			continue
		}
		last = now
	}
}

// republish signs a fresh descriptor, makes it the HELLO of future links
// and announces it.
func (n *Node) republish() error {
	n.mu.Lock()
	addrs := n.listening
	n.mu.Unlock()
	hello, err := n.makeDescriptor(addrs)
	if err != nil {
		return err
	}
	n.links.SetHello(hello)
	n.reannounce(n.ctx)
	return nil
}

// reannounce announces a republished descriptor the way a relay announces
// itself at start (announce): by the HELLO of a link to up to
// Config.Announce relays of its directory. A relay linked already gets a
// new link, since HELLO comes only when a link opens; the old link stays
// until it idles out. Gossip (issue 12 item 2) will carry descriptors
// over open links instead.
func (n *Node) reannounce(ctx context.Context) { n.announceWith(ctx, true) }
