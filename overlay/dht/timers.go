package dht

import (
	"context"
	"crypto/rand"
	"time"
)

// startTimers starts the one background goroutine, which runs each
// periodic job on its own ticker until Close.
func (d *DHT) startTimers() {
	d.wg.Go(func() {
		purge := time.NewTicker(d.cfg.PurgeInterval)
		refresh := time.NewTicker(d.cfg.RefreshInterval)
		republish := time.NewTicker(d.cfg.RepublishInterval)
		replicate := time.NewTicker(d.cfg.ReplicateInterval)
		defer purge.Stop()
		defer refresh.Stop()
		defer republish.Stop()
		defer replicate.Stop()
		for {
			select {
			case <-d.ctx.Done():
				return
			case <-purge.C:
				d.purge()
			case <-refresh.C:
				d.refresh(d.ctx)
			case <-republish.C:
				d.republish(d.ctx)
			case <-replicate.C:
				d.replicateStored(d.ctx)
			}
		}
	})
}

// Maintain runs every periodic job once, now: purge expired records,
// refresh the table, republish owned records and replicate stored ones.
// Simulations with a virtual clock call it instead of waiting for the
// tickers.
func (d *DHT) Maintain(ctx context.Context) {
	d.purge()
	d.refresh(ctx)
	d.republish(ctx)
	d.replicateStored(ctx)
}

// purge drops expired stored records and expired owned records.
func (d *DHT) purge() {
	now := d.cfg.Now()
	d.store.purge(now)
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, o := range d.owned {
		if !o.rec.ExpiresAt().After(now) {
			delete(d.owned, s)
		}
	}
}

// refresh pings the least recently seen contact of each full bucket that
// has replacements waiting (a dead one is replaced), then looks up a
// random ID to learn new contacts.
func (d *DHT) refresh(ctx context.Context) {
	for _, c := range d.table.stale() {
		_ = d.Ping(ctx, c) // a failure drops c and promotes a replacement
	}
	var target Key
	_, _ = rand.Read(target[:])
	_, _ = d.FindNode(ctx, target)
}

// republish stores every unexpired owned record again.
func (d *DHT) republish(ctx context.Context) {
	now := d.cfg.Now()
	d.mu.Lock()
	var todo []*owned
	for _, o := range d.owned {
		if o.rec.ExpiresAt().After(now) {
			todo = append(todo, o)
		}
	}
	d.mu.Unlock()
	for _, o := range todo {
		if ctx.Err() != nil {
			return
		}
		if _, err := d.replicate(ctx, o.rec, o.tr); err != nil {
			d.cfg.Logf("dht: republish: %v", err)
		}
	}
}

// replicateStored pushes every stored record to its current replica set,
// so records survive the nodes that held them leaving.
func (d *DHT) replicateStored(ctx context.Context) {
	for _, r := range d.store.all(d.cfg.Now()) {
		if ctx.Err() != nil {
			return
		}
		_, _ = d.replicate(ctx, r, d.cfg.Transport)
	}
}
