package sites

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// testHost serves the host protocol (GET /v1/blob/<hex>, GET
// /v1/site/<hex>) from maps, over net.Pipe streams.
type testHost struct {
	key    keys.ServicePublicKey
	mu     sync.Mutex
	blobs  map[[32]byte][]byte
	sites  map[keys.IdentityPublicKey][]byte
	tamper bool // flip a byte of every blob
	down   bool // refuse streams
	reqs   atomic.Int64
}

func (h *testHost) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h.reqs.Add(1)
		var body []byte
		status := http.StatusNotFound
		h.mu.Lock()
		if kind, hx, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v1/"), "/"); ok && req.Method == http.MethodGet {
			var k [32]byte
			if n, err := hex.Decode(k[:], []byte(hx)); err == nil && n == 32 {
				var b []byte
				switch kind {
				case "blob":
					b, ok = h.blobs[k]
				case "site":
					b, ok = h.sites[keys.IdentityPublicKey(k)]
				}
				if ok {
					status, body = http.StatusOK, bytes.Clone(b)
					if h.tamper && len(body) > 0 {
						body[len(body)/2] ^= 1
					}
				}
			}
		}
		h.mu.Unlock()
		resp := &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(len(body)),
			Body: io.NopCloser(bytes.NewReader(body)), Header: http.Header{}}
		if err := resp.Write(conn); err != nil {
			return
		}
	}
}

// testEnv is an in-memory node: pointers and blobs in maps standing for
// the DHT, hosts on net.Pipe streams, calls through a function.
type testEnv struct {
	mu      sync.Mutex
	ptrs    map[keys.IdentityPublicKey]Pointer
	hosts   map[keys.IdentityPublicKey][]*testHost
	byKey   map[keys.ServicePublicKey]*testHost
	dht     map[[32]byte][]byte
	dhtDown bool
	dhtGets atomic.Int64
	call    func(ctx context.Context, module [32]byte, fn string, in []byte) ([]byte, error)
	wg      sync.WaitGroup
}

func newTestEnv() *testEnv {
	return &testEnv{ptrs: map[keys.IdentityPublicKey]Pointer{}, hosts: map[keys.IdentityPublicKey][]*testHost{},
		byKey: map[keys.ServicePublicKey]*testHost{}, dht: map[[32]byte][]byte{}}
}

func (e *testEnv) Pointer(_ context.Context, site keys.IdentityPublicKey) (Pointer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.ptrs[site]
	if !ok {
		return Pointer{}, fmt.Errorf("dht: no record: %w", ErrNotFound)
	}
	return p, nil
}

func (e *testEnv) Hosts(_ context.Context, site keys.IdentityPublicKey) ([]keys.ServicePublicKey, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []keys.ServicePublicKey
	for _, h := range e.hosts[site] {
		out = append(out, h.key)
	}
	return out, nil
}

func (e *testEnv) DialHost(_ context.Context, k keys.ServicePublicKey) (net.Conn, error) {
	e.mu.Lock()
	h := e.byKey[k]
	e.mu.Unlock()
	if h == nil {
		return nil, errors.New("no route to host")
	}
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down {
		return nil, errors.New("host down")
	}
	c, s := net.Pipe()
	e.wg.Go(func() { h.serve(s) })
	return c, nil
}

func (e *testEnv) GetBlob(_ context.Context, hash [32]byte) ([]byte, error) {
	e.dhtGets.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dhtDown {
		return nil, errors.New("dht: lookup timed out")
	}
	b, ok := e.dht[hash]
	if !ok {
		return nil, errors.New("dht: no such blob")
	}
	return b, nil
}

func (e *testEnv) Call(ctx context.Context, module [32]byte, fn string, in []byte) ([]byte, error) {
	if e.call == nil {
		return nil, errors.New("no executor")
	}
	return e.call(ctx, module, fn, in)
}

// addHost adds a host of site.
func (e *testEnv) addHost(site keys.IdentityPublicKey, seed byte) *testHost {
	h := &testHost{key: keys.ServicePublicKey(testKey(seed).Public()), blobs: map[[32]byte][]byte{}, sites: map[keys.IdentityPublicKey][]byte{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hosts[site] = append(e.hosts[site], h)
	e.byKey[h.key] = h
	return h
}

// publish signs a manifest of files (path → content; content types by
// extension) and handlers with k, and stores its pointer, the manifest and
// the files in the DHT and on every host of the site.
func (e *testEnv) publish(t testing.TB, k *keys.IdentityPrivateKey, seq uint64, files map[string]string, handlers ...Handler) *Manifest {
	t.Helper()
	m := &Manifest{Seq: seq, Created: 1767225600, Handlers: handlers}
	blobs := map[[32]byte][]byte{}
	for _, p := range sortedKeys(files) {
		ct := "text/html; charset=utf-8"
		if strings.HasSuffix(p, ".css") {
			ct = "text/css; charset=utf-8"
		} else if strings.HasSuffix(p, ".json") {
			ct = "application/json"
		}
		e := entry(p, files[p], ct)
		m.Files = append(m.Files, e)
		blobs[e.Hash] = []byte(files[p])
	}
	enc, err := m.Sign(testNet, k)
	if err != nil {
		t.Fatal(err)
	}
	p := PointerFor(m, enc)
	blobs[p.Hash] = enc
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ptrs[m.Site] = p
	for h, b := range blobs {
		e.dht[h] = b
	}
	for _, h := range e.hosts[m.Site] {
		h.mu.Lock()
		for hh, b := range blobs {
			h.blobs[hh] = b
		}
		h.sites[m.Site] = enc
		h.mu.Unlock()
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	// insertion sort: few keys
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestClient returns a client of env with a fixed host order (as
// Hosts lists them) and a test clock; it closes the client and waits for
// the hosts at the end of the test.
func newTestClient(t testing.TB, env *testEnv, cfg ClientConfig) (*Client, *testClock) {
	t.Helper()
	if cfg.Network == "" {
		cfg.Network = testNet
	}
	c := NewClient(env, cfg)
	clk := &testClock{t: time.Unix(1767225600, 0)}
	c.now = clk.now
	c.order = func([]keys.ServicePublicKey) {}
	t.Cleanup(func() {
		c.Close()
		env.wg.Wait()
	})
	return c, clk
}

var testFiles = map[string]string{
	"/index.html":       "<h1>home</h1>",
	"/style.css":        "body{color:red}",
	"/about/index.html": "<h1>about</h1>",
	"/empty.html":       "",
}

func TestClientFiles(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	hs := []*testHost{env.addHost(site, 10), env.addHost(site, 11)}
	m := env.publish(t, k, 1, testFiles)
	env.mu.Lock()
	env.dhtDown = true // everything comes from the hosts
	env.mu.Unlock()
	c, _ := newTestClient(t, env, ClientConfig{})
	got, err := c.Manifest(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || len(got.Files) != len(testFiles) {
		t.Fatalf("manifest %+v", got)
	}
	for _, e := range m.Files {
		b, err := c.File(context.Background(), site, e)
		if err != nil || string(b) != testFiles[e.Path] {
			t.Fatalf("File(%s) = %q, %v", e.Path, b, err)
		}
	}
	before := hs[0].reqs.Load() + hs[1].reqs.Load()
	for _, e := range m.Files {
		if b, err := c.File(context.Background(), site, e); err != nil || string(b) != testFiles[e.Path] {
			t.Fatalf("cached File(%s) = %q, %v", e.Path, b, err)
		}
	}
	if after := hs[0].reqs.Load() + hs[1].reqs.Load(); after != before {
		t.Fatalf("cached files fetched again: %d requests, then %d", before, after)
	}
	st := c.Stats()
	if st.FilesServed != 2*uint64(len(testFiles)) || st.CacheHits < uint64(len(testFiles)) || st.Tampered != 0 || st.DHTFetches != 0 {
		t.Fatalf("stats %+v", st)
	}
	// An entry with the hash of a file but another size is refused.
	e := m.Files[0]
	e.Size++
	if _, err := c.File(context.Background(), site, e); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("File with a wrong size: %v", err)
	}
}

func TestClientTamperingHost(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	bad := env.addHost(site, 10)
	good := env.addHost(site, 11)
	m := env.publish(t, k, 1, testFiles)
	bad.tamper = true
	env.dhtDown = true
	var logs []string
	var logMu sync.Mutex
	c, clk := newTestClient(t, env, ClientConfig{Logf: func(f string, a ...any) {
		logMu.Lock()
		logs = append(logs, fmt.Sprintf(f, a...))
		logMu.Unlock()
	}})
	// The bad host comes first: the manifest from it fails its hash, the
	// good host's is used.
	if _, err := c.Manifest(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	e := m.Files[0]
	b, err := c.File(context.Background(), site, e)
	if err != nil || string(b) != testFiles[e.Path] {
		t.Fatalf("File = %q, %v", b, err)
	}
	if st := c.Stats(); st.Tampered != 1 {
		t.Fatalf("stats %+v, want one tampered blob", st)
	}
	// The bad host is skipped for the next file, then tried again after
	// BadHostTime.
	n := bad.reqs.Load()
	if _, err := c.File(context.Background(), site, m.Files[1]); err != nil {
		t.Fatal(err)
	}
	if bad.reqs.Load() != n {
		t.Fatal("a host marked bad was asked again")
	}
	clk.add(BadHostTime + time.Second)
	if _, err := c.File(context.Background(), site, m.Files[2]); err != nil {
		t.Fatal(err)
	}
	if bad.reqs.Load() == n || c.Stats().Tampered != 2 {
		t.Fatalf("the bad host was not tried again after its time: stats %+v", c.Stats())
	}
	_ = good
	// No log message names the site, a host or a path.
	logMu.Lock()
	defer logMu.Unlock()
	if len(logs) == 0 {
		t.Fatal("no log messages")
	}
	secrets := []string{Address(site), bad.key.Address(), good.key.Address(), hex.EncodeToString(site[:]), hex.EncodeToString(bad.key[:])}
	for _, f := range m.Files {
		secrets = append(secrets, f.Path, hex.EncodeToString(f.Hash[:]))
	}
	for _, l := range logs {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(l), strings.ToLower(strings.TrimSuffix(s, ".dark"))) {
				t.Errorf("log %q names %q", l, s)
			}
		}
	}
}

func TestClientDHTFallback(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	hs := []*testHost{env.addHost(site, 10), env.addHost(site, 11), env.addHost(site, 12)}
	m := env.publish(t, k, 1, testFiles)
	for _, h := range hs {
		h.down = true
	}
	hs[2].down, hs[2].tamper = false, true
	c, _ := newTestClient(t, env, ClientConfig{})
	for _, e := range m.Files {
		b, err := c.File(context.Background(), site, e)
		if err != nil || string(b) != testFiles[e.Path] {
			t.Fatalf("File(%s) = %q, %v", e.Path, b, err)
		}
	}
	st := c.Stats()
	if st.DHTFetches != uint64(len(m.Files)) || st.HostFailures == 0 || st.Tampered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClientNewerPointer(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	env.addHost(site, 10)
	env.publish(t, k, 1, map[string]string{"/index.html": "one"})
	c, clk := newTestClient(t, env, ClientConfig{PointerTTL: time.Minute})
	h := c.Handler(site)
	if code, body := get(t, h, "/", nil); code != 200 || body != "one" {
		t.Fatalf("GET / = %d %q", code, body)
	}
	env.publish(t, k, 2, map[string]string{"/index.html": "two"})
	// The pointer is cached for PointerTTL.
	if code, body := get(t, h, "/", nil); code != 200 || body != "one" {
		t.Fatalf("GET / within the TTL = %d %q", code, body)
	}
	// Latest looks the pointer up now; then the handler serves it too.
	if m, err := c.Latest(context.Background(), site); err != nil || m.Seq != 2 {
		t.Fatalf("Latest within the TTL = %v, %v; want seq 2", m, err)
	}
	if code, body := get(t, h, "/", nil); code != 200 || body != "two" {
		t.Fatalf("GET / after Latest = %d %q", code, body)
	}
	env.publish(t, k, 3, map[string]string{"/index.html": "three"})
	clk.add(time.Minute)
	if code, body := get(t, h, "/", nil); code != 200 || body != "three" {
		t.Fatalf("GET / after the TTL = %d %q", code, body)
	}
	// A pointer with a lower seq (a lagging DHT node) does not roll back.
	old := env.publish(t, k, 1, map[string]string{"/index.html": "one"})
	_ = old
	clk.add(time.Minute)
	if code, body := get(t, h, "/", nil); code != 200 || body != "three" {
		t.Fatalf("GET / after an older pointer = %d %q", code, body)
	}
}

func TestClientManifestChecks(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	env.addHost(site, 10)
	env.publish(t, k, 1, testFiles)
	// A manifest of another site key under this site's pointer.
	other := testKey(2)
	m2 := &Manifest{Seq: 1, Files: []Entry{entry("/index.html", "x", "text/html")}}
	enc2, err := m2.Sign(testNet, other)
	if err != nil {
		t.Fatal(err)
	}
	env.mu.Lock()
	env.ptrs[site] = PointerFor(m2, enc2)
	env.dht[PointerFor(m2, enc2).Hash] = enc2
	env.mu.Unlock()
	c, _ := newTestClient(t, env, ClientConfig{})
	if _, err := c.Manifest(context.Background(), site); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("manifest of another key: %v", err)
	}
	if code, body := get(t, c.Handler(site), "/", nil); code != http.StatusBadGateway || !strings.Contains(body, "manifest invalid") {
		t.Fatalf("GET / = %d %q", code, body)
	}
	// A site with no pointer.
	c2, _ := newTestClient(t, env, ClientConfig{})
	if _, err := c2.Manifest(context.Background(), testKey(3).Public()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no pointer: %v", err)
	}
}

func TestClientCache(t *testing.T) {
	c := NewClient(newTestEnv(), ClientConfig{Network: testNet, CacheBytes: 400})
	defer c.Close()
	blob := func(i byte, n int) ([32]byte, []byte) {
		b := bytes.Repeat([]byte{i}, n)
		return sha256.Sum256(b), b
	}
	h1, b1 := blob(1, 100)
	h2, b2 := blob(2, 100)
	h3, b3 := blob(3, 100)
	h4, b4 := blob(4, 100)
	h5, b5 := blob(5, 101)
	h6, b6 := blob(6, 100)
	c.put(h1, b1)
	c.put(h2, b2)
	c.put(h3, b3)
	c.put(h4, b4)
	c.put(h5, b5) // over a quarter: not cached
	if _, ok := c.cache[h5]; ok || c.cached != 400 {
		t.Fatalf("cached %d bytes, large blob cached %v", c.cached, ok)
	}
	c.lru.MoveToFront(c.cache[h1]) // h2 is now the least recently used
	c.put(h6, b6)
	if _, ok := c.cache[h2]; ok || c.cached != 400 || len(c.cache) != 4 {
		t.Fatalf("after eviction: %d bytes, %d blobs, h2 kept %v", c.cached, len(c.cache), ok)
	}
	_, _, _ = b3, h3, h4
}

func TestClientSharedFetch(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	h := env.addHost(site, 10)
	m := env.publish(t, k, 1, testFiles)
	c, _ := newTestClient(t, env, ClientConfig{})
	if _, err := c.Manifest(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	n := h.reqs.Load()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if b, err := c.File(context.Background(), site, m.Files[0]); err != nil || string(b) != testFiles[m.Files[0].Path] {
				t.Errorf("File = %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	// Fetches run one at a time per hash, and the result is cached: one
	// request.
	if got := h.reqs.Load() - n; got != 1 {
		t.Fatalf("%d host requests for one file", got)
	}
}
