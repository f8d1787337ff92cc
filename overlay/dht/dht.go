package dht

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
)

// Transport carries one request to a node and returns its answer. The
// node implements it over links (resolving Contact.ID through its
// directory) and, for lookups that would reveal interest, through a
// circuit. Call must honour ctx.
type Transport interface {
	Call(ctx context.Context, to Contact, req []byte) ([]byte, error)
}

// ErrNotSent, wrapped in a Transport's error, says the request never left
// this node (a client had no circuit to send it through): the peer is not
// to blame and stays in the routing table. Without it, a client whose
// guards all died at once would drop every contact and look nothing up
// again until its next directory refresh.
var ErrNotSent = errors.New("dht: request not sent")

// Tuning defaults (spec/dht.md §6 gives the reasons).
const (
	DefaultK                 = 20
	DefaultAlpha             = 3
	DefaultDisjoint          = 4
	DefaultPerSubnet         = 2
	DefaultRequestTimeout    = 5 * time.Second
	DefaultRepublishInterval = time.Hour
	DefaultReplicateInterval = time.Hour
	DefaultRefreshInterval   = 15 * time.Minute
	DefaultPurgeInterval     = time.Minute
)

// Config configures a DHT. Every zero field takes its default.
type Config struct {
	// Self is this node. Its ID must be set.
	Self Contact
	// Network is the network name every record signature covers (required).
	Network string
	// Registry holds the record types this node accepts [DefaultRegistry()].
	Registry *Registry
	// Transport carries requests (required).
	Transport Transport
	// K is the bucket size and the replication factor [20].
	K int
	// Alpha is how many requests one lookup path has in flight [3].
	Alpha int
	// Disjoint is the number of disjoint lookup paths (S/Kademlia d) [4].
	Disjoint int
	// MaxPerSubnetInBucket caps the contacts of one IPv4 /24 (IPv6 /48) in
	// each routing-table bucket [2].
	MaxPerSubnetInBucket int
	// MaxPerSubnetInReplicas caps the nodes of one IPv4 /16 (IPv6 /32) in
	// a replica set and in the set a lookup path must query [2].
	MaxPerSubnetInReplicas int
	// AllowSameSubnet lifts both subnet caps (a loopback test network).
	AllowSameSubnet bool
	// Limits bound the records peers can store here.
	Limits StoreLimits
	// Eligible reports whether a peer may store records (only relays old
	// enough should). Put stores only on eligible nodes; lookups route
	// through every node. Nil means every peer is eligible.
	Eligible func(Contact) bool
	// Resolve, when set, gives the address the directory holds for a node
	// ID. Lookups then replace the address a peer claimed for a contact
	// with it, and skip contacts the directory does not know, so lying
	// about addresses cannot defeat the subnet caps.
	Resolve func(id keys.NodeID) (addr string, ok bool)
	// Server makes the node answer requests and store records. A client
	// (false) answers nothing.
	Server bool
	// RequestTimeout bounds each request [5s].
	RequestTimeout time.Duration
	// RepublishInterval is how often records this node Put are stored
	// again [1h]; keep it well below their lifetime.
	RepublishInterval time.Duration
	// ReplicateInterval is how often stored records are pushed to the
	// current k closest nodes [1h].
	ReplicateInterval time.Duration
	// RefreshInterval is how often the table is refreshed: stale contacts
	// pinged and a random lookup run [15m].
	RefreshInterval time.Duration
	// PurgeInterval is how often expired records are dropped [1m].
	PurgeInterval time.Duration
	// Now is the clock for records and rate limits [time.Now]. The
	// background loops use real tickers; simulations call Maintain.
	Now func() time.Time
	// Logf logs; nil is silent. Addresses and keys go through safelog.S.
	Logf func(format string, args ...any)
}

// DHT is one Kademlia node. It is safe for concurrent use.
type DHT struct {
	cfg    Config
	table  *table
	store  *store
	stats  stats
	vcache verifyCache

	mu     sync.Mutex // guards owned and closed
	owned  map[slot]*owned
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrClosed is returned by calls on a closed DHT.
var ErrClosed = errors.New("dht: closed")

// New checks cfg, fills its defaults and starts the background loops.
func New(cfg Config) (*DHT, error) {
	if cfg.Transport == nil {
		return nil, errors.New("dht: Config.Transport is required")
	}
	if len(cfg.Network) == 0 || len(cfg.Network) > MaxNetworkLen {
		return nil, fmt.Errorf("dht: Config.Network must be 1..%d bytes", MaxNetworkLen)
	}
	if cfg.K > MaxContacts {
		return nil, fmt.Errorf("dht: K %d exceeds %d", cfg.K, MaxContacts)
	}
	if cfg.Registry == nil {
		cfg.Registry = DefaultRegistry()
	}
	defaults.Set(&cfg.K, DefaultK)
	defaults.Set(&cfg.Alpha, DefaultAlpha)
	defaults.Set(&cfg.Disjoint, DefaultDisjoint)
	defaults.Set(&cfg.MaxPerSubnetInBucket, DefaultPerSubnet)
	defaults.Set(&cfg.MaxPerSubnetInReplicas, DefaultPerSubnet)
	if cfg.AllowSameSubnet {
		cfg.MaxPerSubnetInBucket, cfg.MaxPerSubnetInReplicas = 0, 0
	}
	l := &cfg.Limits
	defaults.Set(&l.MaxRecords, 65536)
	defaults.Set(&l.MaxBytes, 64<<20)
	defaults.Set(&l.MaxPerOwner, 256)
	defaults.Set(&l.MaxPerKey, 16)
	defaults.Set(&l.StoresPerMinute, 60)
	defaults.Set(&l.StoreBurst, 30)
	defaults.Set(&l.MaxSources, 4096)
	defaults.Set(&cfg.RequestTimeout, DefaultRequestTimeout)
	defaults.Set(&cfg.RepublishInterval, DefaultRepublishInterval)
	defaults.Set(&cfg.ReplicateInterval, DefaultReplicateInterval)
	defaults.Set(&cfg.RefreshInterval, DefaultRefreshInterval)
	defaults.Set(&cfg.PurgeInterval, DefaultPurgeInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Eligible == nil {
		cfg.Eligible = func(Contact) bool { return true }
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	d := &DHT{
		cfg:   cfg,
		table: newTable(cfg.Self.ID, cfg.K, cfg.MaxPerSubnetInBucket),
		store: newStore(cfg.Limits),
		owned: make(map[slot]*owned),
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.startTimers()
	return d, nil
}

// Close stops the background loops and waits for them. It may be called
// more than once.
func (d *DHT) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	return nil
}

// Self returns this node's contact.
func (d *DHT) Self() Contact { return d.cfg.Self }

// AddContact tells the DHT that c is a live DHT server (from the
// directory or an answer). It reports whether c is now in the table.
func (d *DHT) AddContact(c Contact) bool { return d.table.add(c) }

// Seed adds contacts to the table, then looks up this node's own ID to
// fill the buckets near it (the Kademlia join).
func (d *DHT) Seed(ctx context.Context, cs []Contact) error {
	for _, c := range cs {
		d.table.add(c)
	}
	_, err := d.FindNode(ctx, Key(d.cfg.Self.ID))
	return err
}

// TableSize returns the number of contacts in the routing table.
func (d *DHT) TableSize() int { return d.table.size() }

// call sends m to c over tr and returns the decoded answer of kind want.
// A failed call drops c from the table.
func (d *DHT) call(ctx context.Context, tr Transport, c Contact, m *Message, want Kind) (*Message, error) {
	m.ID = rand.Uint64()
	if d.cfg.Server {
		m.Flags |= FlagServer
	}
	req, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	d.stats.sent(len(req))
	resp, err := tr.Call(cctx, c, req)
	if err == nil {
		d.stats.received(len(resp))
		var a *Message
		if a, err = ParseMessage(resp); err == nil {
			switch {
			case a.ID != m.ID:
				err = errors.New("dht: answer ID does not echo the request")
			case a.Kind != want:
				err = fmt.Errorf("dht: answer kind %d, want %d", a.Kind, want)
			default:
				d.table.add(c)
				return a, nil
			}
		}
	}
	if ctx.Err() == nil && !errors.Is(err, ErrNotSent) {
		// The peer failed, not our caller's context or our transport.
		d.table.failed(c.ID)
	}
	d.stats.failures.Add(1)
	return nil, err
}

// Ping checks that c answers.
func (d *DHT) Ping(ctx context.Context, c Contact) error {
	_, err := d.call(ctx, d.cfg.Transport, c, &Message{Kind: KindPing}, KindPong)
	return err
}
