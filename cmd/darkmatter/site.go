package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/apps/gateway"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

// Distributed sites (spec/sites.md) and the HTTP gateway (spec/gateway.md)
// from the command line.

func siteCommand() *cli.Command {
	return &cli.Command{
		Name:  "site",
		Usage: "publish a directory as a signed site, and host sites of the network",
		Subcommands: []*cli.Command{{
			Name:      "publish",
			Usage:     "sign a directory as a site and store it in the DHT",
			ArgsUsage: "DIR",
			Description: "Builds a signed manifest of every file under DIR (names starting with '.' are skipped),\n" +
				"stores the files and the manifest as blobs and the site's pointer record in the DHT, and\n" +
				"prints the site's address. The key (keygen --author --out FILE) is the site's: publishing\n" +
				"again with it replaces the site everywhere. --handler [PREFIX=]HASH[:FUNCTION] lets a\n" +
				"WebAssembly module generate the pages under PREFIX (default \"/\": every path that is not\n" +
				"a file; FUNCTION defaults to \"page\"). Hosts (site host) keep and serve the site.",
			Flags: oneShotFlags(
				&cli.StringFlag{Name: "key", Usage: "identity key file of the site (keygen --author --out FILE)", Required: true},
				&cli.StringSliceFlag{Name: "handler", Usage: "[PREFIX=]MODULE_HASH[:FUNCTION]: a WebAssembly handler (repeatable)"},
				&cli.DurationFlag{Name: "publish-timeout", Usage: "storing in the DHT at most", Value: defaultOpTimeout},
			),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: darkmatter site publish DIR --key FILE [--handler [PREFIX=]HASH[:FUNCTION]]")
				}
				key, err := keys.LoadIdentityFile(c.String("key"))
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				files, m, err := sites.BuildDir(c.Args().First())
				if err != nil {
					return err
				}
				if m.Handlers, err = parseHandlers(c.StringSlice("handler")); err != nil {
					return err
				}
				now := time.Now()
				m.Site, m.Seq, m.Created = key.Public(), uint64(now.UnixMilli()), now.Unix()
				return withClient(c, func(ctx context.Context, n *overlay.Node) error {
					ctx, cancel := context.WithTimeout(ctx, c.Duration("publish-timeout"))
					defer cancel()
					if _, err := n.PublishSite(ctx, key, files, m); err != nil {
						return err
					}
					_, err := fmt.Fprintf(c.App.Writer, "published %s (%d files, %d handlers, seq %d)\n",
						sites.Address(key.Public()), len(m.Files), len(m.Handlers), m.Seq)
					return err
				})
			},
		}, {
			Name:      "host",
			Usage:     "keep a copy of sites and serve them to the network",
			ArgsUsage: "SITE...",
			Description: "Runs a client node that takes each SITE (a site's .dark address), verified file by file,\n" +
				"into --data/sites, serves it on a hidden service of its own (its key is kept in --data),\n" +
				"tells the DHT that it hosts the site, and takes every newer manifest the site's owner\n" +
				"publishes. Several hosts of one site keep it up when some of them die; clients check every\n" +
				"file against the site's signature, so a host is trusted for availability only.",
			Flags: clientFlags(
				&cli.DurationFlag{Name: "check-interval", Usage: "how often to look for a newer manifest", Value: overlay.SiteCheckInterval},
			),
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("usage: darkmatter site host SITE... --bootstrap ID@HOST:PORT --data DIR")
				}
				var list []keys.IdentityPublicKey
				for _, a := range c.Args().Slice() {
					k, err := sites.ParseAddress(a)
					if err != nil {
						return fmt.Errorf("site %d: %w", len(list)+1, err)
					}
					list = append(list, k)
				}
				setup := func(cfg *overlay.Config) error {
					if cfg.StateDir == "" {
						return errors.New("site host needs --data, where the sites are kept")
					}
					cfg.SiteCheckInterval = c.Duration("check-interval")
					return nil
				}
				return runClient(c, "site host", setup, func(ctx context.Context, n *overlay.Node, _ safelog.Logf) (func(), error) {
					for i, k := range list {
						start := time.Now()
						hctx, cancel := context.WithTimeout(ctx, defaultOpTimeout)
						err := n.HostSite(hctx, k)
						cancel()
						if err != nil {
							return nil, fmt.Errorf("site %d: %w", i+1, err)
						}
						say("hosting %s in %v", sites.Address(k), time.Since(start).Round(time.Millisecond))
					}
					return nil, nil
				})
			},
		}},
	}
}

// parseHandlers parses --handler values: [PREFIX=]HASH[:FUNCTION].
func parseHandlers(vals []string) ([]sites.Handler, error) {
	var out []sites.Handler
	for _, v := range vals {
		prefix, rest, ok := strings.Cut(v, "=")
		if !ok {
			prefix, rest = "/", v
		}
		hash, fn, ok := strings.Cut(rest, ":")
		if !ok {
			fn = "page"
		}
		h, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("--handler %q: %w", v, err)
		}
		if err := manifest.CheckFunctionName(fn); err != nil {
			return nil, fmt.Errorf("--handler %q: %w", v, err)
		}
		out = append(out, sites.Handler{Prefix: prefix, Module: h, Function: fn})
	}
	slices.SortFunc(out, func(a, b sites.Handler) int { return strings.Compare(a.Prefix, b.Prefix) })
	return out, nil
}

func gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "serve the network's sites over plain HTTP to browsers without darkmatter",
		Description: "Runs a client node and an HTTP server on --listen. A site SITE.dark (a name or a .dark\n" +
			"address) is served at http://SITE.DOMAIN/, each site in its own browser origin;\n" +
			"http://DOMAIN/SITE.dark/PATH redirects there. DOMAIN is --domain (default: the --listen\n" +
			"address with the host \"localhost\", which browsers resolve with all its subdomains to\n" +
			"this machine). It serves only sites of the network: never the internet, never another\n" +
			"host. Visitors are not anonymous to the gateway's operator. --deny refuses a site.",
		Flags: clientFlags(
			&cli.StringSliceFlag{Name: "listen", Usage: "HOST:PORT the gateway serves HTTP on (repeatable; default 127.0.0.1:8088)"},
			&cli.StringFlag{Name: "domain", Usage: "the gateway's HOST[:PORT] as browsers see it (default localhost:PORT)"},
			&cli.StringSliceFlag{Name: "deny", Usage: "a name or .dark address the gateway refuses (repeatable)"},
			&cli.Float64Flag{Name: "rate", Usage: "requests per second per visitor", Value: gateway.DefaultRate},
			&cli.IntFlag{Name: "burst", Usage: "requests a visitor may make at once", Value: gateway.DefaultBurst},
		),
		Action: func(c *cli.Context) error {
			addrs := c.StringSlice("listen")
			if len(addrs) == 0 {
				addrs = []string{"127.0.0.1:8088"}
			}
			var lns []net.Listener
			defer func() {
				for _, ln := range lns {
					ln.Close()
				}
			}()
			for _, a := range addrs {
				ln, err := net.Listen("tcp", a)
				if err != nil {
					return fmt.Errorf("--listen: %w", err)
				}
				lns = append(lns, ln)
			}
			domain := c.String("domain")
			if domain == "" {
				_, port, _ := net.SplitHostPort(lns[0].Addr().String())
				domain = net.JoinHostPort("localhost", port)
			}
			return runClient(c, "gateway", nil, func(_ context.Context, n *overlay.Node, info safelog.Logf) (func(), error) {
				srv, gw, err := serveGateway(lns[0], n, gateway.Config{Domain: domain, Deny: c.StringSlice("deny"),
					Rate: c.Float64("rate"), Burst: c.Int("burst"), Logf: info})
				if err != nil {
					return nil, err
				}
				for _, ln := range lns[1:] {
					go srv.Serve(ln)
				}
				say("gateway on http://%s/ (serving http://SITE.%s/)", domain, domain)
				return func() { srv.Close(); gw.Close() }, nil
			})
		},
	}
}

// serveGateway serves a gateway of node n on ln until the server is
// closed.
func serveGateway(ln net.Listener, n *overlay.Node, cfg gateway.Config) (*http.Server, *gateway.Gateway, error) {
	cfg.Dial = gatewayDial(n)
	gw, err := gateway.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	return srv, gw, nil
}

// gatewayDial is the node's Dial with "not found" answers (an unknown
// name, site or hidden service) marked for the gateway's error page.
func gatewayDial(n *overlay.Node) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := n.Dial(ctx, network, addr)
		if err != nil && (errors.Is(err, specialname.ErrNameNotFound) || errors.Is(err, sites.ErrNotFound) || errors.Is(err, hserr.DescriptorNotFound)) {
			return nil, fmt.Errorf("%w: %w", gateway.ErrSiteNotFound, err)
		}
		return c, err
	}
}
