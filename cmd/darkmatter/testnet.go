package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/atomicfile"
	"github.com/darkmatter/darkmatter/internal/control"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/urfave/cli/v2"
)

func testnetCommand() *cli.Command {
	return &cli.Command{
		Name:  "testnet",
		Usage: "run an embedded local network: relays that are also executors, a client with SOCKS5/HTTP proxies, a demo web server and demo modules",
		Flags: append(append(commonFlags(),
			&cli.IntFlag{Name: "relays", Usage: "number of relays (at least 3)", Value: 5},
			&cli.StringFlag{Name: "socks", Usage: "SOCKS5 listen address", Value: "127.0.0.1:1080"},
			&cli.StringFlag{Name: "http", Usage: "HTTP proxy listen address", Value: "127.0.0.1:8118"},
			&cli.StringFlag{Name: "gateway", Usage: "listen address of the HTTP gateway to the demo site (\"\" for none)", Value: "127.0.0.1:8088"},
		), metricsFlags()...),
		Action: func(c *cli.Context) error {
			info, debug, err := logger(c)
			if err != nil {
				return err
			}
			if m := c.String("metrics"); m != "" {
				if err := checkMetricsAddr(m, c.Bool("metrics-allow-remote")); err != nil {
					return fmt.Errorf("--metrics: %w", err)
				}
			}
			ctx, stop := signalContext(c.Context)
			defer stop()
			// The control socket comes first, so that a second testnet on
			// this --data refuses before starting relays; it answers once
			// the client is up.
			var up atomic.Pointer[testnet]
			ctl, err := control.Listen(c.String("data"), func(req control.Request) (*control.Status, error) {
				tn := up.Load()
				if tn == nil {
					return nil, errors.New("the testnet is starting")
				}
				return nodeStatus("testnet client", tn.Client, tn.progress, req), nil
			})
			if err != nil {
				return err
			}
			defer ctl.Close()
			tn, err := startTestnet(ctx, testnetOptions{
				Network:   c.String("network"),
				Relays:    c.Int("relays"),
				Executors: true,
				CacheDir:  filepath.Join(c.String("data"), "wasm-cache"),
				Info:      info,
				Debug:     debug,
			})
			if err != nil {
				return err
			}
			defer tn.Close()
			up.Store(tn)
			ms, err := startMetricsFlag(c, tn.Client, tn.progress)
			if err != nil {
				return err
			}
			defer ms.Close()
			fe, err := startFrontends(tn.Client, c.String("socks"), c.String("http"), debug)
			if err != nil {
				return err
			}
			defer fe.Close()
			demo, err := startDemo()
			if err != nil {
				return err
			}
			defer demo.Close()
			hs, err := tn.publishDemo(ctx, filepath.Join(c.String("data"), "demo-service.key"), demo.Addr)
			if err != nil {
				return fmt.Errorf("demo hidden service: %w", err)
			}
			mods, err := tn.publishModules(ctx, filepath.Join(c.String("data"), "demo-author.key"))
			if err != nil {
				return fmt.Errorf("demo modules: %w", err)
			}
			site, err := tn.publishSite(ctx, c.String("data"), c.String("gateway"))
			if err != nil {
				return fmt.Errorf("demo site: %w", err)
			}
			defer site.Close()
			state := tn.state(fe)
			state.DemoService = "http://" + hs + "/"
			state.Modules = mods.hex()
			state.Modules["site"] = hex.EncodeToString(site.Module[:])
			state.Site = "http://" + sites.Address(site.Site) + "/"
			state.SiteName = site.Name + ".dark"
			if site.GatewayDomain != "" {
				state.Gateway = "http://" + site.GatewayDomain + "/"
			}
			if err := writeState(c.String("data"), state); err != nil {
				return err
			}
			say("demo web server on http://%s/ ; try: curl --socks5-hostname %s http://%s/", demo.Addr, fe.socksAddr, demo.Addr)
			say("demo hidden service on http://%s/ ; try: curl --socks5-hostname %s http://%s/", hs, fe.socksAddr, hs)
			for _, l := range mods.callLines(tn, filepath.Join(c.String("data"), "call-client")) {
				say("%s", l)
			}
			for _, l := range site.lines(fe.httpAddr) {
				say("%s", l)
			}
			info.Printf("wrote %s", filepath.Join(c.String("data"), "testnet.json"))
			say("darkmatter testnet ready: %d relays (%d exits, all executors), %s", len(tn.Relays), tn.Exits, fe)
			<-ctx.Done()
			info.Printf("shutting down")
			return nil
		},
	}
}

type testnetOptions struct {
	Network string
	Relays  int
	// Executors makes every relay an executor of delegated calls, with
	// DHT limits raised for a loopback network, compiling modules into
	// CacheDir (if set).
	Executors bool
	CacheDir  string
	Info      safelog.Logf
	Debug     safelog.Logf
}

// testnet is an embedded network on loopback TCP.
type testnet struct {
	Relays []*overlay.Node
	Exits  int
	Client *overlay.Node
	// progress is the client's bootstrap progress.
	progress *progress
	// Service is the node that publishes the demo hidden service.
	Service *overlay.Node
	demo    *forwarder
	svc     net.Listener
	network string
	boot    []descriptor.Bootstrap
	debug   safelog.Logf
}

// testnetGossip is the testnet relays' gossip interval.
const testnetGossip = 5 * time.Second

// testnetNameDifficulty is the testnet's name difficulty: a registration
// takes milliseconds (name register --name-difficulty 12 to match).
const testnetNameDifficulty = 12

// startTestnet starts the relays (the second half of them exits that also
// accept loopback targets) and a client bootstrapped from all of them.
func startTestnet(ctx context.Context, o testnetOptions) (*testnet, error) {
	if o.Relays < 3 {
		return nil, fmt.Errorf("--relays must be at least 3")
	}
	tn := &testnet{progress: &progress{info: o.Info}, network: o.Network, debug: o.Debug}
	var boot []descriptor.Bootstrap
	for i := 0; i < o.Relays; i++ {
		var exit *circuit.ExitConfig
		if i >= o.Relays/2 {
			exit = &circuit.ExitConfig{Policy: exitpolicy.AcceptAll()}
			tn.Exits++
		}
		cfg := overlay.Config{
			Network: o.Network,
			Listen:  []string{"127.0.0.1:0"},
			Exit:    exit,
			// The whole network is on loopback: relays extend to
			// 127.0.0.1, and per-address limits would count every node
			// as one peer.
			AllowPrivateAddrs:  true,
			AllowSameSubnet:    true,
			MaxLinksPerIP:      linkmgr.DefaultMaxLinks,
			MaxHandshakesPerIP: linkmgr.DefaultMaxHandshakes,
			// Every relay is new: no minimum age for guards or DHT
			// storage, and gossip often enough to see it work.
			GuardMinAge:    -1,
			DHTMinAge:      -1,
			Gossip:         testnetGossip,
			NameDifficulty: testnetNameDifficulty,
			Logf:           o.Debug,
		}
		if o.Executors {
			setTestnetExecutor(&cfg, o.CacheDir)
		}
		if len(boot) > 0 {
			cfg.Bootstrap = boot[:1]
		}
		n, err := overlay.New(cfg)
		if err != nil {
			tn.Close()
			return nil, err
		}
		tn.Relays = append(tn.Relays, n)
		if err := n.Start(ctx); err != nil {
			tn.Close()
			return nil, fmt.Errorf("relay %d: %w", i, err)
		}
		boot = append(boot, n.Bootstrap())
		tn.boot = boot
		o.Info.Printf("relay %d/%d up on %s", i+1, o.Relays, n.Addr())
	}
	client, err := overlay.New(overlay.Config{
		Network: o.Network,
		// The same discovery as any network: relays bootstrap from
		// relay 0 and gossip; the client synchronises with relay 0,
		// makes it its first guard, then with its other primary guards.
		Bootstrap:       boot[:1],
		AllowSameSubnet: true,
		GuardMinAge:     -1,
		DHTMinAge:       -1,
		NameDifficulty:  testnetNameDifficulty,
		Progress:        tn.progress.report,
		Logf:            o.Debug,
	})
	if err != nil {
		tn.Close()
		return nil, err
	}
	tn.Client = client
	if err := client.Start(ctx); err != nil {
		tn.Close()
		return nil, err
	}
	if err := client.Ready(ctx); err != nil {
		tn.Close()
		return nil, err
	}
	return tn, nil
}

func (tn *testnet) Close() {
	if tn.svc != nil {
		tn.svc.Close()
		tn.demo.wait()
	}
	if tn.Service != nil {
		tn.Service.Close()
	}
	if tn.Client != nil {
		tn.Client.Close()
	}
	for _, r := range tn.Relays {
		r.Close()
	}
}

// testnetState is DIR/testnet.json.
type testnetState struct {
	Network string         `json:"network"`
	Relays  []testnetRelay `json:"relays"`
	SOCKS   string         `json:"socks,omitempty"`
	// DemoService is the demo hidden service's URL.
	DemoService string `json:"demo_service,omitempty"`
	// Modules are the hashes of the demo modules, by name.
	Modules map[string]string `json:"modules,omitempty"`
	HTTP    string            `json:"http,omitempty"`
	// Site is the demo site's URL by its address, SiteName its name, and
	// Gateway the gateway's home page.
	Site     string `json:"site,omitempty"`
	SiteName string `json:"site_name,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
}

type testnetRelay struct {
	Bootstrap string `json:"bootstrap"`
	Exit      bool   `json:"exit"`
}

func (tn *testnet) state(fe *frontends) testnetState {
	s := testnetState{SOCKS: fe.socksAddr, HTTP: fe.httpAddr}
	for _, r := range tn.Relays {
		d := r.Descriptor()
		s.Network = d.Network
		s.Relays = append(s.Relays, testnetRelay{Bootstrap: r.Bootstrap().String(), Exit: d.Policy().IsExit()})
	}
	return s
}

func writeState(dir string, s testnetState) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "testnet.json"), append(b, '\n'), 0o600)
}

// demoServer is a tiny web server to browse through the testnet.
type demoServer struct {
	Addr string
	srv  *http.Server
}

func startDemo() (*demoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); strings.HasSuffix(r.Host, ".dark") || (err == nil && strings.HasSuffix(host, ".dark")) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, demoPage)
			return
		}
		fmt.Fprintf(w, "Hello from the darkmatter testnet demo server.\nYou came from %s (an exit relay, not you).\n", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	return &demoServer{Addr: ln.Addr().String(), srv: srv}, nil
}

func (d *demoServer) Close() error { return d.srv.Close() }

// demoPage is what the testnet's demo hidden service serves.
const demoPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>darkmatter demo hidden service</title></head>
<body>
<h1>Hello from a darkmatter hidden service</h1>
<p>This page came to you over two circuits that met at a rendezvous relay:
neither your client nor this service learned where the other is.</p>
</body></html>
`

// publishDemo starts a client node that publishes the demo hidden service
// under the key in keyFile (created on first use, so the address stays
// the same across restarts) and forwards its port 80 to target. It
// returns the service's .dark address.
func (tn *testnet) publishDemo(ctx context.Context, keyFile, target string) (string, error) {
	key, err := keys.LoadServiceFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		if key, err = keys.GenerateService(nil); err == nil {
			if err = os.MkdirAll(filepath.Dir(keyFile), 0o700); err == nil {
				err = createKeyFile(keyFile, keys.EncodeKeyFile(key))
			}
		}
	}
	if err != nil {
		return "", err
	}
	n, err := tn.newServiceNode(ctx, "")
	if err != nil {
		return "", err
	}
	tn.Service = n
	svc, err := n.ListenService(ctx, overlay.ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		return "", err
	}
	tn.svc = svc
	tn.demo = &forwarder{targets: map[uint16]string{80: target}, logf: tn.debug}
	tn.demo.wg.Go(func() { tn.demo.serve(svc) })
	return svc.Address(), nil
}
