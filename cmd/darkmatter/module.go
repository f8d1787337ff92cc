package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/tetratelabs/wazero"
	"github.com/urfave/cli/v2"
)

func moduleCommand() *cli.Command {
	return &cli.Command{
		Name:  "module",
		Usage: "publish WebAssembly modules for delegated calls",
		Subcommands: []*cli.Command{{
			Name:      "publish",
			Usage:     "sign a module's manifest with an author key, store both in the DHT and print the module's hash",
			ArgsUsage: "FILE.wasm",
			Description: "The manifest lists the functions callers may run (--function, repeatable; by default every\n" +
				"exported function of type () -> ()), the permissions the module needs (--subcalls to call\n" +
				"other modules, --sources to read blobs) and the limits it asks for; an executor runs it\n" +
				"with the smaller of those and its own. --key is an author key (keygen --author --out FILE).\n" +
				"The module and its manifest live in the DHT for a day (publish again to renew them).",
			Flags: oneShotFlags(
				&cli.StringFlag{Name: "key", Usage: "author key file (keygen --author --out FILE)", Required: true},
				&cli.StringSliceFlag{Name: "function", Usage: "an exported function callers may run (repeatable; default: every export of type () -> ())"},
				&cli.BoolFlag{Name: "subcalls", Usage: "the module calls other modules"},
				&cli.BoolFlag{Name: "sources", Usage: "the module reads data sources (blobs)"},
				&cli.DurationFlag{Name: "timeout", Usage: "wall time one call of the module may take", Value: 10 * time.Second},
				&cli.IntFlag{Name: "memory-mb", Usage: "MiB of memory the module may use", Value: 16},
				&cli.IntFlag{Name: "max-output", Usage: "bytes of output one call may write", Value: 1 << 20},
				&cli.IntFlag{Name: "max-depth", Usage: "with --subcalls: levels of sub-calls below a call", Value: 4},
				&cli.IntFlag{Name: "max-fanout", Usage: "with --subcalls: sub-calls one call may make", Value: 16},
				&cli.DurationFlag{Name: "publish-timeout", Usage: "storing in the DHT at most", Value: defaultOpTimeout},
			),
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: darkmatter module publish FILE.wasm --key FILE")
				}
				code, err := os.ReadFile(c.Args().First())
				if err != nil {
					return err
				}
				if len(code) == 0 || len(code) > manifest.MaxModuleSize {
					return fmt.Errorf("%s: %d bytes, want 1..%d", c.Args().First(), len(code), manifest.MaxModuleSize)
				}
				author, err := keys.LoadIdentityFile(c.String("key"))
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				m, err := moduleManifest(c, code)
				if err != nil {
					return err
				}
				return withClient(c, func(ctx context.Context, n *overlay.Node) error {
					ctx, cancel := context.WithTimeout(ctx, c.Duration("publish-timeout"))
					defer cancel()
					if _, err := n.PublishModule(ctx, code, m, author); err != nil {
						return err
					}
					_, err := fmt.Fprintln(c.App.Writer, hex.EncodeToString(m.ModuleHash[:]))
					return err
				})
			},
		}},
	}
}

// moduleManifest builds the manifest of module publish from its flags,
// checked by signing it with a throwaway key.
func moduleManifest(c *cli.Context, code []byte) (*manifest.Manifest, error) {
	fns := c.StringSlice("function")
	exports, err := moduleExports(c.Context, code)
	if err != nil {
		return nil, fmt.Errorf("%s: not a WebAssembly module: %w", c.Args().First(), err)
	}
	if len(fns) == 0 {
		if fns = exports; len(fns) == 0 {
			return nil, errors.New("the module exports no function of type () -> ()")
		}
		if len(fns) > manifest.MaxFunctions {
			return nil, fmt.Errorf("the module exports %d functions; list at most %d with --function", len(fns), manifest.MaxFunctions)
		}
	}
	for _, f := range fns {
		if !slices.Contains(exports, f) {
			return nil, fmt.Errorf("--function %s: the module exports no function %q of type () -> ()", f, f)
		}
	}
	mb, tmo := c.Int("memory-mb"), c.Duration("timeout")
	switch {
	case mb < 1 || mb > manifest.MaxMemoryPages/16:
		return nil, fmt.Errorf("--memory-mb must be in 1..%d", manifest.MaxMemoryPages/16)
	case tmo < time.Millisecond || tmo > manifest.MaxTimeoutMS*time.Millisecond:
		return nil, fmt.Errorf("--timeout must be in 1ms..%v", manifest.MaxTimeoutMS*time.Millisecond)
	case c.Int("max-output") < 1 || c.Int("max-output") > manifest.MaxOutputLimit:
		return nil, fmt.Errorf("--max-output must be in 1..%d", manifest.MaxOutputLimit)
	}
	m := &manifest.Manifest{Functions: fns, Created: time.Now().Unix(), Limits: manifest.Limits{
		MemoryPages: uint32(mb) * 16, TimeoutMS: uint32(tmo / time.Millisecond), MaxOutput: uint32(c.Int("max-output"))}}
	if c.Bool("sources") {
		m.Permissions |= manifest.PermDataSources
	}
	if c.Bool("subcalls") {
		d, f := c.Int("max-depth"), c.Int("max-fanout")
		if d < 1 || d > manifest.MaxDepth || f < 1 || f > manifest.MaxFanOut {
			return nil, fmt.Errorf("--max-depth must be in 1..%d and --max-fanout in 1..%d", manifest.MaxDepth, manifest.MaxFanOut)
		}
		m.Permissions |= manifest.PermSubCalls
		m.Limits.MaxDepth, m.Limits.MaxFanOut = uint8(d), uint8(f)
	} else if c.IsSet("max-depth") || c.IsSet("max-fanout") {
		return nil, errors.New("--max-depth and --max-fanout need --subcalls")
	}
	m.ModuleHash, m.ModuleSize = manifest.ModuleHash(code), uint32(len(code))
	check, err := keys.GenerateIdentity(nil)
	if err != nil {
		return nil, err
	}
	if _, err := m.Sign(c.String("network"), check); err != nil {
		return nil, err
	}
	return m, nil
}

// moduleExports compiles code (with wazero's interpreter: it only reads
// the exports) and returns its exported functions of type () -> (),
// without the WASI entry points.
func moduleExports(ctx context.Context, code []byte) ([]string, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, d := range cm.ExportedFunctions() {
		if name == "_initialize" || name == "_start" || len(d.ParamTypes()) > 0 || len(d.ResultTypes()) > 0 {
			continue
		}
		if manifest.CheckFunctionName(name) == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
