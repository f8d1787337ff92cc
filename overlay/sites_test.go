package overlay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/gateway"
	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// siteNet is a name network with client nodes that host sites.
type siteNet struct {
	*harness
	tb    testing.TB
	hosts []*Node
	next  int // the next client address
}

func newSiteNet(tb testing.TB, nRelays, nHosts int) *siteNet {
	tb.Helper()
	sn := &siteNet{harness: newNameNet(tb, nRelays, nil), tb: tb}
	for range nHosts {
		sn.hosts = append(sn.hosts, sn.newClient(func(c *Config) {
			c.SiteDir = tb.TempDir()
			c.SiteCheckInterval = 100 * time.Millisecond
		}))
	}
	return sn
}

// newClient starts another client node of the network, closed with the
// test.
func (sn *siteNet) newClient(opt func(*Config)) *Node {
	sn.tb.Helper()
	sn.next++
	ip := fmt.Sprintf("10.202.%d.1", sn.next)
	cfg := Config{Network: "test-mem", Bootstrap: []descriptor.Bootstrap{sn.relays[0].Bootstrap()}, Preemptive: -1,
		DHTMinAge: -1, NameDifficulty: testNameDifficulty,
		Transports: transport.Registry{memnet.Scheme: sn.mem.Host(ip)}}
	if opt != nil {
		opt(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		sn.tb.Fatal(err)
	}
	sn.tb.Cleanup(func() { n.Close() })
	if err := n.Start(ctxT(sn.tb)); err != nil {
		sn.tb.Fatal(err)
	}
	return n
}

// testSite is a site of a few files, one over a DHT chunk.
func testSite(tb testing.TB, key *keys.IdentityPrivateKey, seq uint64, extra string) (map[string][]byte, *sites.Manifest) {
	tb.Helper()
	files := map[string][]byte{
		"/index.html":    []byte("<!doctype html><title>t</title><h1>home " + extra + "</h1>"),
		"/a/b.txt":       []byte("b " + extra),
		"/big.bin":       bytes.Repeat([]byte("0123456789abcdef"), 5000),
		"/data/x.json":   []byte(`{"x":1}`),
		"/notes/one.txt": []byte("one"),
	}
	m := &sites.Manifest{Site: key.Public(), Seq: seq, Created: time.Now().Unix()}
	for p, b := range files {
		m.Files = append(m.Files, sites.Entry{Path: p, Hash: sha(b), Size: uint64(len(b)), ContentType: sites.ContentType(p, b)})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return files, m
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// publishAndHost publishes a site from sn.client and has every host take
// it.
func (sn *siteNet) publishAndHost(key *keys.IdentityPrivateKey, seq uint64, extra string) map[string][]byte {
	sn.tb.Helper()
	files, m := testSite(sn.tb, key, seq, extra)
	if _, err := sn.client.PublishSite(ctxT(sn.tb), key, files, m); err != nil {
		sn.tb.Fatal(err)
	}
	for i, h := range sn.hosts {
		if err := h.HostSite(ctxT(sn.tb), key.Public()); err != nil {
			sn.tb.Fatalf("host %d: %v", i, err)
		}
	}
	return files
}

// fetch GETs path of host ("NAME.dark" or "<addr>.dark") through n's
// Dial, as the proxies do.
func fetch(ctx context.Context, n *Node, host, path string) ([]byte, int, error) {
	tr := &http.Transport{DialContext: n.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func checkFiles(t testing.TB, n *Node, host string, files map[string][]byte) {
	t.Helper()
	for p, want := range files {
		got, code, err := fetch(ctxT(t), n, host, p)
		if err != nil || code != http.StatusOK || !bytes.Equal(got, want) {
			t.Fatalf("GET %s: %d, %d bytes, %v; want %d bytes", p, code, len(got), err, len(want))
		}
	}
}

// A published site is taken by two hosts and served through Dial, by
// address and by name, every file byte for byte from the hosts; the
// hosts take a newer manifest by themselves, and a new visitor sees it.
func TestSitePublishHostServe(t *testing.T) {
	sn := newSiteNet(t, 5, 2)
	key := newIdentity(t)
	files := sn.publishAndHost(key, 1, "v1")
	addr := sites.Address(key.Public())
	if _, err := sn.client.RegisterName(ctxT(t), "my.site", key, time.Hour, names.SiteEntry(key.Public())); err != nil {
		t.Fatal(err)
	}
	visitor := sn.newClient(nil)
	checkFiles(t, visitor, addr, files)
	checkFiles(t, visitor, "my.site.dark", files)
	st := visitor.SiteClient().Stats()
	if st.FromHosts != uint64(len(files)) || st.Tampered != 0 {
		t.Errorf("visitor stats %+v: want all %d files from hosts", st, len(files))
	}
	// The directory index, a redirect, a missing path, another port.
	if b, code, err := fetch(ctxT(t), visitor, addr, "/"); err != nil || code != 200 || !bytes.Equal(b, files["/index.html"]) {
		t.Errorf("GET /: %d %q %v", code, b, err)
	}
	if _, code, err := fetch(ctxT(t), visitor, addr, "/nothing"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d %v, want 404", code, err)
	}
	if _, err := visitor.Dial(ctxT(t), "tcp", addr+":81"); err == nil {
		t.Error("a site answered on port 81")
	}

	// The owner publishes a new version: the hosts take it by themselves.
	files2 := sn.publishAndHost(key, 2, "v2")
	waitFor(t, func() bool {
		for _, h := range sn.hosts {
			if m, ok := h.hostedManifest(key.Public()); !ok || m.Seq != 2 {
				return false
			}
		}
		return true
	}, "both hosts hold seq 2")
	checkFiles(t, sn.newClient(nil), "my.site.dark", files2)
	if n := sn.hosts[0].SiteStats(); n.Hosted != 1 || n.Syncs < 2 {
		t.Errorf("host stats %+v", n)
	}
}

// A name nobody registered and a key that is neither a site nor a
// service are not found, with errors the proxies and the gateway can
// tell apart; a name pointing at a text only is not found either.
func TestSiteNotFound(t *testing.T) {
	sn := newSiteNet(t, 4, 0)
	key := newIdentity(t)
	if _, err := sn.client.RegisterName(ctxT(t), "text.only", key, time.Hour, names.TextEntry("hi")); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"nobody.dark:80", "text.only.dark:80"} {
		if _, err := sn.client.Dial(ctxT(t), "tcp", host); !errors.Is(err, specialname.ErrNameNotFound) {
			t.Errorf("Dial(%s) = %v, want ErrNameNotFound", host, err)
		}
	}
	k := keys.IdentityFromSeed([32]byte{9}).Public()
	if _, err := sn.client.Dial(ctxT(t), "tcp", sites.Address(k)+":80"); err == nil || errors.Is(err, sites.ErrNotFound) {
		t.Errorf("Dial(unknown key) = %v, want the hidden service's not-found error", err)
	}
}

// The site stays up as hosts die: with one of two, then two of three
// hosts closed, a new visitor still gets every file.
func TestSiteSurvivesHostDeaths(t *testing.T) {
	for _, c := range []struct{ hosts, dead int }{{2, 1}, {3, 2}} {
		t.Run(fmt.Sprintf("%dof%d", c.dead, c.hosts), func(t *testing.T) {
			sn := newSiteNet(t, 5, c.hosts)
			key := newIdentity(t)
			files := sn.publishAndHost(key, 1, "x")
			for _, h := range sn.hosts[:c.dead] {
				h.Close()
			}
			v := sn.newClient(nil)
			checkFiles(t, v, sites.Address(key.Public()), files)
			if st := v.SiteClient().Stats(); st.FromHosts != uint64(len(files)) {
				t.Errorf("stats %+v: want every file from the live host", st)
			}
		})
	}
}

// A hosted site is served again after the host restarts on the same
// directory, under the same host key.
func TestSiteHostRestart(t *testing.T) {
	sn := newSiteNet(t, 4, 0)
	key := newIdentity(t)
	dir := t.TempDir()
	opt := func(c *Config) { c.StateDir = dir }
	h := sn.newClient(opt)
	files, m := testSite(t, key, 1, "r")
	if _, err := sn.client.PublishSite(ctxT(t), key, files, m); err != nil {
		t.Fatal(err)
	}
	if err := h.HostSite(ctxT(t), key.Public()); err != nil {
		t.Fatal(err)
	}
	first := h.SiteHost()
	h.Close()
	h2 := sn.newClient(opt)
	if err := h2.HostSite(ctxT(t), key.Public()); err != nil {
		t.Fatal(err)
	}
	if h2.SiteHost() != first || first == "" {
		t.Errorf("host address %q after a restart, was %q", h2.SiteHost(), first)
	}
	if !slices.Contains(h2.HostedSites(), key.Public()) {
		t.Error("the restarted host does not list the site")
	}
	checkFiles(t, sn.newClient(nil), sites.Address(key.Public()), files)
}

// BenchmarkNameResolve measures resolving a registered name: cold (the
// node's cache emptied before each lookup: a DHT lookup through a
// circuit) and cached.
func BenchmarkNameResolve(b *testing.B) {
	sn := newSiteNet(b, 5, 0)
	key, _ := keys.GenerateIdentity(nil)
	if _, err := sn.client.RegisterName(ctxT(b), "bench", key, time.Hour, names.TextEntry("x")); err != nil {
		b.Fatal(err)
	}
	for _, cold := range []bool{true, false} {
		b.Run(map[bool]string{true: "cold", false: "cached"}[cold], func(b *testing.B) {
			for b.Loop() {
				if cold {
					sn.client.names.forget("bench")
				}
				if _, err := sn.client.ResolveName(ctxT(b), "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSiteTTFB measures the time to the first byte of a site page
// (index.html, 60 bytes): "first-visit" through a new visitor node's Dial
// (node start not timed: the lookups of pointer, manifest, hosts, the
// host's descriptor, the rendezvous and the fetch), "proxy" through a
// node's Dial that has the page cached, "gateway" through an
// apps/gateway handler over that node, and "direct" a loopback HTTP
// server serving the same bytes (the baseline). "gateway-parallel"
// reports pages per second.
func BenchmarkSiteTTFB(b *testing.B) {
	sn := newSiteNet(b, 5, 2)
	key, _ := keys.GenerateIdentity(nil)
	files := sn.publishAndHost(key, 1, "bench")
	addr := sites.Address(key.Public())
	page := files["/index.html"]
	ttfb := func(b *testing.B, get func() (*http.Response, error)) {
		resp, err := get()
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if _, err := br.Peek(1); err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, br)
		resp.Body.Close()
	}
	b.Run("first-visit", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			v := sn.newClient(nil)
			b.StartTimer()
			ttfb(b, func() (*http.Response, error) {
				tr := &http.Transport{DialContext: v.Dial, DisableKeepAlives: true}
				return tr.RoundTrip(mustReq(b, "http://"+addr+"/index.html"))
			})
			b.StopTimer()
			v.Close()
			b.StartTimer()
		}
	})
	v := sn.newClient(nil)
	checkFiles(b, v, addr, map[string][]byte{"/index.html": page})
	b.Run("proxy", func(b *testing.B) {
		tr := &http.Transport{DialContext: v.Dial, DisableKeepAlives: true}
		for b.Loop() {
			ttfb(b, func() (*http.Response, error) { return tr.RoundTrip(mustReq(b, "http://"+addr+"/index.html")) })
		}
	})
	gw, err := gateway.New(gateway.Config{Domain: "gw.test", Dial: v.Dial, Rate: 1e9, Burst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	gws := httptest.NewServer(gw)
	defer gws.Close()
	gwGet := func(tr *http.Transport) (*http.Response, error) {
		req := mustReq(b, gws.URL+"/index.html")
		req.Host = addr[:len(addr)-len(".dark")] + ".gw.test"
		return tr.RoundTrip(req)
	}
	b.Run("gateway", func(b *testing.B) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		for b.Loop() {
			ttfb(b, func() (*http.Response, error) { return gwGet(tr) })
		}
	})
	b.Run("gateway-parallel", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ttfb(b, func() (*http.Response, error) { return gwGet(tr) })
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pages/s")
	})
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(page) }))
	defer direct.Close()
	b.Run("direct", func(b *testing.B) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		for b.Loop() {
			ttfb(b, func() (*http.Response, error) { return tr.RoundTrip(mustReq(b, direct.URL+"/index.html")) })
		}
	})
}

// BenchmarkSiteAvailability measures a new visitor's fetch of every file
// of a site (5 files, 80 KB) with some of its hosts closed: the time, and
// the share of visits that got every file ("ok%").
func BenchmarkSiteAvailability(b *testing.B) {
	for _, c := range []struct{ hosts, dead int }{{2, 0}, {2, 1}, {3, 2}} {
		b.Run(fmt.Sprintf("%dof%d-dead", c.dead, c.hosts), func(b *testing.B) {
			sn := newSiteNet(b, 5, c.hosts)
			key, _ := keys.GenerateIdentity(nil)
			files := sn.publishAndHost(key, 1, "a")
			for _, h := range sn.hosts[:c.dead] {
				h.Close()
			}
			addr := sites.Address(key.Public())
			ok := 0
			for b.Loop() {
				b.StopTimer()
				v := sn.newClient(nil)
				b.StartTimer()
				good := true
				for p, want := range files {
					got, code, err := fetch(ctxT(b), v, addr, p)
					good = good && err == nil && code == 200 && bytes.Equal(got, want)
				}
				if good {
					ok++
				}
				b.StopTimer()
				v.Close()
				b.StartTimer()
			}
			b.ReportMetric(100*float64(ok)/float64(b.N), "ok%")
		})
	}
}

// hostedManifest returns the manifest of site the node hosts.
func (n *Node) hostedManifest(site keys.IdentityPublicKey) (*sites.Manifest, bool) {
	n.sites.mu.Lock()
	h := n.sites.host
	n.sites.mu.Unlock()
	if h == nil {
		return nil, false
	}
	m, _, ok := h.Manifest(site)
	return m, ok
}

func mustReq(tb testing.TB, u string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}
