package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/darkmatter/darkmatter/nat"
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
		}},
	}
}
