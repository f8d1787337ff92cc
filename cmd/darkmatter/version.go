package main

import (
	"fmt"
	"io"

	"github.com/darkmatter/darkmatter/overlay"
	"github.com/urfave/cli/v2"
)

// version is the release this binary was built from, set at link time:
//
//	go build -ldflags "-X main.version=v0.3.0" ./cmd/darkmatter
var version = "dev"

// printVersion writes the version and the subprotocol versions this build
// speaks (what an exit relay signs in its descriptor, spec/protover.md).
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "darkmatter %s\n", version)
	fmt.Fprintf(w, "protocols: %s\n", overlay.Protocols(true))
}

func init() {
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
}
