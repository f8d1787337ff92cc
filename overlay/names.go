package overlay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// Bounds of the names a node resolves (spec/names.md §5).
const (
	// NameCacheTTL is the longest a resolved name is kept; a record
	// expiring sooner is kept until its expiry.
	NameCacheTTL = 10 * time.Minute
	// MaxCachedNames bounds the resolved names a node keeps.
	MaxCachedNames = 1024
)

// ErrNameTaken is returned by RegisterName when another key holds the
// name.
var ErrNameTaken = errors.New("overlay: the name is registered to another key")

// nameState is a node's view of the name registry: the DHT rules its
// records are verified by and the names it resolved lately.
type nameState struct {
	mu    sync.Mutex // guards the following
	reg   *dht.Registry
	cache map[string]cachedName
}

type cachedName struct {
	rec   *names.Record
	until time.Time
}

func (s *nameState) setRegistry(reg *dht.Registry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reg = reg
}

func (s *nameState) registry() *dht.Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg
}

func (s *nameState) get(name string, now time.Time) (*names.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[name]
	if !ok || !now.Before(c.until) {
		return nil, false
	}
	return c.rec, true
}

// put keeps rec until min(its expiry, now+NameCacheTTL), dropping expired
// entries, then an arbitrary one, when MaxCachedNames are held.
func (s *nameState) put(name string, rec *names.Record, now time.Time) {
	until := now.Add(NameCacheTTL)
	if rec.Expires.Before(until) {
		until = rec.Expires
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = make(map[string]cachedName)
	}
	if _, ok := s.cache[name]; !ok && len(s.cache) >= MaxCachedNames {
		for k, c := range s.cache {
			if !now.Before(c.until) {
				delete(s.cache, k)
			}
		}
		for k := range s.cache {
			if len(s.cache) < MaxCachedNames {
				break
			}
			delete(s.cache, k)
		}
	}
	s.cache[name] = cachedName{rec: rec, until: until}
}

func (s *nameState) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, name)
}

// nameDHT returns the DHT, the transport of name lookups and stores and
// the registry. Like hidden-service lookups, they always go through a
// circuit, so the DHT nodes asked do not learn which names this node
// looks up or registers.
func (n *Node) nameDHT() (*dht.DHT, dht.Transport, *dht.Registry, error) {
	d, tr, err := hsEnv{n}.transport()
	if err != nil {
		return nil, nil, nil, err
	}
	reg := n.names.registry()
	if reg == nil {
		return nil, nil, nil, ErrNoDHT
	}
	return d, tr, reg, nil
}

// RegisterName registers name (canonicalised) to owner with entries for
// ttl (0: names.MaxTTL), solving the proof of work at the network's
// difficulty (Config.NameDifficulty), and stores it on the name's
// replicas. If owner already holds the name it renews it: the first
// registration time and its nonce are kept and the sequence number goes
// up, so no new work is needed. If another key holds the name it fails
// with ErrNameTaken.
func (n *Node) RegisterName(ctx context.Context, name string, owner *keys.IdentityPrivateKey, ttl time.Duration, entries ...names.Entry) (*names.Record, error) {
	c, err := names.CanonicalName(name)
	if err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = names.MaxTTL
	}
	if ttl < time.Second || ttl > names.MaxTTL {
		return nil, fmt.Errorf("overlay: name lifetime %v out of 1s..%v", ttl, names.MaxTTL)
	}
	d, tr, reg, err := n.nameDHT()
	if err != nil {
		return nil, err
	}
	pub := owner.Public()
	now := time.Now()
	answers, err := d.GetReplicasVia(ctx, names.Type, names.Key(c), tr)
	if err != nil && !errors.Is(err, dht.ErrNotFound) {
		return nil, fmt.Errorf("overlay: register name: %w", err)
	}
	verify := func(r *dht.Record) error { return reg.Verify(r, n.cfg.Network, now) }
	var (
		rec  *names.Record
		seq  uint64 = 1
		prev *names.Record
	)
	if cur, err := names.Resolve(c, answers, verify); err == nil {
		if cur.Owner != pub {
			return nil, ErrNameTaken
		}
		prev = cur
	}
	for _, rep := range answers {
		for _, r := range rep {
			if r.Owner == pub && r.Seq >= seq && verify(r) == nil {
				seq = r.Seq + 1
			}
		}
	}
	expires := now.Add(ttl)
	if prev != nil {
		rec = &names.Record{Name: c, Registered: prev.Registered, Expires: time.Unix(expires.Unix(), 0),
			Nonce: prev.Nonce, Entries: entries, Owner: pub}
	} else if rec, err = names.NewRecord(ctx, c, pub, now, expires, n.cfg.NameDifficulty, entries...); err != nil {
		return nil, err
	}
	r, err := rec.DHTRecord(n.cfg.Network, owner, seq)
	if err != nil {
		return nil, err
	}
	if _, err := d.PutVia(ctx, r, tr); err != nil {
		return nil, fmt.Errorf("overlay: register name (taken by another key or no replica reachable): %w", err)
	}
	n.names.forget(c)
	return rec, nil
}

// ResolveName returns the record of name: the user's petname if
// Config.Petnames has one (a record with the address entry alone and no
// owner or times), else the record the name's replicas agree on
// (names.Resolve), verified by the network's rules. Results are kept
// until their expiry, at most NameCacheTTL.
func (n *Node) ResolveName(ctx context.Context, name string) (*names.Record, error) {
	c, err := names.CanonicalName(name)
	if err != nil {
		return nil, err
	}
	if addr, ok := n.cfg.Petnames.Lookup(c); ok {
		k, err := keys.ParseAddress(addr)
		if err != nil {
			return nil, fmt.Errorf("overlay: petname %q: %w", c, err)
		}
		return &names.Record{Name: c, Entries: []names.Entry{names.AddressEntry(k)}}, nil
	}
	now := time.Now()
	if rec, ok := n.names.get(c, now); ok {
		return rec, nil
	}
	d, tr, reg, err := n.nameDHT()
	if err != nil {
		return nil, err
	}
	answers, err := d.GetReplicasVia(ctx, names.Type, names.Key(c), tr)
	if errors.Is(err, dht.ErrNotFound) {
		return nil, names.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("overlay: resolve name: %w", err)
	}
	rec, err := names.Resolve(c, answers, func(r *dht.Record) error { return reg.Verify(r, n.cfg.Network, now) })
	if err != nil {
		return nil, err
	}
	n.names.put(c, rec, now)
	return rec, nil
}
