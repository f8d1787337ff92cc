package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// A relay told to listen on an unspecified address (every address) without
// --advertise refuses to start and says why: its descriptor would name an
// address nobody can reach. (Before, it started and published 0.0.0.0.)
func TestRelayUnspecifiedListenNeedsAdvertise(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		app := &cli.App{Commands: []*cli.Command{relayCommand()}, Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := app.RunContext(ctx, []string{"darkmatter", "relay", "--listen", listen, "--data", t.TempDir(), "--log-level", "quiet"})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "--advertise") {
			t.Errorf("--listen %s: %v, want an error naming --advertise", listen, err)
		}
	}
}
