package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/urfave/cli/v2"
)

func main() {
	app := newApp()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "darkmatter:", err)
		os.Exit(1)
	}
}

// newApp is the command line: every command, and --version. Every flag of
// every command can also be set by an environment variable or a config
// file (configurable, config.go).
func newApp() *cli.App {
	cmds := []*cli.Command{
		testnetCommand(),
		relayCommand(),
		proxyCommand(),
		keygenCommand(),
		publishCommand(),
		moduleCommand(),
		blobCommand(),
		callCommand(),
		nameCommand(),
		siteCommand(),
		gatewayCommand(),
		natCommand(),
		benchCommand(),
		statusCommand(),
		simCommand(),
	}
	for _, c := range cmds {
		configurable(c)
	}
	return &cli.App{
		Name:    "darkmatter",
		Usage:   "an onion-routed anonymous overlay network",
		Version: version,
		Description: "Every flag of a command can also be given in the environment as " + envPrefix + "<FLAG>\n" +
			"(upper case, dashes as underscores: --max-links is " + envName("max-links") + ") or in a TOML\n" +
			"config file (--config FILE, or DATA/" + configFileName + " when --data is given): keys are the\n" +
			"flag names, and a table named for a command ([relay], [module-publish]) overrides the top\n" +
			"level for it.\n" +
			"Precedence: command line > environment > config file > default.\n" +
			"--print-config prints a command's effective configuration as a config file.",
		Commands: cmds,
	}
}

// commonFlags are accepted by every command.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "data directory", Value: defaultDataDir()},
		&cli.StringFlag{Name: "network", Usage: "network name; nodes of other networks refuse to talk", Value: "darkmatter"},
		&cli.StringFlag{Name: "log-level", Usage: "quiet, info or debug", Value: "info"},
		&cli.BoolFlag{Name: "unsafe-logging", Usage: "log addresses and keys in clear (debugging only)"},
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "darkmatter")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "darkmatter")
	}
	return "darkmatter-data"
}

// logger builds the info and debug loggers from --log-level.
func logger(c *cli.Context) (info, debug safelog.Logf, err error) {
	safelog.SetUnsafeLogging(c.Bool("unsafe-logging"))
	out := safelog.Logf(say)
	switch c.String("log-level") {
	case "quiet":
		return nil, nil, nil
	case "info":
		return out, nil, nil
	case "debug":
		return out, out, nil
	}
	return nil, nil, fmt.Errorf("--log-level must be quiet, info or debug")
}

// say prints a line the user needs whatever the log level (ready lines,
// bootstrap strings), timestamped like the logs, on standard error.
func say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), strings.TrimRight(msg, "\n"))
}

func parseBootstraps(ss []string) ([]descriptor.Bootstrap, error) {
	var out []descriptor.Bootstrap
	for _, s := range ss {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			b, err := descriptor.ParseBootstrap(f)
			if err != nil {
				return nil, fmt.Errorf("--bootstrap %q: %w", f, err)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
