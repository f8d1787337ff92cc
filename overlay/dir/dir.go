package dir

import (
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
)

// DefaultMaxRelays bounds a Directory when Config.MaxRelays is zero. A
// descriptor's age limits are descriptor.MaxAge and descriptor.MaxClockSkew.
const DefaultMaxRelays = 4096

// Config configures a Directory. The zero value keeps descriptors of the
// default network ("darkmatter").
type Config struct {
	// Network is the network name; descriptors of other networks are
	// refused. Empty means "darkmatter".
	Network string
	// MaxRelays bounds how many relays the directory holds; a descriptor
	// of a new relay beyond it is refused (updates of known relays are
	// still taken). Zero means DefaultMaxRelays.
	MaxRelays int
	// Now is the clock freshness is judged by; nil means time.Now.
	Now func() time.Time
}

// Directory holds the verified, fresh relay descriptors of one network. It
// is safe for concurrent use.
type Directory struct {
	network   string
	maxRelays int
	now       func() time.Time

	// mu guards the following.
	mu      sync.Mutex
	relays  map[keys.NodeID]*descriptor.Descriptor
	fetches map[Peer]*fetch // DIR_GET sent, DIR_DONE awaited
}

// New returns an empty Directory.
func New(cfg Config) *Directory {
	if cfg.Network == "" {
		cfg.Network = "darkmatter"
	}
	if cfg.MaxRelays <= 0 {
		cfg.MaxRelays = DefaultMaxRelays
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Directory{
		network:   cfg.Network,
		maxRelays: cfg.MaxRelays,
		now:       cfg.Now,
		relays:    make(map[keys.NodeID]*descriptor.Descriptor),
		fetches:   make(map[Peer]*fetch),
	}
}

// Add keeps d if it belongs to this network, is fresh now and was published
// later than the descriptor held for the same relay, and reports whether it
// did. d must come from descriptor.Parse (signature checked) and must not be
// modified afterwards.
func (dir *Directory) Add(d *descriptor.Descriptor) bool {
	if d.Network != dir.network {
		return false
	}
	if d.CheckTime(dir.now()) != nil {
		return false
	}
	id := d.NodeID()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	old := dir.relays[id]
	if old == nil && len(dir.relays) >= dir.maxRelays {
		return false
	}
	if old != nil && !d.Published.After(old.Published) {
		return false
	}
	dir.relays[id] = d
	return true
}

// Get returns the descriptor of relay id, or nil if it is unknown or no
// longer fresh.
func (dir *Directory) Get(id keys.NodeID) *descriptor.Descriptor {
	now := dir.now()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	d := dir.relays[id]
	if d != nil && d.Expired(now) {
		delete(dir.relays, id)
		return nil
	}
	return d
}

// List returns every fresh descriptor, in no particular order, and forgets
// the ones that have expired.
func (dir *Directory) List() []*descriptor.Descriptor {
	now := dir.now()
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]*descriptor.Descriptor, 0, len(dir.relays))
	for id, d := range dir.relays {
		if d.Expired(now) {
			delete(dir.relays, id)
			continue
		}
		out = append(out, d)
	}
	return out
}

// Len returns how many relays the directory holds, counting ones that
// expired since the last List or Get.
func (dir *Directory) Len() int {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return len(dir.relays)
}
