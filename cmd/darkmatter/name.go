package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

// The naming service from the command line (spec/names.md): name register
// and name resolve, each a one-shot client.

func nameCommand() *cli.Command {
	return &cli.Command{
		Name:  "name",
		Usage: "register and resolve human-readable names of .dark addresses, sites and modules",
		Subcommands: []*cli.Command{{
			Name:      "register",
			Usage:     "register (or renew) a name to a key, with a proof of work, and store it in the DHT",
			ArgsUsage: "NAME",
			Description: "Registers NAME to the identity key in --key (keygen --author --out FILE), pointing at\n" +
				"--target (a .dark address), --site (a site's .dark address), --module (a module hash) and/or\n" +
				"--text. The first registration solves a proof of work at the network's difficulty\n" +
				"(--name-difficulty, the same on every node); registering again with the same key renews\n" +
				"the name and replaces its entries without new work. A name held by another key is\n" +
				"refused (first come, first served) until its registration expires.",
			Flags: oneShotFlags(
				&cli.StringFlag{Name: "key", Usage: "identity key file of the owner (keygen --author --out FILE)", Required: true},
				&cli.StringFlag{Name: "target", Usage: "the hidden service the name points at (ADDRESS.dark)"},
				&cli.StringFlag{Name: "site", Usage: "the site the name points at (its .dark address)"},
				&cli.StringFlag{Name: "module", Usage: "a module hash (64 hex digits) the name points at"},
				&cli.StringFlag{Name: "text", Usage: "a text entry (UTF-8, at most 255 bytes)"},
				&cli.DurationFlag{Name: "ttl", Usage: "how long the registration lasts unless renewed", Value: names.MaxTTL},
				&cli.DurationFlag{Name: "publish-timeout", Usage: "the proof of work and storing in the DHT at most", Value: defaultOpTimeout},
			),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: darkmatter name register NAME --key FILE (--target ADDRESS.dark | --text STR | --module HASH | --site ADDRESS)")
				}
				name, err := names.CanonicalName(c.Args().First())
				if err != nil {
					return err
				}
				entries, err := nameEntries(c)
				if err != nil {
					return err
				}
				owner, err := keys.LoadIdentityFile(c.String("key"))
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				if ttl := c.Duration("ttl"); ttl < time.Second || ttl > names.MaxTTL {
					return fmt.Errorf("--ttl must be in 1s..%v", names.MaxTTL)
				}
				return withClient(c, func(ctx context.Context, n *overlay.Node) error {
					ctx, cancel := context.WithTimeout(ctx, c.Duration("publish-timeout"))
					defer cancel()
					rec, err := n.RegisterName(ctx, name, owner, c.Duration("ttl"), entries...)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.App.Writer, "registered %s until %s\n", rec.Name, rec.Expires.UTC().Format(time.RFC3339))
					return err
				})
			},
		}, {
			Name:      "resolve",
			Usage:     "resolve a name and print its entries, one per line",
			ArgsUsage: "NAME",
			Description: "Looks NAME up on its DHT replicas (the owner most replicas hold wins) and prints its\n" +
				"entries: `address X.dark`, `site X.dark`, `module HASH`, `text ...`. It exits non-zero\n" +
				"if the name is not registered.",
			Flags: oneShotFlags(
				&cli.DurationFlag{Name: "timeout", Usage: "the lookup at most", Value: defaultOpTimeout},
			),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: darkmatter name resolve NAME")
				}
				name, err := names.CanonicalName(c.Args().First())
				if err != nil {
					return err
				}
				return withClient(c, func(ctx context.Context, n *overlay.Node) error {
					ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
					defer cancel()
					rec, err := n.ResolveName(ctx, name)
					if err != nil {
						return err
					}
					return printEntries(c.App.Writer, rec.Entries)
				})
			},
		}},
	}
}

// nameEntries returns the entries the flags of name register give.
func nameEntries(c *cli.Context) ([]names.Entry, error) {
	var out []names.Entry
	if s := c.String("target"); s != "" {
		k, err := keys.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		out = append(out, names.AddressEntry(k))
	}
	if s := c.String("site"); s != "" {
		k, err := sites.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("--site: %w", err)
		}
		out = append(out, names.SiteEntry(k))
	}
	if s := c.String("module"); s != "" {
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("--module: %w", err)
		}
		out = append(out, names.ModuleEntry(h))
	}
	if c.IsSet("text") {
		if len(c.String("text")) > 255 {
			return nil, errors.New("--text: at most 255 bytes")
		}
		out = append(out, names.TextEntry(c.String("text")))
	}
	if len(out) == 0 {
		return nil, errors.New("give at least one of --target, --site, --module and --text")
	}
	return out, nil
}

// printEntries writes a name's entries, one per line.
func printEntries(w io.Writer, es []names.Entry) error {
	for _, e := range es {
		var line string
		switch e.Type {
		case names.EntryAddress:
			a, _ := e.Address()
			line = "address " + a
		case names.EntrySite:
			line = "site " + keys.ServicePublicKey(e.Data).Address()
		case names.EntryModule:
			line = "module " + hex.EncodeToString(e.Data)
		case names.EntryText:
			line = fmt.Sprintf("text %q", e.Data)
		default:
			line = fmt.Sprintf("entry-%d %s", e.Type, hex.EncodeToString(e.Data))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
