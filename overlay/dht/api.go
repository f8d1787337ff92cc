package dht

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// FindNode returns up to K nodes nearest target that answered, at most
// MaxPerSubnetInReplicas per IPv4 /16 (IPv6 /32).
func (d *DHT) FindNode(ctx context.Context, target Key) ([]Contact, error) {
	return d.FindNodeVia(ctx, target, d.cfg.Transport)
}

// FindNodeVia is FindNode with its requests sent over tr.
func (d *DHT) FindNodeVia(ctx context.Context, target Key, tr Transport) ([]Contact, error) {
	if err := d.live(); err != nil {
		return nil, err
	}
	rs, err := d.newLookup(tr, target, false, 0).run(ctx)
	if err != nil {
		return nil, err
	}
	if len(rs) > 0 {
		d.stats.lookupsOK.Add(1)
	}
	return diverse(rs, d.cfg.K, d.cfg.MaxPerSubnetInReplicas), nil
}

// Get looks up the records of type typ under key and returns the verified
// ones, the highest Seq of each owner, highest Seq first. It queries every
// node of every lookup path's termination set rather than stopping at the
// first answer, so nodes that hide or forge records do not stop it.
func (d *DHT) Get(ctx context.Context, typ uint16, key Key) ([]*Record, error) {
	return d.GetVia(ctx, typ, key, d.cfg.Transport)
}

// GetVia is Get with its requests sent over tr (for instance through a
// circuit, so the relays asked do not learn who is interested).
func (d *DHT) GetVia(ctx context.Context, typ uint16, key Key, tr Transport) ([]*Record, error) {
	if err := d.live(); err != nil {
		return nil, err
	}
	l := d.newLookup(tr, key, true, typ)
	if d.cfg.Server {
		for _, r := range d.store.get(typ, key, d.cfg.Now()) {
			l.keep(r)
		}
	}
	_, err := l.run(ctx)
	if err != nil && len(l.records) == 0 {
		return nil, err
	}
	l.mu.Lock()
	out := make([]*Record, 0, len(l.records))
	for _, r := range l.records {
		out = append(out, r)
	}
	l.mu.Unlock()
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	d.stats.lookupsOK.Add(1)
	slices.SortFunc(out, func(a, b *Record) int {
		switch {
		case a.Seq > b.Seq:
			return -1
		case a.Seq < b.Seq:
			return 1
		}
		return 0
	})
	return out, nil
}

// GetReplicas is Get without the merge: it runs the same lookup and
// returns, for each node that answered with at least one verified record
// of type typ under key, the verified records that node gave (one slice
// per replica; this node's own store counts as one when it is a server).
// Callers that weigh replicas against one another, such as name
// resolution (spec/names.md §5), need the answers apart.
func (d *DHT) GetReplicas(ctx context.Context, typ uint16, key Key) ([][]*Record, error) {
	return d.GetReplicasVia(ctx, typ, key, d.cfg.Transport)
}

// GetReplicasVia is GetReplicas with its requests sent over tr.
func (d *DHT) GetReplicasVia(ctx context.Context, typ uint16, key Key, tr Transport) ([][]*Record, error) {
	if err := d.live(); err != nil {
		return nil, err
	}
	l := d.newLookup(tr, key, true, typ)
	l.byReplica = true
	if d.cfg.Server {
		if own := d.store.get(typ, key, d.cfg.Now()); len(own) > 0 {
			l.replicas = append(l.replicas, own)
		}
	}
	_, err := l.run(ctx)
	l.mu.Lock()
	out := l.replicas
	l.replicas = nil
	l.mu.Unlock()
	if len(out) == 0 {
		if err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	d.stats.lookupsOK.Add(1)
	return out, nil
}

// Put verifies r, stores it on the K nearest eligible nodes (at most
// MaxPerSubnetInReplicas per /16) and returns how many stored it. The DHT
// stores r again every RepublishInterval until it expires or Close.
func (d *DHT) Put(ctx context.Context, r *Record) (int, error) {
	return d.PutVia(ctx, r, d.cfg.Transport)
}

// PutVia is Put with its requests, and those of its republishing, sent
// over tr.
func (d *DHT) PutVia(ctx context.Context, r *Record, tr Transport) (int, error) {
	if err := d.live(); err != nil {
		return 0, err
	}
	if err := d.verify(r, d.cfg.Now()); err != nil {
		return 0, fmt.Errorf("dht: put: %w", err)
	}
	d.mu.Lock()
	d.owned[slot{r.Type, r.Key}] = &owned{rec: r, tr: tr}
	d.mu.Unlock()
	return d.replicate(ctx, r, tr)
}

// owned is a record this node Put, with the transport to republish it on.
type owned struct {
	rec *Record
	tr  Transport
}

// replicate stores r on its current replica set.
func (d *DHT) replicate(ctx context.Context, r *Record, tr Transport) (int, error) {
	rs, err := d.newLookup(tr, r.Key, false, 0).run(ctx)
	if err != nil && !(d.cfg.Server && err == ErrNoContacts) {
		return 0, fmt.Errorf("dht: put: %w", err)
	}
	if len(rs) > 0 {
		d.stats.lookupsOK.Add(1)
	}
	var set []Contact
	if d.cfg.Server && d.cfg.Eligible(d.cfg.Self) {
		set = append(set, d.cfg.Self)
	}
	for _, c := range rs {
		if d.cfg.Eligible(c) {
			set = append(set, c)
		}
	}
	sortByDistance(set, r.Key)
	set = diverse(set, d.cfg.K, d.cfg.MaxPerSubnetInReplicas)
	var (
		mu     sync.Mutex
		stored int
		wg     sync.WaitGroup
	)
	for _, c := range set {
		wg.Go(func() {
			var ok bool
			if c.ID == d.cfg.Self.ID {
				ok = d.storeLocal(r) == Stored
			} else {
				a, err := d.call(ctx, tr, c, &Message{Kind: KindStore, Records: []*Record{r}}, KindStored)
				ok = err == nil && a.Status == Stored
			}
			if ok {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stored == 0 {
		return 0, fmt.Errorf("dht: put: no node stored the record (%d asked)", len(set))
	}
	return stored, nil
}

func (d *DHT) live() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return nil
}

// Records returns the unexpired records this node stores (for operators'
// views and tests).
func (d *DHT) Records() []*Record { return d.store.all(d.cfg.Now()) }
