package sites

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Errors of a Client. Error texts never name a site, a host or a path.
var (
	// ErrNotFound: the site has no pointer (no published manifest). Env
	// implementations wrap it too.
	ErrNotFound = errors.New("sites: site not found")
	// ErrBadManifest: manifest bytes were found, but none checked against
	// the pointer (Pointer.CheckManifest).
	ErrBadManifest = errors.New("sites: manifest invalid")
	// ErrUnavailable: every host and the DHT failed to give verified bytes.
	ErrUnavailable = errors.New("sites: every host and the DHT failed")
)

// Env is what a Client needs from its node.
type Env interface {
	// Pointer returns the newest verified type-7 pointer of site, or an
	// error wrapping ErrNotFound if there is none.
	Pointer(ctx context.Context, site keys.IdentityPublicKey) (Pointer, error)
	// Hosts returns the hosts advertising site (verified host records).
	Hosts(ctx context.Context, site keys.IdentityPublicKey) ([]keys.ServicePublicKey, error)
	// DialHost opens a stream to port 80 of host.
	DialHost(ctx context.Context, host keys.ServicePublicKey) (net.Conn, error)
	// GetBlob fetches a blob from the DHT, where the publisher stores the
	// manifest and the files. The Client checks the bytes.
	GetBlob(ctx context.Context, hash [32]byte) ([]byte, error)
	// Call runs function of module as a delegated call (a handler).
	Call(ctx context.Context, module [32]byte, function string, input []byte) ([]byte, error)
}

// Defaults of ClientConfig.
const (
	DefaultCacheBytes  = 64 << 20
	DefaultPointerTTL  = time.Minute
	DefaultMaxHosts    = 8
	DefaultHostTimeout = 10 * time.Second
	// BadHostTime is how long a host that served tampered bytes of a site
	// is skipped for that site.
	BadHostTime = 10 * time.Minute
)

// ClientConfig configures a Client. The zero value (with Network set) is
// usable.
type ClientConfig struct {
	// Network is the network name manifests are signed for. Required.
	Network string
	// CacheBytes bounds the verified file and manifest cache (least
	// recently used out first); a blob larger than a quarter of it is not
	// cached. Default 64 MiB.
	CacheBytes int64
	// PointerTTL is how long a site's pointer (and host list) is used
	// before it is looked up again. Default 1 minute.
	PointerTTL time.Duration
	// MaxHosts is the most hosts tried for one blob. Default 8.
	MaxHosts int
	// HostTimeout bounds one request to one host. Default 10 s.
	HostTimeout time.Duration
	// Logf receives debug messages, which never name a site, a host or a
	// path. Nil is silent.
	Logf func(format string, args ...any)
}

// ClientStats are a Client's counters since NewClient.
type ClientStats struct {
	FilesServed   uint64 // files File returned
	CacheHits     uint64 // files and manifests served from the cache
	Tampered      uint64 // blobs from hosts that failed their check
	FromHosts     uint64 // files fetched from hosts and verified
	HostFailures  uint64 // host requests that failed otherwise (errors, 404, timeouts)
	DHTFetches    uint64 // blobs fetched from the DHT (Env.GetBlob) and verified
	HandlerCalls  uint64 // handler calls made (Env.Call)
	HandlerErrors uint64 // handler calls that failed or gave bad output
}

// Client fetches sites' manifests and files from their hosts and the DHT
// and checks every byte against the site key's signature
// (spec/sites.md §7). It is safe for concurrent use.
type Client struct {
	env   Env
	cfg   ClientConfig
	tr    *http.Transport
	httpc *http.Client
	now   func() time.Time
	order func([]keys.ServicePublicKey) // shuffles the hosts; tests fix it

	// mu guards the following.
	mu      sync.Mutex
	sites   map[keys.IdentityPublicKey]*siteState
	cache   map[[32]byte]*list.Element // of *cached, in lru
	lru     *list.List                 // front: most recently used
	cached  int64                      // bytes in the cache
	flights map[[32]byte]*flight

	stats struct {
		files, hits, tampered, fromHosts, hostFail, dht, calls, callErrs atomic.Uint64
	}
}

type siteState struct {
	ptr     Pointer
	ptrAt   time.Time
	man     *Manifest
	hosts   []keys.ServicePublicKey
	hostsAt time.Time
	bad     map[keys.ServicePublicKey]time.Time // until when a host is skipped
}

type cached struct {
	hash [32]byte
	b    []byte
}

type flight struct {
	done chan struct{}
	b    []byte
	err  error
}

// NewClient returns a Client of env.
func NewClient(env Env, cfg ClientConfig) *Client {
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	if cfg.PointerTTL <= 0 {
		cfg.PointerTTL = DefaultPointerTTL
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = DefaultMaxHosts
	}
	if cfg.HostTimeout <= 0 {
		cfg.HostTimeout = DefaultHostTimeout
	}
	c := &Client{
		env: env, cfg: cfg, now: time.Now,
		order: func(hs []keys.ServicePublicKey) {
			rand.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
		},
		sites:   map[keys.IdentityPublicKey]*siteState{},
		cache:   map[[32]byte]*list.Element{},
		lru:     list.New(),
		flights: map[[32]byte]*flight{},
	}
	c.tr = &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dial,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
		ResponseHeaderTimeout:  cfg.HostTimeout,
	}
	c.httpc = &http.Client{
		Transport: c.tr,
		// A host's redirect is not followed: the protocol has none.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// dial maps the URL host "<address>.dark:80" back to the host's key.
func (c *Client) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, errors.New("sites: bad host address")
	}
	k, err := keys.ParseAddress(h)
	if err != nil {
		return nil, fmt.Errorf("sites: bad host address: %w", err)
	}
	return c.env.DialHost(ctx, k)
}

// Close closes idle host connections. It can be called more than once.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Stats returns the counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		FilesServed:   c.stats.files.Load(),
		CacheHits:     c.stats.hits.Load(),
		Tampered:      c.stats.tampered.Load(),
		FromHosts:     c.stats.fromHosts.Load(),
		HostFailures:  c.stats.hostFail.Load(),
		DHTFetches:    c.stats.dht.Load(),
		HandlerCalls:  c.stats.calls.Load(),
		HandlerErrors: c.stats.callErrs.Load(),
	}
}

func (c *Client) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

func (c *Client) site(site keys.IdentityPublicKey) *siteState {
	st := c.sites[site]
	if st == nil {
		st = &siteState{bad: map[keys.ServicePublicKey]time.Time{}}
		c.sites[site] = st
	}
	return st
}

// Manifest returns site's newest verified manifest. The pointer is looked
// up at most once per PointerTTL; the manifest bytes named by it come from
// the cache, the DHT, or the site's hosts, and only bytes that
// Pointer.CheckManifest accepts are used. A pointer with a lower seq than
// the cached manifest's does not replace it.
func (c *Client) Manifest(ctx context.Context, site keys.IdentityPublicKey) (*Manifest, error) {
	return c.manifest(ctx, site, false)
}

// Latest is Manifest without the pointer cache: it looks the site's
// pointer up now (a host checking for updates). If the lookup fails, the
// cached manifest is returned, as by Manifest.
func (c *Client) Latest(ctx context.Context, site keys.IdentityPublicKey) (*Manifest, error) {
	return c.manifest(ctx, site, true)
}

func (c *Client) manifest(ctx context.Context, site keys.IdentityPublicKey, fresh bool) (*Manifest, error) {
	c.mu.Lock()
	st := c.site(site)
	if !fresh && st.man != nil && c.now().Sub(st.ptrAt) < c.cfg.PointerTTL {
		m := st.man
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()

	p, err := c.env.Pointer(ctx, site)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, redact(err))
		}
		c.mu.Lock()
		m := st.man
		c.mu.Unlock()
		if m != nil {
			// A lookup failed: the last verified manifest still serves.
			c.logf("sites: pointer lookup failed, using the cached manifest: %v", redact(err))
			return m, nil
		}
		return nil, fmt.Errorf("sites: pointer lookup: %w", redact(err))
	}
	c.mu.Lock()
	if st.man != nil && (st.ptr == p || p.Seq < st.man.Seq) {
		st.ptrAt = c.now()
		m := st.man
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()

	var m *Manifest
	b, err := c.blob(ctx, p.Hash, func(ctx context.Context) ([]byte, error) {
		var b []byte
		var err error
		b, m, err = c.fetchManifest(ctx, site, p)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if m == nil { // from the cache or another caller's fetch
		if m, err = p.CheckManifest(c.cfg.Network, site, b); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.man == nil || m.Seq >= st.man.Seq {
		st.ptr, st.man = p, m
	}
	st.ptrAt = c.now()
	return st.man, nil
}

// fetchManifest fetches the manifest p names: the DHT first (the
// publisher stores it there), then the hosts.
func (c *Client) fetchManifest(ctx context.Context, site keys.IdentityPublicKey, p Pointer) ([]byte, *Manifest, error) {
	invalid := false
	b, err := c.env.GetBlob(ctx, p.Hash)
	if err == nil {
		m, err := p.CheckManifest(c.cfg.Network, site, b)
		if err == nil {
			c.stats.dht.Add(1)
			return b, m, nil
		}
		invalid = true
		c.logf("sites: manifest from the DHT refused: %v", err)
	}
	hexSite := hex.EncodeToString(site[:])
	for _, h := range c.hosts(ctx, site) {
		b, err := c.get(ctx, h, "/v1/site/"+hexSite, int64(p.Size))
		if err != nil {
			c.stats.hostFail.Add(1)
			continue
		}
		if sha256.Sum256(b) != p.Hash {
			// An older manifest, or a lie: not counted as tampering, since
			// a host may lag behind the pointer.
			c.stats.hostFail.Add(1)
			continue
		}
		m, err := p.CheckManifest(c.cfg.Network, site, b)
		if err != nil {
			invalid = true
			continue
		}
		return b, m, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if invalid {
		return nil, nil, ErrBadManifest
	}
	return nil, nil, fmt.Errorf("%w (manifest)", ErrUnavailable)
}

// File returns the content of entry e of site's manifest, checked with
// CheckFile: from the cache, else from the site's hosts in random order
// (a host whose bytes fail the check is skipped for BadHostTime), else
// from the DHT. Concurrent calls for one content hash share one fetch.
func (c *Client) File(ctx context.Context, site keys.IdentityPublicKey, e Entry) ([]byte, error) {
	b, err := c.blob(ctx, e.Hash, func(ctx context.Context) ([]byte, error) {
		return c.fetchFile(ctx, site, e)
	})
	if err != nil {
		return nil, err
	}
	// b was checked against e.Hash when it was fetched; another entry
	// with the same hash but another size is a manifest's error.
	if uint64(len(b)) != e.Size {
		return nil, fmt.Errorf("%w: %d bytes for a file of %d", ErrBadManifest, len(b), e.Size)
	}
	c.stats.files.Add(1)
	return b, nil
}

// blob returns the cached blob hash, or runs fetch once for all callers
// asking for it at the same time and caches its result.
func (c *Client) blob(ctx context.Context, hash [32]byte, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	for {
		c.mu.Lock()
		if el, ok := c.cache[hash]; ok {
			c.lru.MoveToFront(el)
			b := el.Value.(*cached).b
			c.mu.Unlock()
			c.stats.hits.Add(1)
			return b, nil
		}
		f, waiting := c.flights[hash]
		if !waiting {
			f = &flight{done: make(chan struct{})}
			c.flights[hash] = f
		}
		c.mu.Unlock()

		if waiting {
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err != nil && isCtxErr(f.err) && ctx.Err() == nil {
				continue // the fetching caller gave up; fetch again
			}
			return f.b, f.err
		}

		f.b, f.err = fetch(ctx)
		c.mu.Lock()
		delete(c.flights, hash)
		if f.err == nil {
			c.put(hash, f.b)
		}
		c.mu.Unlock()
		close(f.done)
		return f.b, f.err
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// put caches b; c.mu is held.
func (c *Client) put(hash [32]byte, b []byte) {
	n := int64(len(b))
	if n > c.cfg.CacheBytes/4 {
		return
	}
	if _, ok := c.cache[hash]; ok {
		return
	}
	c.cache[hash] = c.lru.PushFront(&cached{hash: hash, b: b})
	c.cached += n
	for c.cached > c.cfg.CacheBytes {
		el := c.lru.Back()
		old := el.Value.(*cached)
		c.lru.Remove(el)
		delete(c.cache, old.hash)
		c.cached -= int64(len(old.b))
	}
}

func (c *Client) fetchFile(ctx context.Context, site keys.IdentityPublicKey, e Entry) ([]byte, error) {
	path := "/v1/blob/" + hex.EncodeToString(e.Hash[:])
	for _, h := range c.hosts(ctx, site) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b, err := c.get(ctx, h, path, int64(e.Size))
		if err != nil {
			c.stats.hostFail.Add(1)
			c.logf("sites: a host failed for a file: %v", err)
			continue
		}
		if err := CheckFile(e, b); err != nil {
			c.stats.tampered.Add(1)
			c.markBad(site, h)
			c.logf("sites: a host served a tampered file; skipping it for %v", BadHostTime)
			continue
		}
		c.stats.fromHosts.Add(1)
		return b, nil
	}
	b, err := c.env.GetBlob(ctx, e.Hash)
	if err == nil {
		if err = CheckFile(e, b); err == nil {
			c.stats.dht.Add(1)
			return b, nil
		}
	}
	if isCtxErr(err) && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%w (file; DHT: %v)", ErrUnavailable, redact(err))
}

func (c *Client) markBad(site keys.IdentityPublicKey, h keys.ServicePublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.site(site).bad[h] = c.now().Add(BadHostTime)
}

// hosts returns at most MaxHosts of site's hosts not marked bad, in
// random order. The list is looked up at most once per PointerTTL.
func (c *Client) hosts(ctx context.Context, site keys.IdentityPublicKey) []keys.ServicePublicKey {
	c.mu.Lock()
	st := c.site(site)
	fresh := st.hostsAt != (time.Time{}) && c.now().Sub(st.hostsAt) < c.cfg.PointerTTL
	all := st.hosts
	c.mu.Unlock()
	if !fresh {
		hs, err := c.env.Hosts(ctx, site)
		if err != nil {
			c.logf("sites: host lookup failed: %v", redact(err))
		}
		c.mu.Lock()
		if err == nil {
			st.hosts, st.hostsAt = hs, c.now()
		}
		all = st.hosts
		c.mu.Unlock()
	}
	c.mu.Lock()
	now := c.now()
	out := make([]keys.ServicePublicKey, 0, len(all))
	for _, h := range all {
		if until, ok := st.bad[h]; ok {
			if now.Before(until) {
				continue
			}
			delete(st.bad, h)
		}
		out = append(out, h)
	}
	c.mu.Unlock()
	c.order(out)
	if len(out) > c.cfg.MaxHosts {
		out = out[:c.cfg.MaxHosts]
	}
	return out
}

// get fetches path from host h: a 200 answer's body, read up to limit+1
// bytes (the caller's check refuses more than limit).
func (c *Client) get(ctx context.Context, h keys.ServicePublicKey, path string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HostTimeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: h.Address() + ":80", Path: path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return nil, redact(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // so the connection can be reused
		return nil, fmt.Errorf("sites: host answered %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, redact(err)
	}
	return b, nil
}

// redact strips what an error may quote of a URL (a host's address, a
// hash): net/http's *url.Error holds the whole URL.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
