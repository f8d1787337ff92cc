package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/darkmatter/darkmatter/nat"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/urfave/cli/v2"
)

// NAT discovery from the command line (spec/nat.md).

func natCommand() *cli.Command {
	return &cli.Command{
		Name:  "nat",
		Usage: "find out what NAT this machine is behind",
		Subcommands: []*cli.Command{{
			Name:  "probe",
			Usage: "ask STUN servers (relays answer STUN on their UDP port) for this machine's mapped address and classify the NAT",
			Description: "Sends STUN Binding requests from one UDP socket to every --stun server (relays answer on the\n" +
				"UDP port of their link address; --bootstrap ID@HOST:PORT may name them too) and prints the\n" +
				"address each saw, then the NAT's mapping and filtering behaviour (RFC 4787, RFC 5780):\n" +
				"endpoint-independent, address-dependent, address-and-port-dependent, or unknown when the\n" +
				"servers given cannot tell (mapping needs two servers on different IPs, or one with an\n" +
				"alternate address; filtering needs a server with alternates). It talks to no one else.",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "stun", Usage: "STUN server HOST:PORT, an IP literal (repeatable)"},
				&cli.StringSliceFlag{Name: "bootstrap", Usage: "relay ID@HOST:PORT whose UDP port answers STUN (repeatable)"},
				&cli.StringFlag{Name: "bind", Usage: "local UDP address to probe from", Value: ":0"},
				&cli.DurationFlag{Name: "timeout", Usage: "the whole probe at most", Value: 3 * time.Second},
			},
			Action: func(c *cli.Context) error {
				var servers []netip.AddrPort
				for _, s := range c.StringSlice("stun") {
					ap, err := netip.ParseAddrPort(s)
					if err != nil {
						return fmt.Errorf("--stun %q: want IP:PORT: %w", s, err)
					}
					servers = append(servers, ap)
				}
				bs, err := parseBootstraps(c.StringSlice("bootstrap"))
				if err != nil {
					return err
				}
				for _, b := range bs {
					a, err := transport.ParseAddr(b.Addr)
					if err != nil {
						return fmt.Errorf("--bootstrap: %w", err)
					}
					ap, err := netip.ParseAddrPort(a.HostPort)
					if err != nil {
						return fmt.Errorf("--bootstrap: the relay's address %q is not IP:PORT", b.Addr)
					}
					servers = append(servers, ap)
				}
				if len(servers) == 0 {
					return errors.New("usage: darkmatter nat probe --stun IP:PORT [--stun IP:PORT ...]")
				}
				pc, err := net.ListenPacket("udp", c.String("bind"))
				if err != nil {
					return fmt.Errorf("--bind: %w", err)
				}
				defer pc.Close()
				ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout")+time.Second)
				defer cancel()
				r, err := nat.Probe(ctx, pc, servers, nat.ProbeOptions{Timeout: c.Duration("timeout")})
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(c.App.Writer, r)
				return err
			},
		}, natConnectCommand()},
	}
}

// natConnectCommand links to one relay, through the relay it reserved at
// when it is behind NAT, and reports whether a hole punch moved the link
// to a direct QUIC path (spec/nat.md §8).
func natConnectCommand() *cli.Command {
	return &cli.Command{
		Name:      "connect",
		Usage:     "link to a relay (through its relay if it is behind NAT) and report whether a direct path was punched",
		ArgsUsage: "ID@ADDR",
		Description: "Starts a client, learns the network from --bootstrap, then opens a link to the relay named by\n" +
			"ID@ADDR (ADDR may be relay://HOST:PORT, the address a relay behind NAT prints). A relayed link\n" +
			"runs a hole punch when the relay listens on QUIC; the command prints how the link was made,\n" +
			"and the punched address when the link moved to a direct path. It opens no circuit.",
		Flags: append(commonFlags(),
			&cli.StringSliceFlag{Name: "bootstrap", Usage: "relay ID@HOST:PORT to learn the network from (repeatable)", Required: true},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for a punch to finish", Value: 20 * time.Second},
			&cli.BoolFlag{Name: "no-punch", Usage: "do not punch: keep the link relayed"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: darkmatter nat connect --bootstrap ID@HOST:PORT ID@ADDR")
			}
			targets, err := parseBootstraps(c.Args().Slice())
			if err != nil {
				return err
			}
			bs, err := parseBootstraps(c.StringSlice("bootstrap"))
			if err != nil {
				return err
			}
			_, debug, err := logger(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			n, err := overlay.New(overlay.Config{Network: c.String("network"), Bootstrap: bs, Preemptive: -1,
				DisablePunch: c.Bool("no-punch"), Logf: debug})
			if err != nil {
				return err
			}
			defer n.Close()
			if err := n.Start(ctx); err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, c.Duration("wait")+30*time.Second)
			defer cancel()
			r, err := n.Connect(wctx, targets[0], c.Duration("wait"))
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "link: %s in %v\n", r.Addr, r.Linked.Round(100*time.Microsecond))
			switch {
			case r.Direct != "":
				fmt.Fprintf(w, "direct: %s after %v (hole punched)\n", r.Direct, r.DirectAfter.Round(time.Millisecond))
			case r.Punched:
				fmt.Fprintln(w, "direct: none (the punch failed; the link stays relayed)")
			default:
				fmt.Fprintln(w, "direct: none (no punch on this link)")
			}
			return nil
		},
	}
}
