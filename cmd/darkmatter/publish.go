package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:  "publish",
		Usage: "publish a local TCP service as a hidden service <key>.dark",
		Description: "Runs a client node that keeps introduction points for the service key, publishes its\n" +
			"encrypted descriptor in the DHT, and forwards every stream a client opens to --target.\n" +
			"Nobody learns where the service runs; the service learns nothing of its clients.\n" +
			"--port maps one virtual port to --target; --map PORT=HOST:PORT adds more.",
		Flags: clientFlags(
			&cli.StringFlag{Name: "key", Usage: "service key file (darkmatter keygen --out FILE)", Required: true},
			&cli.StringFlag{Name: "target", Usage: "local HOST:PORT that serves --port"},
			&cli.IntFlag{Name: "port", Usage: "virtual port of --target", Value: 80},
			&cli.StringSliceFlag{Name: "map", Usage: "PORT=HOST:PORT: another virtual port and its target (repeatable)"},
			&cli.StringFlag{Name: "client-auth", Usage: "file listing the client keys (keygen --client) that may connect, one per line; without it anyone with the address may"},
		),
		Action: func(c *cli.Context) error {
			key, err := keys.LoadServiceFile(c.String("key"))
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			ports, err := portMap(c.String("target"), c.Int("port"), c.StringSlice("map"))
			if err != nil {
				return err
			}
			var clients []keys.ClientAuthPublicKey
			if f := c.String("client-auth"); f != "" {
				if clients, err = loadClientAuthList(f); err != nil {
					return fmt.Errorf("--client-auth: %w", err)
				}
			}
			return runClient(c, "publish", nil, func(ctx context.Context, n *overlay.Node, info safelog.Logf) (func(), error) {
				start := time.Now()
				svc, err := n.ListenService(ctx, overlay.ServiceConfig{Key: key, Ports: sortedPorts(ports), ClientAuth: clients})
				if err != nil {
					return nil, err
				}
				fw := &forwarder{targets: ports, logf: info}
				fw.wg.Go(func() { fw.serve(svc) })
				say("hidden service published in %v: %s (ports %s%s)", time.Since(start).Round(time.Millisecond),
					svc.Address(), portList(ports), authNote(len(clients)))
				return func() { svc.Close(); fw.wait() }, nil // the streams end with the service
			})
		},
	}
}

func authNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d authorised client keys", n)
}

// portMap builds the virtual port → target map from --target/--port and
// --map entries.
func portMap(target string, port int, maps []string) (map[uint16]string, error) {
	out := make(map[uint16]string)
	add := func(p int, t string, what string) error {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%s: port %d out of 1..65535", what, p)
		}
		if _, _, err := net.SplitHostPort(t); err != nil {
			return fmt.Errorf("%s: target %q is not HOST:PORT", what, t)
		}
		if _, dup := out[uint16(p)]; dup {
			return fmt.Errorf("%s: port %d mapped twice", what, p)
		}
		out[uint16(p)] = t
		return nil
	}
	if target != "" {
		if err := add(port, target, "--target"); err != nil {
			return nil, err
		}
	}
	for _, m := range maps {
		ps, t, ok := strings.Cut(m, "=")
		p, err := strconv.Atoi(ps)
		if !ok || err != nil {
			return nil, fmt.Errorf("--map %q: want PORT=HOST:PORT", m)
		}
		if err := add(p, t, "--map"); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("nothing to publish: give --target (and --port) or --map")
	}
	return out, nil
}

func sortedPorts(m map[uint16]string) []uint16 {
	out := make([]uint16, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func portList(m map[uint16]string) string {
	var ss []string
	for _, p := range sortedPorts(m) {
		ss = append(ss, strconv.Itoa(int(p)))
	}
	return strings.Join(ss, ", ")
}

// loadClientAuthList reads client public keys, one per line; blank lines
// and lines starting with # are skipped.
func loadClientAuthList(path string) ([]keys.ClientAuthPublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []keys.ClientAuthPublicKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := keys.ParseClientAuthPublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no client key listed")
	}
	return out, sc.Err()
}

// forwarder copies each stream a client opens to the target of its port.
type forwarder struct {
	targets map[uint16]string
	logf    safelog.Logf
	wg      sync.WaitGroup
}

// portOf is what a hidden-service stream tells of its virtual port.
type portOf interface{ Port() uint16 }

func (f *forwarder) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.forward(c) })
	}
}

func (f *forwarder) wait() { f.wg.Wait() }

func (f *forwarder) forward(c net.Conn) {
	defer c.Close()
	p, ok := c.(portOf)
	if !ok {
		return
	}
	target, ok := f.targets[p.Port()]
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		f.logf.Printf("publish: port %d: target unreachable: %v", p.Port(), err)
		return
	}
	defer t.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(t, c)
		closeWrite(t)
		close(done)
	}()
	io.Copy(c, t)
	closeWrite(c)
	<-done
}

// closeWrite half-closes c when it can.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
