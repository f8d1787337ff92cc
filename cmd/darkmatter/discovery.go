package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

// discoveryFlags are the flags of discovery, guards and the DHT that relays
// and proxies share; relays also set their gossip interval and family.
func discoveryFlags(relay bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.BoolFlag{Name: "allow-same-subnet", Usage: "allow several hops in one /16, and relays of one address block in the directory and the DHT (local test networks)"},
		&cli.DurationFlag{Name: "guard-min-age", Usage: "how long a relay must be known before it can be a guard (0s: no minimum, for test networks)", Value: circuit.DefaultMinGuardAge},
		&cli.DurationFlag{Name: "dht-min-age", Usage: "how long a relay must be known before it stores DHT records (0s: no minimum, for test networks)", Value: overlay.DefaultDHTMinAge},
		nameDifficultyFlag(),
	}
	if relay {
		fs = append(fs,
			&cli.DurationFlag{Name: "gossip-interval", Usage: "how often the relay synchronises its directory with random relays", Value: overlay.DefaultGossip},
			&cli.StringSliceFlag{Name: "family", Usage: "NodeID (hex) of another relay of the same operator, which must list this one too (repeatable)"},
		)
	} else {
		fs = append(fs, &cli.StringFlag{Name: "petnames", Usage: "your own names: a file of `name address.dark` lines that override the network's names (default: DATA/petnames, if it exists)"})
	}
	return fs
}

// applyDiscovery sets cfg from the discovery flags; the node keeps its
// relay list, guards and build times in the --data directory.
func applyDiscovery(c *cli.Context, cfg *overlay.Config) error {
	cfg.StateDir = c.String("data")
	if err := applyNameDifficulty(c, cfg); err != nil {
		return err
	}
	cfg.AllowSameSubnet = c.Bool("allow-same-subnet")
	cfg.GuardMinAge = minAge(c.Duration("guard-min-age"))
	cfg.DHTMinAge = minAge(c.Duration("dht-min-age"))
	if c.IsSet("gossip-interval") {
		if c.Duration("gossip-interval") <= 0 {
			return fmt.Errorf("--gossip-interval must be positive")
		}
		cfg.Gossip = c.Duration("gossip-interval")
	}
	for _, s := range c.StringSlice("family") {
		id, err := keys.ParseNodeID(s)
		if err != nil {
			return fmt.Errorf("--family %q: %w", s, err)
		}
		cfg.Family = append(cfg.Family, id)
	}
	return applyPetnames(c, cfg)
}

// applyPetnames loads the user's petnames (spec/names.md §6): --petnames,
// else DATA/petnames if that file exists.
func applyPetnames(c *cli.Context, cfg *overlay.Config) error {
	if c.Command == nil || !slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "petnames") }) {
		return nil
	}
	path := c.String("petnames")
	if path == "" {
		path = filepath.Join(c.String("data"), "petnames")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	p, err := names.LoadPetnames(path)
	if err != nil {
		return fmt.Errorf("--petnames: %w", err)
	}
	cfg.Petnames = p
	return nil
}

// minAge maps a flag's "no minimum" (0 or less) to the Config's negative.
func minAge(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
