package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/call"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

// Delegated calls from the command line (spec/compute.md): call, and the
// module and blob groups. Each runs a client node for one operation, with
// no control socket, and prints its answer on standard output.

// defaultOpTimeout bounds a DHT operation of module publish and blob.
const defaultOpTimeout = 2 * time.Minute

// oneShotFlags are the flags of a client command that does one thing and
// exits: the common ones (with --data defaulting to DATA/client, so that it
// never shares its state with a relay or proxy of the default directory),
// --bootstrap, extra, and discovery's.
func oneShotFlags(extra ...cli.Flag) []cli.Flag {
	fs := commonFlags()
	for _, f := range fs {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "data" {
			sf.Value = filepath.Join(defaultDataDir(), "client")
			sf.Usage = "data directory of this client's relay list and guards"
		}
	}
	fs = append(fs, &cli.StringSliceFlag{Name: "bootstrap", Usage: "relay ID@HOST:PORT (repeatable)", Required: true})
	fs = append(fs, extra...)
	return append(fs, discoveryFlags(false)...)
}

// withClient bootstraps a client node as proxy does, runs f with it and
// stops it. Bootstrap progress is shown at --log-level debug only: the
// command's answer is what it prints.
func withClient(c *cli.Context, f func(ctx context.Context, n *overlay.Node) error) error {
	_, debug, err := logger(c)
	if err != nil {
		return err
	}
	var cfg overlay.Config
	if err := applyDiscovery(c, &cfg); err != nil {
		return err
	}
	bs, err := parseBootstraps(c.StringSlice("bootstrap"))
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()
	prog := &progress{info: debug}
	cfg.Network, cfg.Bootstrap, cfg.Progress, cfg.Logf = c.String("network"), bs, prog.report, debug
	n, err := overlay.New(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := bootNode(ctx, n); err != nil {
		return err
	}
	return f(ctx, n)
}

func callCommand() *cli.Command {
	return &cli.Command{
		Name:      "call",
		Usage:     "run a function of a WebAssembly module on an executor, anonymously, and print its output",
		ArgsUsage: "MODULE_HASH FUNCTION",
		Description: "Sends the call over a circuit whose last hop is an executor (chosen by capacity, reliability\n" +
			"and whether it likely holds the module), which fetches the module from the DHT, checks its\n" +
			"hash and signed manifest, runs FUNCTION and returns the output, printed on standard output.\n" +
			"The executor never learns who calls, nor do the executors that run the module's sub-calls.\n" +
			"The input is --input, --input-file, or --input-blob (a blob of the DHT, blob put) and\n" +
			"empty without any. On failure it exits non-zero with the executor's reason.",
		Flags: oneShotFlags(
			&cli.StringFlag{Name: "input", Usage: "the input, a literal string"},
			&cli.StringFlag{Name: "input-file", Usage: "read the input from this file (- for standard input)"},
			&cli.StringFlag{Name: "input-blob", Usage: "SHA-256 (hex) of a DHT blob the executor fetches as the input"},
			&cli.StringFlag{Name: "module", Usage: "the module's .wasm file, offered to an executor that lacks it (its manifest must be in the DHT)"},
			&cli.DurationFlag{Name: "timeout", Usage: "the whole call at most, sub-calls included (the bootstrap not counted)", Value: overlay.DefaultCallTimeout},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return errors.New("usage: darkmatter call MODULE_HASH FUNCTION [--input STRING | --input-file FILE | --input-blob HASH]")
			}
			module, err := parseHash(c.Args().Get(0))
			if err != nil {
				return fmt.Errorf("module: %w", err)
			}
			function := c.Args().Get(1)
			if err := manifest.CheckFunctionName(function); err != nil {
				return err
			}
			opts := overlay.CallOptions{Timeout: c.Duration("timeout")}
			if opts.Timeout <= 0 {
				return errors.New("--timeout must be positive")
			}
			input, err := callInput(c, &opts)
			if err != nil {
				return err
			}
			if f := c.String("module"); f != "" {
				if opts.Code, err = os.ReadFile(f); err != nil {
					return fmt.Errorf("--module: %w", err)
				}
				if manifest.ModuleHash(opts.Code) != module {
					return fmt.Errorf("--module: %s is not module %x (its SHA-256 is %x)", f, module, manifest.ModuleHash(opts.Code))
				}
			}
			return withClient(c, func(ctx context.Context, n *overlay.Node) error {
				r, err := n.CallWith(ctx, module, function, input, opts)
				if err != nil {
					return err
				}
				return writeOutput(c.App.Writer, r.Output)
			})
		},
	}
}

// callInput returns the literal input of call, or sets opts.Input.
func callInput(c *cli.Context, opts *overlay.CallOptions) ([]byte, error) {
	set := 0
	for _, f := range []string{"input", "input-file", "input-blob"} {
		if c.IsSet(f) {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("give one of --input, --input-file and --input-blob")
	}
	switch {
	case c.IsSet("input-file"):
		b, err := readFileOrStdin(c.String("input-file"))
		if err != nil {
			return nil, fmt.Errorf("--input-file: %w", err)
		}
		return b, nil
	case c.IsSet("input-blob"):
		h, err := parseHash(c.String("input-blob"))
		if err != nil {
			return nil, fmt.Errorf("--input-blob: %w", err)
		}
		opts.Input = &call.Input{Kind: call.InputBlob, Blob: h}
		return nil, nil
	}
	return []byte(c.String("input")), nil
}

// maxInputFile bounds a file read as a call's input or a blob: the
// largest blob.
const maxInputFile = manifest.MaxBlobSize

func readFileOrStdin(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("larger than %d bytes", maxInputFile)
	}
	return b, nil
}

// writeOutput writes a call's output, and a newline after it on a
// terminal when it has none.
func writeOutput(w io.Writer, out []byte) error {
	if _, err := w.Write(out); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && len(out) > 0 && out[len(out)-1] != '\n' {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			_, err = io.WriteString(w, "\n")
			return err
		}
	}
	return nil
}

// parseHash parses a SHA-256 in hex.
func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%q is not a SHA-256 (64 hex digits)", s)
	}
	copy(h[:], b)
	return h, nil
}

func blobCommand() *cli.Command {
	return &cli.Command{
		Name:  "blob",
		Usage: "store content in the DHT by its hash, or fetch it",
		Subcommands: []*cli.Command{
			{
				Name:      "put",
				Usage:     "store a file in the DHT as a content-addressed blob and print its SHA-256",
				ArgsUsage: "FILE",
				Description: "The blob lives in the DHT for a day, or while a node republishes it; anyone with the\n" +
					"hash can fetch it (blob get, call --input-blob), and its hash proves the content.",
				Flags: oneShotFlags(
					&cli.DurationFlag{Name: "timeout", Usage: "storing at most", Value: defaultOpTimeout},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("usage: darkmatter blob put FILE (- for standard input)")
					}
					content, err := readFileOrStdin(c.Args().First())
					if err != nil {
						return err
					}
					return withClient(c, func(ctx context.Context, n *overlay.Node) error {
						ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
						defer cancel()
						h, err := n.PutBlob(ctx, content)
						if err != nil {
							return err
						}
						_, err = fmt.Fprintln(c.App.Writer, hex.EncodeToString(h[:]))
						return err
					})
				},
			},
			{
				Name:      "get",
				Usage:     "fetch a blob from the DHT by its SHA-256 and write it out",
				ArgsUsage: "HASH",
				Flags: oneShotFlags(
					&cli.StringFlag{Name: "out", Usage: "file to write (default: standard output)"},
					&cli.DurationFlag{Name: "timeout", Usage: "fetching at most", Value: defaultOpTimeout},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("usage: darkmatter blob get HASH [--out FILE]")
					}
					h, err := parseHash(c.Args().First())
					if err != nil {
						return err
					}
					return withClient(c, func(ctx context.Context, n *overlay.Node) error {
						ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
						defer cancel()
						b, err := n.GetBlob(ctx, h)
						if err != nil {
							return err
						}
						if out := c.String("out"); out != "" {
							return os.WriteFile(out, b, 0o644)
						}
						_, err = c.App.Writer.Write(b)
						return err
					})
				},
			},
		},
	}
}
