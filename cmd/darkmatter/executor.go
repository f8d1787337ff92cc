package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/darkmatter/darkmatter/apps/compute/executor"
	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/control"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/linkrpc"
	"github.com/urfave/cli/v2"
)

// Default DHT store limits (dht.StoreLimits), as the flags show them.
const (
	defaultStoresPerMinute = 60
	defaultStoreBurst      = 30
)

// executorFlags are a relay's flags of delegated calls (spec/compute.md
// §5) and of the DHT limits a small network raises.
func executorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "executor", Usage: "run delegated WebAssembly calls at the end of circuits (advertised in the descriptor)"},
		&cli.IntFlag{Name: "executor-capacity", Usage: "calls the executor runs at once; more are refused as busy", Value: executor.DefaultCapacity},
		&cli.DurationFlag{Name: "executor-timeout", Usage: "wall time of one call at most", Value: executor.DefaultTimeout},
		&cli.IntFlag{Name: "executor-memory-mb", Usage: "MiB of WebAssembly memory one call may use at most", Value: executor.DefaultMemoryPages * 64 >> 10},
		&cli.StringFlag{Name: "executor-authors", Usage: "file of the module authors (public keys, keygen --author) whose modules the executor runs, one per line; without it, any validly signed module"},
		&cli.IntFlag{Name: "subcall-hops", Usage: "length of the circuits of sub-calls to other executors, 1..3 (below 3 only where you trust them: they see this relay's address)", Value: 3},
		&cli.Float64Flag{Name: "dht-request-rate", Usage: "DHT requests per second at most from one peer (test networks raise it: one blob's chunks are many requests)", Value: linkrpc.DefaultRate},
		&cli.IntFlag{Name: "dht-request-burst", Usage: "DHT requests one peer may send at once (test networks raise it)", Value: linkrpc.DefaultBurst},
		&cli.Float64Flag{Name: "dht-stores-per-minute", Usage: "DHT records one peer may store here per minute (test networks raise it: a module is a hundred-odd records)", Value: defaultStoresPerMinute},
		&cli.IntFlag{Name: "dht-store-burst", Usage: "DHT records one peer may store at once (test networks raise it)", Value: defaultStoreBurst},
	}
}

// applyNameDifficulty sets cfg's name difficulty from --name-difficulty,
// if the command has the flag.
func applyNameDifficulty(c *cli.Context, cfg *overlay.Config) error {
	if c.Command == nil || !slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "name-difficulty") }) {
		return nil
	}
	d := c.Int("name-difficulty")
	if d < 1 || d > names.MaxDifficulty {
		return fmt.Errorf("--name-difficulty must be in 1..%d", names.MaxDifficulty)
	}
	cfg.NameDifficulty = d
	return nil
}

// nameDifficultyFlag is the network's proof-of-work difficulty of name
// registrations: every node of a network must use the same.
func nameDifficultyFlag() cli.Flag {
	return &cli.IntFlag{Name: "name-difficulty", Usage: "leading zero bits of a name registration's proof of work; the same on every node of a network (test networks lower it)", Value: names.DefaultDifficulty}
}

// applyExecutor sets cfg's executor and DHT limits from the flags.
func applyExecutor(c *cli.Context, cfg *overlay.Config) error {
	if c.Float64("dht-request-rate") <= 0 || c.Int("dht-request-burst") <= 0 ||
		c.Float64("dht-stores-per-minute") <= 0 || c.Int("dht-store-burst") <= 0 {
		return errors.New("--dht-request-rate, --dht-request-burst, --dht-stores-per-minute and --dht-store-burst must be positive")
	}
	cfg.DHTRequestRate, cfg.DHTRequestBurst = c.Float64("dht-request-rate"), c.Int("dht-request-burst")
	cfg.DHTLimits = dht.StoreLimits{StoresPerMinute: c.Float64("dht-stores-per-minute"), StoreBurst: c.Int("dht-store-burst")}
	if err := applyNameDifficulty(c, cfg); err != nil {
		return err
	}
	if !c.Bool("executor") {
		for _, f := range []string{"executor-capacity", "executor-timeout", "executor-memory-mb", "executor-authors", "subcall-hops"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s needs --executor", f)
			}
		}
		return nil
	}
	p := executor.Policy{Capacity: c.Int("executor-capacity"), Timeout: c.Duration("executor-timeout")}
	if p.Capacity < 1 || p.Capacity > 65535 {
		return errors.New("--executor-capacity must be in 1..65535")
	}
	if p.Timeout <= 0 {
		return errors.New("--executor-timeout must be positive")
	}
	mb := c.Int("executor-memory-mb")
	if mb < 1 || mb > 4096 {
		return errors.New("--executor-memory-mb must be in 1..4096")
	}
	p.MemoryPages = uint32(mb) * 16 // 64 KiB pages
	if f := c.String("executor-authors"); f != "" {
		var err error
		if p.Authors, err = loadAuthors(f); err != nil {
			return fmt.Errorf("--executor-authors: %w", err)
		}
	}
	hops := c.Int("subcall-hops")
	if hops < 1 || hops > 3 {
		return errors.New("--subcall-hops must be 1, 2 or 3")
	}
	cfg.Executor = &overlay.ExecutorConfig{Policy: p, SubcallHops: hops,
		CompileCacheDir: filepath.Join(c.String("data"), "wasm-cache")}
	return nil
}

// loadAuthors reads author public keys (hex), one per line; blank lines
// and lines starting with # are skipped.
func loadAuthors(path string) ([]keys.IdentityPublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []keys.IdentityPublicKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := parseAuthor(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no author key listed (leave the flag out to run any signed module)")
	}
	return out, nil
}

// parseAuthor parses an author public key: 64 hex digits.
func parseAuthor(s string) (keys.IdentityPublicKey, error) {
	var k keys.IdentityPublicKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("%q is not an author key (%d hex digits)", s, 2*len(k))
	}
	copy(k[:], b)
	return k, nil
}

// computeValues are the counters of the node's executor, if it is one,
// and of the calls it made.
func computeValues(n *overlay.Node) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	if ex := n.Executor(); ex != nil {
		s := ex.Stats()
		add("executor calls", s.Calls)
		add("executor calls ok", s.OK)
		add("executor calls failed", s.Failed)
		add("executor calls refused busy", s.Busy)
		add("executor calls running", s.Running)
		add("executor sub-calls delegated", s.SubCalls)
		add("executor data sources fetched", s.Sources)
		add("executor modules cached", s.Modules)
		add("executor modules from the DHT", s.FromDHT)
		add("executor modules from requesters", s.FromAsker)
	}
	cs := n.CallStats()
	add("calls made", fmt.Sprintf("%d (%d ok, %d retries)", cs.Calls, cs.OK, cs.Retries))
	return v
}

// siteValues are the counters of the sites the node visits and hosts.
func siteValues(n *overlay.Node) []control.Value {
	var v []control.Value
	add := func(name string, x any) { v = append(v, control.Value{Name: name, Value: fmt.Sprint(x)}) }
	s := n.SiteClient().Stats()
	add("sites files served", s.FilesServed)
	add("sites files from hosts", s.FromHosts)
	add("sites files from the DHT", s.DHTFetches)
	add("sites cache hits", s.CacheHits)
	add("sites tampered blobs rejected", s.Tampered)
	add("sites host failures", s.HostFailures)
	add("sites handler calls", fmt.Sprintf("%d (%d failed)", s.HandlerCalls, s.HandlerErrors))
	if h := n.SiteStats(); h.Hosted > 0 {
		add("sites hosted", h.Hosted)
		add("sites manifests taken", fmt.Sprintf("%d (%d failed)", h.Syncs, h.SyncFails))
	}
	return v
}
