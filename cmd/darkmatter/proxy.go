package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/httpproxy"
	"github.com/darkmatter/darkmatter/apps/socks"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

func proxyCommand() *cli.Command {
	return &cli.Command{
		Name:  "proxy",
		Usage: "run a client with a local SOCKS5 and HTTP proxy",
		Flags: clientFlags(
			&cli.StringFlag{Name: "socks", Usage: "SOCKS5 listen address (empty: off)", Value: "127.0.0.1:1080"},
			&cli.StringFlag{Name: "http", Usage: "HTTP proxy listen address (empty: off)", Value: "127.0.0.1:8118"},
			&cli.StringSliceFlag{Name: "client-key", Usage: "client authorisation key file (keygen --client) for hidden services that demand one (repeatable)"},
		),
		Action: func(c *cli.Context) error {
			setup := func(cfg *overlay.Config) error {
				for _, f := range c.StringSlice("client-key") {
					k, err := keys.LoadClientAuthFile(f)
					if err != nil {
						return fmt.Errorf("--client-key: %w", err)
					}
					cfg.ClientAuthKeys = append(cfg.ClientAuthKeys, k)
				}
				return nil
			}
			return runClient(c, "proxy", setup, func(_ context.Context, n *overlay.Node, info safelog.Logf) (func(), error) {
				fe, err := startFrontends(n, c.String("socks"), c.String("http"), info)
				if err != nil {
					return nil, err
				}
				say("darkmatter proxy ready: %s", fe)
				return func() { fe.Close() }, nil
			})
		},
	}
}

// clientFlags are the flags of a command that runs a client node until
// interrupted: the common ones, --bootstrap, extra, and those of
// discovery and metrics.
func clientFlags(extra ...cli.Flag) []cli.Flag {
	fs := append(commonFlags(), &cli.StringSliceFlag{Name: "bootstrap", Usage: "relay ID@HOST:PORT (repeatable)", Required: true})
	fs = append(fs, extra...)
	return append(append(fs, discoveryFlags(false)...), metricsFlags()...)
}

// runClient runs a client node until the command is interrupted: it
// builds the node's Config from the flags (then setup, if set, adjusts
// it), starts the node with its operator view, and calls serve, which
// starts the command's own work and returns how to stop it.
func runClient(c *cli.Context, role string, setup func(*overlay.Config) error,
	serve func(ctx context.Context, n *overlay.Node, info safelog.Logf) (stop func(), err error)) error {
	info, debug, err := logger(c)
	if err != nil {
		return err
	}
	bs, err := parseBootstraps(c.StringSlice("bootstrap"))
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	prog := &progress{info: info}
	cfg := overlay.Config{Network: c.String("network"), Bootstrap: bs, Progress: prog.report, Logf: debug}
	if err := applyDiscovery(c, &cfg); err != nil {
		return err
	}
	if setup != nil {
		if err := setup(&cfg); err != nil {
			return err
		}
	}
	n, stopNode, err := startClientNode(ctx, c, role, cfg, prog)
	if err != nil {
		return err
	}
	defer stopNode()
	stopServe, err := serve(ctx, n, info)
	if err != nil {
		return err
	}
	if stopServe != nil {
		defer stopServe()
	}
	<-ctx.Done()
	info.Printf("shutting down")
	return nil
}

// frontends are the SOCKS5 and HTTP proxy servers of a client node.
type frontends struct {
	socksAddr, httpAddr string
	socks               *socks.Server
	http                *httpproxy.Server
	wg                  sync.WaitGroup
}

func (f *frontends) String() string {
	s := ""
	if f.socksAddr != "" {
		s += "SOCKS5 " + f.socksAddr
	}
	if f.httpAddr != "" {
		if s != "" {
			s += ", "
		}
		s += "HTTP " + f.httpAddr
	}
	return s
}

func startFrontends(n *overlay.Node, socksAddr, httpAddr string, logf safelog.Logf) (*frontends, error) {
	f := &frontends{}
	if socksAddr != "" {
		ln, err := net.Listen("tcp", socksAddr)
		if err != nil {
			return nil, fmt.Errorf("socks listener: %w", err)
		}
		f.socksAddr = ln.Addr().String()
		f.socks = &socks.Server{Dialer: n, Logf: logf, DialTimeout: 2 * time.Minute}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.socks.Serve(ln) }()
	}
	if httpAddr != "" {
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("http listener: %w", err)
		}
		f.httpAddr = ln.Addr().String()
		f.http = &httpproxy.Server{Dialer: n, Logf: logf}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.http.Serve(ln) }()
	}
	if f.socks == nil && f.http == nil {
		return nil, errors.New("both --socks and --http are off")
	}
	return f, nil
}

func (f *frontends) Close() error {
	if f.socks != nil {
		f.socks.Close()
	}
	if f.http != nil {
		f.http.Close()
	}
	f.wg.Wait()
	return nil
}

// startClientNode runs a client node (proxy, publish): the node, its
// operator view (control socket, metrics), its bootstrap and a first
// circuit. stop undoes it all.
func startClientNode(ctx context.Context, c *cli.Context, role string, cfg overlay.Config, prog *progress) (n *overlay.Node, stop func(), err error) {
	if n, err = overlay.New(cfg); err != nil {
		return nil, nil, err
	}
	stopView, err := startOperatorView(c, role, n, prog)
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	stop = func() { stopView(); n.Close() }
	if err = bootNode(ctx, n); err != nil {
		stop()
		return nil, nil, err
	}
	return n, stop, nil
}

// bootNode starts a client node and waits until it can build circuits.
func bootNode(ctx context.Context, n *overlay.Node) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	return n.Ready(ctx)
}
