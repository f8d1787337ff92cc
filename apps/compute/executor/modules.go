package executor

import (
	"container/list"
	"sync"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
)

// module is a module's verified bytes and the verified manifest the DHT
// had for it (either may be nil in the cache).
type module struct {
	m    *manifest.Manifest // nil: none looked up yet
	raw  []byte             // the signed manifest, to attach to sub-calls
	code []byte             // nil until fetched and checked
}

// cache keeps verified modules by hash, least recently used evicted first
// once their bytes pass the bound. A manifest without code counts its own
// size only.
type cache struct {
	mu     sync.Mutex
	max    int
	bytes  int
	lru    *list.List // of *cached, most recent first
	byHash map[[32]byte]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, lru: list.New(), byHash: make(map[[32]byte]*list.Element)}
}

func (m *module) size() int { return len(m.raw) + len(m.code) }

// get returns the module of hash, if cached.
func (c *cache) get(hash [32]byte) (*module, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[hash]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cached).mod, true
}

// cached is an element of cache.lru.
type cached struct {
	hash [32]byte
	mod  *module
}

// put stores mod under h (replacing what it had) and evicts to the bound;
// a module larger than the bound alone is not kept.
func (c *cache) put(h [32]byte, mod *module) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byHash[h]; ok {
		c.bytes -= e.Value.(*cached).mod.size()
		c.lru.Remove(e)
		delete(c.byHash, h)
	}
	if mod.size() > c.max {
		return
	}
	c.byHash[h] = c.lru.PushFront(&cached{h, mod})
	c.bytes += mod.size()
	for c.bytes > c.max {
		e := c.lru.Back()
		old := e.Value.(*cached)
		c.lru.Remove(e)
		delete(c.byHash, old.hash)
		c.bytes -= old.mod.size()
	}
}

// len returns the modules cached and their bytes.
func (c *cache) len() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
