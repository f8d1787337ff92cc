package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/darkmatter/darkmatter/overlay/sim"
	"github.com/urfave/cli/v2"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate relay discovery in one process: directory gossip convergence and DHT lookups under churn, for N relays",
		Description: "Runs the real directory (GOSSIP) and DHT engines of N relays on an in-memory\n" +
			"network (package overlay/sim) and prints, per N, the rounds and bytes for every\n" +
			"relay to learn every relay, and DHT lookup success, hops and latency after churn;\n" +
			"then how each grows with N. Example: darkmatter sim --nodes 100,1000,5000",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nodes", Usage: "relays to simulate, comma separated for several runs", Value: "100,1000"},
			&cli.IntFlag{Name: "fanout", Usage: "relays each relay syncs with per gossip round", Value: sim.DefaultFanout},
			&cli.IntFlag{Name: "rounds", Usage: "gossip rounds at most", Value: sim.DefaultMaxRounds},
			&cli.IntFlag{Name: "per-source", Usage: "directory per-source limit (0: the default, 256; -1: none)"},
			&cli.IntFlag{Name: "records", Usage: "DHT records to put", Value: sim.DefaultRecords},
			&cli.IntFlag{Name: "lookups", Usage: "DHT lookups to run (-1: skip the DHT)", Value: sim.DefaultLookups},
			&cli.Float64Flag{Name: "churn", Usage: "fraction of relays replaced before the lookups (-1: none)", Value: sim.DefaultChurn},
			&cli.DurationFlag{Name: "rtt", Usage: "round-trip time of one DHT request, for the modelled latency", Value: sim.DefaultRTT},
			&cli.IntFlag{Name: "seed", Usage: "seed of keys and random choices", Value: 1},
			&cli.IntFlag{Name: "workers", Usage: "goroutines running a gossip round's syncs (1: the same run for a seed)", Value: runtime.GOMAXPROCS(0)},
			&cli.BoolFlag{Name: "progress", Usage: "print a line per gossip round and DHT phase"},
		},
		Action: runSim,
	}
}

func runSim(c *cli.Context) error {
	var sizes []int
	for f := range strings.SplitSeq(c.String("nodes"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < 2 {
			return fmt.Errorf("--nodes: %q is not a number of relays (2 or more)", f)
		}
		sizes = append(sizes, n)
	}
	// The simulation allocates cells by the million and keeps little:
	// collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	w := c.App.Writer
	churn := c.Float64("churn")
	if churn == 0 {
		churn = -1
	}
	fmt.Fprintf(w, "darkmatter sim: seed %d, %d records, %d lookups, churn %.0f%%, modelled RTT %s\n\n",
		uint64(c.Int("seed")), c.Int("records"), c.Int("lookups"), 100*max(churn, 0), c.Duration("rtt"))
	var results []*sim.Result
	for _, n := range sizes {
		cfg := sim.Config{
			Nodes: n, Fanout: c.Int("fanout"), MaxRounds: c.Int("rounds"), PerSource: c.Int("per-source"),
			Records: c.Int("records"), Lookups: c.Int("lookups"), Churn: churn, RTT: c.Duration("rtt"),
			Seed: uint64(c.Int("seed")), Workers: c.Int("workers"),
		}
		if c.Bool("progress") {
			cfg.Progress = func(format string, args ...any) { fmt.Fprintf(c.App.ErrWriter, format+"\n", args...) }
		}
		r, err := sim.Run(c.Context, cfg)
		if err != nil {
			return fmt.Errorf("sim with %d relays: %w", n, err)
		}
		sim.WriteReport(w, cfg, r)
		fmt.Fprintln(w)
		results = append(results, r)
	}
	if len(results) > 1 {
		fmt.Fprintln(w, "growth with N (×: ratio to the previous N)")
		sim.WriteGrowth(w, results)
	}
	return nil
}
