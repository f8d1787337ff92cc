package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/urfave/cli/v2"
)

func relayCommand() *cli.Command {
	return &cli.Command{
		Name:  "relay",
		Usage: "run a relay that carries other people's circuits",
		Flags: append(append(commonFlags(),
			&cli.StringSliceFlag{Name: "listen", Usage: "link listen address [tcp://]HOST:PORT (repeatable)", Required: true},
			&cli.StringSliceFlag{Name: "advertise", Usage: "address to publish in the descriptor, [tcp://]HOST:PORT (repeatable; default: the listen addresses)"},
			&cli.StringSliceFlag{Name: "bootstrap", Usage: "relay ID@HOST:PORT to announce to (repeatable)"},
			&cli.BoolFlag{Name: "exit", Usage: "act as an exit relay"},
			&cli.StringFlag{Name: "exit-policy", Usage: `exit policy, e.g. "reject private:*,accept *:80,accept *:443" (default: reject private:*,accept *:*)`},
			&cli.BoolFlag{Name: "allow-private-addrs", Usage: "extend circuits to relays at loopback, private and link-local addresses (a network on one machine or one LAN only)"},
			&cli.IntFlag{Name: "max-links", Usage: "accepted links at most, open or in their handshake", Value: linkmgr.DefaultMaxLinks},
			&cli.IntFlag{Name: "max-links-per-ip", Usage: "accepted links at most from one IPv4 address or IPv6 /64", Value: linkmgr.DefaultMaxLinksPerIP},
			&cli.Float64Flag{Name: "create-rate", Usage: "CREATE cells per second at most from one link (bursts of --create-burst)", Value: circuit.DefaultCreateRate},
			&cli.IntFlag{Name: "create-burst", Usage: "CREATE cells one link may send at once", Value: circuit.DefaultCreateBurst},
			&cli.IntFlag{Name: "max-circuits-per-link", Usage: "circuits at most that one link's peer opens", Value: circuit.DefaultMaxCircuitsPerChannel},
			&cli.IntFlag{Name: "max-circuits-per-ip", Usage: "circuits at most opened from one IPv4 address or IPv6 /64 (default: max-circuits/8)"},
			&cli.IntFlag{Name: "max-circuits", Usage: "circuits at most that peers open at this relay", Value: circuit.DefaultMaxCircuits},
			&cli.IntFlag{Name: "reserve", Usage: "behind NAT: reserve at this many public relays and be reached through them (the descriptor lists relay://HOST:PORT addresses; listen on quic:// to punch direct paths)"},
			&cli.BoolFlag{Name: "no-hop", Usage: "do not relay links to relays behind NAT"},
			&cli.IntFlag{Name: "memory-budget", Usage: "MiB of cells queued on all links at most; over it the circuits holding the oldest cells are destroyed", Value: link.DefaultBudget * cell.Size >> 20},
		), append(append(discoveryFlags(true), executorFlags()...), metricsFlags()...)...),
		Action: func(c *cli.Context) error {
			info, debug, err := logger(c)
			if err != nil {
				return err
			}
			bs, err := parseBootstraps(c.StringSlice("bootstrap"))
			if err != nil {
				return err
			}
			keyDir := filepath.Join(c.String("data"), "keys")
			k, err := keys.LoadOrGenerateNodeKeys(keyDir, nil)
			if err != nil {
				return err
			}
			var exit *circuit.ExitConfig
			if c.Bool("exit") || c.IsSet("exit-policy") {
				pol := exitpolicy.Default()
				if c.IsSet("exit-policy") {
					if pol, err = exitpolicy.Parse(c.String("exit-policy")); err != nil {
						return fmt.Errorf("--exit-policy: %w", err)
					}
				}
				exit = &circuit.ExitConfig{Policy: pol}
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			if c.Int("memory-budget") <= 0 {
				return fmt.Errorf("--memory-budget must be positive")
			}
			prog := &progress{} // a relay's bootstrap is not printed
			cfg := overlay.Config{
				Network:            c.String("network"),
				Listen:             c.StringSlice("listen"),
				Advertise:          c.StringSlice("advertise"),
				Keys:               k,
				OnionKeyFile:       filepath.Join(keyDir, keys.OnionKeysFileName),
				Exit:               exit,
				Bootstrap:          bs,
				AllowPrivateAddrs:  c.Bool("allow-private-addrs"),
				MaxLinks:           c.Int("max-links"),
				MaxLinksPerIP:      c.Int("max-links-per-ip"),
				CreateRate:         c.Float64("create-rate"),
				CreateBurst:        c.Int("create-burst"),
				MaxCircuitsPerLink: c.Int("max-circuits-per-link"),
				MaxCircuitsPerIP:   c.Int("max-circuits-per-ip"),
				MaxCircuits:        c.Int("max-circuits"),
				MemoryBudget:       c.Int("memory-budget") << 20 / cell.Size,
				Reserve:            c.Int("reserve"),
				DisableHop:         c.Bool("no-hop"),
				Progress:           prog.report,
				Logf:               debug,
			}
			if err := applyDiscovery(c, &cfg); err != nil {
				return err
			}
			if err := applyExecutor(c, &cfg); err != nil {
				return err
			}
			n, err := overlay.New(cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			role := "relay"
			if exit != nil {
				role = "exit relay"
			}
			stopView, err := startOperatorView(c, role, n, prog)
			if err != nil {
				return err
			}
			defer stopView()
			if err := n.Start(ctx); err != nil {
				return err
			}
			prog.report(100, "relay started")
			ready := role
			if exit != nil {
				ready = "exit relay (policy " + exit.Policy.String() + ")"
			}
			if cfg.Executor != nil {
				p := n.Executor().Policy()
				ready += fmt.Sprintf(" and executor (%d calls at once, %v, %d MiB)", p.Capacity, p.Timeout, p.MemoryPages>>4)
			}
			say("darkmatter %s ready on %s", ready, n.Addr())
			say("bootstrap: %s", n.Bootstrap())
			if cfg.Reserve > 0 {
				go reportRelayed(ctx, n)
			}
			<-ctx.Done()
			info.Printf("shutting down")
			return nil
		},
	}
}

// reportRelayed prints the relay's bootstrap line again whenever the
// relays it is reached through change (a relay behind NAT, --reserve).
func reportRelayed(ctx context.Context, n *overlay.Node) {
	var last []string
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a := n.RelayedAddrs(); !slices.Equal(a, last) {
			last = a
			say("reachable through %d relay(s); bootstrap: %s", len(a), n.Bootstrap())
		}
	}
}
