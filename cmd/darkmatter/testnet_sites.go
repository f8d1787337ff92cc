package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/prebuilt"
	"github.com/darkmatter/darkmatter/apps/compute/executor"
	"github.com/darkmatter/darkmatter/apps/compute/manifest"
	"github.com/darkmatter/darkmatter/apps/gateway"
	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay"
)

// The testnet's demo site: the files of demosite/, signed by
// DATA/demo-site.key, with the page /generated made by the prebuilt site
// module, hosted by two nodes, named "demo", and served to browsers by a
// gateway.

//go:embed demosite
var demoSiteFS embed.FS

// demoSiteName is the name the testnet registers for its demo site.
const demoSiteName = "demo"

// demoSiteHosts is how many nodes host the demo site.
const demoSiteHosts = 2

// demoSite is the testnet's published demo site.
type demoSite struct {
	Site    keys.IdentityPublicKey
	Name    string
	Module  [32]byte // the handler's module
	Hosts   []*overlay.Node
	gateway *http.Server
	gw      *gateway.Gateway
	// GatewayDomain is the gateway's HOST:PORT ("" without a gateway).
	GatewayDomain string
}

// loadOrCreateIdentity loads the identity key in file, creating it on
// first use so that what it signs keeps its address across restarts.
func loadOrCreateIdentity(file string) (*keys.IdentityPrivateKey, error) {
	k, err := keys.LoadIdentityFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if k, err = keys.GenerateIdentity(nil); err == nil {
			if err = os.MkdirAll(filepath.Dir(file), 0o700); err == nil {
				err = createKeyFile(file, keys.EncodeKeyFile(k))
			}
		}
	}
	return k, err
}

// publishSite publishes the demo site from the testnet's client, starts
// its hosts (each keeping the site under dataDir/site-host-N), registers
// its name, and starts a gateway on gatewayAddr ("" for none).
func (tn *testnet) publishSite(ctx context.Context, dataDir, gatewayAddr string) (*demoSite, error) {
	key, err := loadOrCreateIdentity(filepath.Join(dataDir, "demo-site.key"))
	if err != nil {
		return nil, err
	}
	author, err := loadOrCreateIdentity(filepath.Join(dataDir, "demo-author.key"))
	if err != nil {
		return nil, err
	}
	ds := &demoSite{Site: key.Public(), Name: demoSiteName}
	limits := manifest.Limits{MemoryPages: executor.DefaultMemoryPages, TimeoutMS: 60000, MaxOutput: 1 << 20}
	mm := &manifest.Manifest{Functions: []string{"page"}, Permissions: manifest.PermDataSources, Limits: limits, Created: demoCreated}
	if _, err := tn.Client.PublishModule(ctx, prebuilt.Site(), mm, author); err != nil {
		return nil, fmt.Errorf("site module: %w", err)
	}
	ds.Module = mm.ModuleHash
	sub, err := fs.Sub(demoSiteFS, "demosite")
	if err != nil {
		return nil, err
	}
	files, m, err := sites.Build(sub)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	m.Site, m.Seq, m.Created = key.Public(), uint64(now.UnixMilli()), now.Unix()
	m.Handlers = []sites.Handler{{Prefix: "/generated", Module: ds.Module, Function: "page"}}
	if _, err := tn.Client.PublishSite(ctx, key, files, m); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	for i := range demoSiteHosts {
		h, err := tn.newServiceNode(ctx, filepath.Join(dataDir, fmt.Sprintf("site-host-%d", i+1)))
		if err != nil {
			ds.Close()
			return nil, err
		}
		ds.Hosts = append(ds.Hosts, h)
		if err := h.HostSite(ctx, ds.Site); err != nil {
			ds.Close()
			return nil, fmt.Errorf("host %d: %w", i+1, err)
		}
	}
	if _, err := tn.Client.RegisterName(ctx, ds.Name, key, 0, names.SiteEntry(ds.Site)); err != nil {
		ds.Close()
		return nil, fmt.Errorf("name: %w", err)
	}
	if gatewayAddr != "" {
		ln, err := net.Listen("tcp", gatewayAddr)
		if err != nil {
			ds.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ds.GatewayDomain = net.JoinHostPort("localhost", port)
		if ds.gateway, ds.gw, err = serveGateway(ln, tn.Client, gateway.Config{Domain: ds.GatewayDomain, Logf: tn.debug}); err != nil {
			ln.Close()
			ds.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	return ds, nil
}

// newServiceNode starts a client node of the testnet that keeps its state
// (guards, a host's key and sites) in dir.
func (tn *testnet) newServiceNode(ctx context.Context, dir string) (*overlay.Node, error) {
	n, err := overlay.New(overlay.Config{
		Network:         tn.network,
		Bootstrap:       tn.boot[:1],
		AllowSameSubnet: true,
		GuardMinAge:     -1,
		DHTMinAge:       -1,
		NameDifficulty:  testnetNameDifficulty,
		StateDir:        dir,
		Logf:            tn.debug,
	})
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close stops the gateway and the hosts.
func (ds *demoSite) Close() {
	if ds.gateway != nil {
		ds.gateway.Close()
		ds.gw.Close()
	}
	for _, h := range ds.Hosts {
		h.Close()
	}
}

// lines are what the testnet prints about the demo site.
func (ds *demoSite) lines(httpProxy string) []string {
	addr := sites.Address(ds.Site)
	out := []string{
		fmt.Sprintf("demo site on http://%s.dark/ (hosted on %d nodes) = http://%s/ ; try: curl --proxy http://%s http://%s.dark/generated",
			ds.Name, len(ds.Hosts), addr, httpProxy, ds.Name),
	}
	if ds.GatewayDomain != "" {
		out = append(out, fmt.Sprintf("demo site through the gateway, no software needed: http://%s.%s/ ; try: curl http://%s.%s/generated",
			ds.Name, ds.GatewayDomain, ds.Name, ds.GatewayDomain))
	}
	return out
}
