package dht

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifyCacheSize bounds the verified-record cache.
const verifyCacheSize = 4096

// verifyCache remembers records whose signature and type rules passed, by
// the SHA-256 of their encoding, so the copies a Get receives from k
// replicas cost one Ed25519 verification. Time checks run every time.
type verifyCache struct {
	mu   sync.Mutex // guards seen
	seen map[[sha256.Size]byte]struct{}
}

// verify is Registry.Verify for the DHT's network at now, through the cache.
func (d *DHT) verify(r *Record, now time.Time) error {
	if err := d.cfg.Registry.checkTime(r, now); err != nil {
		return err
	}
	h := sha256.Sum256(r.Marshal())
	c := &d.vcache
	c.mu.Lock()
	_, ok := c.seen[h]
	c.mu.Unlock()
	if ok {
		return nil
	}
	if err := d.cfg.Registry.Verify(r, d.cfg.Network, now); err != nil {
		return err
	}
	c.mu.Lock()
	if c.seen == nil || len(c.seen) >= verifyCacheSize {
		c.seen = make(map[[sha256.Size]byte]struct{})
	}
	c.seen[h] = struct{}{}
	c.mu.Unlock()
	return nil
}
