package sim

import (
	"context"
	"errors"
	"time"

	"github.com/darkmatter/darkmatter/internal/defaults"
)

// Network is the network name of the simulated relays.
const Network = "darkmatter-sim"

// Defaults for the Config fields of the same names.
const (
	DefaultFanout      = 2   // overlay.DefaultGossipFanout
	DefaultMaxRounds   = 60  // 30 minutes of gossip
	DefaultStallRounds = 3   // rounds teaching < 0.1% of the pairs that end the gossip experiment
	DefaultRecords     = 200 // records Put
	DefaultLookups     = 1000
	DefaultChurn       = 0.3
	DefaultRTT         = 50 * time.Millisecond
	// GossipInterval is the Node's gossip interval (overlay.DefaultGossip):
	// one simulated round.
	GossipInterval = 30 * time.Second
)

// Config configures a run. Zero fields take the defaults.
type Config struct {
	// Nodes is the number of relays (at least 2).
	Nodes int
	// Fanout is how many relays each relay syncs with per round.
	Fanout int
	// MaxRounds bounds the gossip rounds; StallRounds ends the gossip
	// experiment early after that many rounds in a row that taught less
	// than 0.1% of the (relay, relay) pairs.
	MaxRounds, StallRounds int
	// PerSource overrides dir.Admission.PerSource (the unconfirmed relays
	// one source may introduce); zero keeps the directory's default, a
	// negative value lifts the limit (to Nodes).
	PerSource int
	// Records, Lookups: records Put and Gets run in the DHT experiment. A
	// negative Lookups skips the DHT experiment.
	Records, Lookups int
	// Churn is the fraction of relays replaced before the lookups; zero
	// means DefaultChurn, a negative value means none.
	Churn float64
	// RTT is the modelled round-trip time of one DHT request (see
	// DHTResult.ModelMs).
	RTT time.Duration
	// Seed makes the run reproducible: keys, bootstrap order and peer
	// choices derive from it.
	Seed uint64
	// Workers is how many goroutines run a gossip round's syncs. With 1
	// (the default) a Seed gives the same gossip run every time; with
	// more, the order the syncs interleave in varies a little.
	Workers int
	// Progress, when set, is called after every gossip round and DHT
	// phase (for a command's progress output).
	Progress func(format string, args ...any)
}

func (c *Config) setDefaults() {
	defaults.Set(&c.Fanout, DefaultFanout)
	defaults.Set(&c.MaxRounds, DefaultMaxRounds)
	defaults.Set(&c.StallRounds, DefaultStallRounds)
	defaults.Set(&c.Records, DefaultRecords)
	defaults.Set(&c.RTT, DefaultRTT)
	defaults.Set(&c.Workers, 1)
	if c.Lookups == 0 {
		c.Lookups = DefaultLookups
	}
	switch {
	case c.Churn == 0:
		c.Churn = DefaultChurn
	case c.Churn < 0:
		c.Churn = 0
	}
	if c.Churn > 0.9 {
		c.Churn = 0.9
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// Result is what one run measured.
type Result struct {
	Nodes  int
	Gossip GossipResult
	DHT    DHTResult // zero when Lookups < 0
	Wall   time.Duration
}

// Dist summarises a sample.
type Dist struct {
	Mean, P50, P99, Max float64
}

// ErrNodes is returned for a Config with fewer than 2 nodes.
var ErrNodes = errors.New("sim: need at least 2 nodes")

// Run runs both experiments for cfg.Nodes relays.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Nodes < 2 {
		return nil, ErrNodes
	}
	cfg.setDefaults()
	start := time.Now()
	res := &Result{Nodes: cfg.Nodes}
	g, err := runGossip(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res.Gossip = *g
	if cfg.Lookups >= 0 {
		d, err := runDHT(ctx, cfg)
		if err != nil {
			return nil, err
		}
		res.DHT = *d
	}
	res.Wall = time.Since(start)
	return res, nil
}
