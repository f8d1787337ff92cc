package overlay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/apps/sites"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/overlay/dht"
	"github.com/darkmatter/darkmatter/overlay/onion"
)

// Timing of site hosting (spec/sites.md §5).
const (
	// SiteCheckInterval is how often a host looks for a newer manifest of
	// the sites it hosts.
	SiteCheckInterval = time.Minute
	// SiteHostRepublish is how often a host stores its host records again
	// (they live sites.HostTTL).
	SiteHostRepublish = time.Hour
	// siteKindTTL is how long a node remembers whether a key address is a
	// site or a hidden service.
	siteKindTTL = 10 * time.Minute
	// maxSiteKinds bounds the remembered kinds.
	maxSiteKinds = 4096
)

// ErrNoSiteDir is returned by HostSite when the node has neither
// Config.SiteDir nor Config.StateDir to keep the site's files in.
var ErrNoSiteDir = errors.New("overlay: hosting a site needs Config.SiteDir or Config.StateDir")

// siteState is the node's part in sites: the client that serves sites to
// the node's own streams, and, on a host, the sites it keeps and the
// hidden service it serves them on.
type siteState struct {
	// startMu serialises starting the host (siteHost), which publishes a
	// hidden service: mu is not held over that network I/O, so visits go
	// on meanwhile.
	startMu sync.Mutex
	mu      sync.Mutex // guards the following
	client  *sites.Client
	srv     *http.Server // serves sites to the node's streams (dialSite)
	ln      *pipeListener
	kinds   map[keys.ServicePublicKey]siteKind
	host    *sites.Host
	hostKey *keys.ServicePrivateKey
	hostSvc *onion.Service
	hostSrv *http.Server
	store   *sites.Store // the host's, closed with the node
	hosted  map[keys.IdentityPublicKey]bool
	stats   SiteStats
}

type siteKind struct {
	site  bool
	until time.Time
}

// SiteStats counts a host's work.
type SiteStats struct {
	Hosted    int    // sites hosted
	Syncs     uint64 // manifests taken (first copies and updates)
	SyncFails uint64 // manifests that could not be taken
}

// siteEnv gives apps/sites the node's DHT, hidden-service streams and
// delegated calls. Its DHT requests go through circuits, as name lookups
// do, so no DHT node learns which sites this node visits or hosts.
type siteEnv struct{ n *Node }

func (e siteEnv) Pointer(ctx context.Context, site keys.IdentityPublicKey) (sites.Pointer, error) {
	d, tr, _, err := e.n.nameDHT()
	if err != nil {
		return sites.Pointer{}, err
	}
	recs, err := d.GetVia(ctx, sites.TypeSite, sites.RecordKey(site), tr)
	if errors.Is(err, dht.ErrNotFound) {
		return sites.Pointer{}, sites.ErrNotFound
	}
	if err != nil {
		return sites.Pointer{}, err
	}
	var best *sites.Pointer
	for _, r := range recs {
		if r.Owner != site {
			continue
		}
		p, err := sites.ParsePointer(r.Value)
		if err != nil {
			continue
		}
		if best == nil || p.Seq > best.Seq {
			best = &p
		}
	}
	if best == nil {
		return sites.Pointer{}, sites.ErrNotFound
	}
	return *best, nil
}

func (e siteEnv) Hosts(ctx context.Context, site keys.IdentityPublicKey) ([]keys.ServicePublicKey, error) {
	d, tr, _, err := e.n.nameDHT()
	if err != nil {
		return nil, err
	}
	recs, err := d.GetVia(ctx, sites.TypeHost, sites.HostKey(site), tr)
	if err != nil && !errors.Is(err, dht.ErrNotFound) {
		return nil, err
	}
	var out []keys.ServicePublicKey
	for _, r := range recs {
		h, err := sites.HostFromDHT(r)
		if err != nil || h.Site != site {
			continue
		}
		out = append(out, h.Host)
	}
	return out, nil
}

func (e siteEnv) DialHost(ctx context.Context, host keys.ServicePublicKey) (net.Conn, error) {
	if e.n.getDHT() == nil {
		return nil, ErrNoDHT
	}
	// One isolation key for site content: these streams carry nothing of
	// the user's own and share joined circuits with each other only.
	return e.n.onionClient().Dial(ctx, host, 80, "darkmatter site hosts")
}

func (e siteEnv) GetBlob(ctx context.Context, hash [32]byte) ([]byte, error) {
	return e.n.GetBlob(ctx, hash)
}

func (e siteEnv) Call(ctx context.Context, module [32]byte, function string, input []byte) ([]byte, error) {
	return e.n.Call(ctx, module, function, input)
}

// SiteClient returns the node's site client, which fetches, verifies and
// caches the sites the node's streams visit.
func (n *Node) SiteClient() *sites.Client {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = sites.NewClient(siteEnv{n}, sites.ClientConfig{Network: n.cfg.Network, Logf: n.logf.Printf})
	}
	return s.client
}

// PublishSite signs m (its Site must be key's public key) and stores the
// encoded manifest and every file as blobs (spec/compute.md §2), then the
// site's pointer record (spec/sites.md §3), so that hosts can take the
// site and clients find it. files maps each manifest path to its content.
// It returns the pointer.
func (n *Node) PublishSite(ctx context.Context, key *keys.IdentityPrivateKey, files map[string][]byte, m *sites.Manifest) (sites.Pointer, error) {
	if m.Site != key.Public() {
		return sites.Pointer{}, errors.New("overlay: publish site: the manifest names another site key")
	}
	enc, err := m.Sign(n.cfg.Network, key)
	if err != nil {
		return sites.Pointer{}, err
	}
	for _, e := range m.Files {
		content, ok := files[e.Path]
		if !ok {
			return sites.Pointer{}, errors.New("overlay: publish site: a file of the manifest is missing")
		}
		if err := sites.CheckFile(e, content); err != nil {
			return sites.Pointer{}, err
		}
	}
	// The files, then the manifest, then the pointer: a client that finds
	// the pointer finds what it names.
	for _, e := range m.Files {
		if _, err := n.PutBlob(ctx, files[e.Path]); err != nil {
			return sites.Pointer{}, fmt.Errorf("overlay: publish site: store a file: %w", err)
		}
	}
	if _, err := n.PutBlob(ctx, enc); err != nil {
		return sites.Pointer{}, fmt.Errorf("overlay: publish site: store the manifest: %w", err)
	}
	p := sites.PointerFor(m, enc)
	r := sites.Record(key.Public(), p, time.Now().Add(sites.RecordTTL))
	if err := r.Sign(n.cfg.Network, key); err != nil {
		return sites.Pointer{}, err
	}
	d, tr, _, err := n.nameDHT()
	if err != nil {
		return sites.Pointer{}, err
	}
	if _, err := d.PutVia(ctx, r, tr); err != nil {
		return sites.Pointer{}, fmt.Errorf("overlay: publish site: store the pointer: %w", err)
	}
	return p, nil
}

// HostSite makes the node keep a copy of site and serve it to clients
// (spec/sites.md §5, §6): it takes the newest manifest and every file,
// verified, into Config.SiteDir, serves them on the node's host service
// (a hidden service under a key kept in the state directory), stores a
// host record so that clients find it, and from then on takes newer
// manifests as the site's owner publishes them. It returns once the first
// copy is complete. Sites hosted before a restart are served again by
// the first HostSite call.
func (n *Node) HostSite(ctx context.Context, site keys.IdentityPublicKey) error {
	if n.isClosed() {
		return ErrClosed
	}
	h, err := n.siteHost(ctx)
	if err != nil {
		return err
	}
	if err := n.syncSite(ctx, h, site); err != nil {
		return err
	}
	s := &n.sites
	s.mu.Lock()
	first := !s.hosted[site]
	s.hosted[site] = true
	s.stats.Hosted = len(s.hosted)
	s.mu.Unlock()
	if err := n.announceHost(ctx, site); err != nil {
		return err
	}
	if first {
		n.goFunc(func() { n.watchSite(site) })
	}
	return nil
}

// HostedSites returns the sites the node hosts.
func (n *Node) HostedSites() []keys.IdentityPublicKey {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]keys.IdentityPublicKey, 0, len(s.hosted))
	for k := range s.hosted {
		out = append(out, k)
	}
	return out
}

// SiteStats returns the node's site hosting counters.
func (n *Node) SiteStats() SiteStats {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SiteHost returns the address of the node's host service, "" before it
// hosts a site.
func (n *Node) SiteHost() string {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hostKey == nil || s.hostSvc == nil {
		return ""
	}
	return s.hostKey.Public().Address()
}

// siteHost returns the node's host, starting its store and service on
// first use.
func (n *Node) siteHost(ctx context.Context) (*sites.Host, error) {
	s := &n.sites
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	host := s.host
	s.mu.Unlock()
	if host != nil {
		return host, nil
	}
	dir := n.cfg.SiteDir
	if dir == "" {
		if n.cfg.StateDir == "" {
			return nil, ErrNoSiteDir
		}
		dir = filepath.Join(n.cfg.StateDir, "sites")
	}
	store, err := sites.OpenStore(dir)
	if err != nil {
		return nil, err
	}
	host = sites.NewHost(store, n.cfg.Network)
	if err := host.Load(); err != nil {
		n.logf.Printf("overlay: sites kept before could not all be loaded: %v", err)
	}
	key, err := n.siteHostKey()
	if err != nil {
		store.Close()
		return nil, err
	}
	svc, err := n.ListenService(ctx, ServiceConfig{Key: key, Ports: []uint16{80}})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("overlay: host service: %w", err)
	}
	srv := &http.Server{Handler: host, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: quietLog}
	n.goFunc(func() { srv.Serve(svc) })
	s.mu.Lock()
	s.host, s.hostKey, s.hostSvc, s.hostSrv, s.store = host, key, svc, srv, store
	if s.hosted == nil {
		s.hosted = make(map[keys.IdentityPublicKey]bool)
	}
	s.mu.Unlock()
	return host, nil
}

// siteHostKey returns the key of the node's host service: kept in the
// state directory so that a restarted host keeps its address, fresh
// otherwise.
func (n *Node) siteHostKey() (*keys.ServicePrivateKey, error) {
	if n.cfg.StateDir == "" {
		return keys.GenerateService(nil)
	}
	path := filepath.Join(n.cfg.StateDir, "site-host.key")
	k, err := keys.LoadServiceFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if k, err = keys.GenerateService(nil); err != nil {
		return nil, err
	}
	if err := keys.WriteFile(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

// syncSite takes the newest manifest of site into h, fetching what is
// missing from the DHT, then from other hosts.
func (n *Node) syncSite(ctx context.Context, h *sites.Host, site keys.IdentityPublicKey) error {
	c := n.SiteClient()
	m, err := c.Latest(ctx, site)
	if err == nil {
		if cur, _, ok := h.Manifest(site); ok && cur.Seq >= m.Seq {
			return nil
		}
		var enc []byte
		if enc, err = m.Marshal(); err == nil {
			files := make(map[[32]byte]sites.Entry, len(m.Files))
			for _, e := range m.Files {
				files[e.Hash] = e
			}
			_, err = h.Sync(ctx, enc, func(ctx context.Context, hash [32]byte) ([]byte, error) {
				e, ok := files[hash]
				if !ok {
					return nil, errors.New("overlay: not a file of the manifest")
				}
				return c.File(ctx, site, e)
			})
			if errors.Is(err, sites.ErrOld) {
				err = nil
			}
		}
	}
	s := &n.sites
	s.mu.Lock()
	if err != nil {
		s.stats.SyncFails++
	} else {
		s.stats.Syncs++
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("overlay: host site: %w", err)
	}
	return nil
}

// announceHost stores the node's host record of site with a fresh expiry.
func (n *Node) announceHost(ctx context.Context, site keys.IdentityPublicKey) error {
	s := &n.sites
	s.mu.Lock()
	host, key := s.host, s.hostKey
	s.mu.Unlock()
	m, _, ok := host.Manifest(site)
	if !ok {
		return errors.New("overlay: host site: no manifest held")
	}
	now := time.Now()
	r, err := sites.HostRecord{Site: site, Host: key.Public(), Seq: m.Seq}.DHTRecord(n.cfg.Network, key, uint64(now.UnixNano()), now.Add(sites.HostTTL))
	if err != nil {
		return err
	}
	d, tr, _, err := n.nameDHT()
	if err != nil {
		return err
	}
	if _, err := d.PutVia(ctx, r, tr); err != nil {
		return fmt.Errorf("overlay: host site: store the host record: %w", err)
	}
	return nil
}

// watchSite takes newer manifests of a hosted site and keeps its host
// record stored, until the node closes.
func (n *Node) watchSite(site keys.IdentityPublicKey) {
	check := time.NewTicker(n.cfg.SiteCheckInterval)
	defer check.Stop()
	announced := time.Now()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-check.C:
		}
		s := &n.sites
		s.mu.Lock()
		host := s.host
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Minute)
		before, _, _ := host.Manifest(site)
		if err := n.syncSite(ctx, host, site); err != nil {
			n.logf.Printf("overlay: a hosted site could not be updated: %v", err)
		}
		after, _, _ := host.Manifest(site)
		if after != before || time.Since(announced) >= SiteHostRepublish {
			if err := n.announceHost(ctx, site); err != nil {
				n.logf.Printf("overlay: a host record could not be stored: %v", err)
			} else {
				announced = time.Now()
			}
		}
		cancel()
	}
}

// dialSite returns a stream on which the node itself serves site over
// HTTP: every file verified against the signed manifest, handlers run as
// delegated calls (spec/sites.md §7).
func (n *Node) dialSite(ctx context.Context, site keys.IdentityPublicKey, port string) (net.Conn, error) {
	if port != "80" {
		return nil, fmt.Errorf("%w: a site answers on port 80 only", ErrBadAddress)
	}
	c := n.SiteClient()
	s := &n.sites
	s.mu.Lock()
	if s.srv == nil {
		s.ln = newPipeListener()
		s.srv = &http.Server{
			Handler:           siteMux{c},
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          quietLog,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if sc, ok := c.(siteConn); ok {
					return context.WithValue(ctx, siteCtxKey{}, sc.site)
				}
				return ctx
			},
		}
		srv, ln := s.srv, s.ln
		n.goFunc(func() { srv.Serve(ln) })
	}
	ln := s.ln
	s.mu.Unlock()
	client, server := net.Pipe()
	if err := ln.push(ctx, siteConn{server, site}); err != nil {
		client.Close()
		server.Close()
		return nil, err
	}
	return client, nil
}

// siteConn is the server end of a stream to a site.
type siteConn struct {
	net.Conn
	site keys.IdentityPublicKey
}

type siteCtxKey struct{}

// quietLog drops net/http's own log lines, which could name what a
// stream asked for.
var quietLog = log.New(io.Discard, "", 0)

// siteMux serves each stream the site it was opened to.
type siteMux struct{ c *sites.Client }

func (m siteMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	site, ok := r.Context().Value(siteCtxKey{}).(keys.IdentityPublicKey)
	if !ok {
		http.Error(w, "no site", http.StatusInternalServerError)
		return
	}
	m.c.Handler(site).ServeHTTP(w, r)
}

// pipeListener hands in-process streams to an http.Server.
type pipeListener struct {
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) push(ctx context.Context, c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "sites" }

// dialDark opens a stream to a key address: a site when the key has a
// site pointer and the port is 80, else a hidden service. The node
// remembers which it was for siteKindTTL; the first time, it looks for
// both at once and takes whichever is found.
func (n *Node) dialDark(ctx context.Context, key keys.ServicePublicKey, port, isolation string) (net.Conn, error) {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: port %q", ErrBadAddress, port)
	}
	if n.getDHT() == nil {
		return nil, ErrNoDHT
	}
	dialService := func(ctx context.Context) (net.Conn, error) {
		return n.onionClient().Dial(ctx, key, uint16(p), isolation)
	}
	if p != 80 {
		return dialService(ctx)
	}
	site := keys.IdentityPublicKey(key)
	if isSite, known := n.siteKind(key); known {
		if isSite {
			return n.dialSite(ctx, site, port)
		}
		return dialService(ctx)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	sctx, cancelSite := context.WithCancel(ctx)
	defer cancelSite()
	hctx, cancelService := context.WithCancel(ctx)
	defer cancelService()
	siteDone := make(chan error, 1)
	go func() {
		_, err := n.SiteClient().Manifest(sctx, site)
		siteDone <- err
	}()
	svcDone := make(chan result, 1)
	go func() {
		c, err := dialService(hctx)
		svcDone <- result{c, err}
	}()
	var siteErr, svcErr error
	for siteDone != nil || svcDone != nil {
		select {
		case err := <-siteDone:
			siteDone = nil
			if err == nil {
				cancelService()
				if svcDone != nil {
					if r := <-svcDone; r.conn != nil {
						r.conn.Close()
					}
				}
				n.setSiteKind(key, true)
				return n.dialSite(ctx, site, port)
			}
			siteErr = err
		case r := <-svcDone:
			svcDone = nil
			if r.err == nil {
				cancelSite()
				n.setSiteKind(key, false)
				return r.conn, nil
			}
			svcErr = r.err
		}
	}
	// Neither: the hidden service's error says more, unless the service
	// was not found and the site was, but its manifest failed.
	if errors.Is(siteErr, sites.ErrNotFound) || siteErr == nil {
		return nil, svcErr
	}
	if errors.Is(svcErr, onion.ErrDescriptorNotFound) {
		return nil, siteErr
	}
	return nil, svcErr
}

func (n *Node) siteKind(key keys.ServicePublicKey) (isSite, known bool) {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.kinds[key]
	if !ok || time.Now().After(k.until) {
		return false, false
	}
	return k.site, true
}

func (n *Node) setSiteKind(key keys.ServicePublicKey, site bool) {
	s := &n.sites
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = make(map[keys.ServicePublicKey]siteKind)
	}
	if len(s.kinds) >= maxSiteKinds {
		clear(s.kinds)
	}
	s.kinds[key] = siteKind{site: site, until: time.Now().Add(siteKindTTL)}
}

// dialName opens a stream to a name (spec/names.md): the site or hidden
// service its record points to.
func (n *Node) dialName(ctx context.Context, host, port, isolation string) (net.Conn, error) {
	name, err := specialname.Name(host)
	if err != nil {
		return nil, err
	}
	rec, err := n.ResolveName(ctx, name)
	if errors.Is(err, names.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", specialname.ErrNameNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range rec.Entries {
		if k, ok := e.Site(); ok {
			n.setSiteKind(keys.ServicePublicKey(k), true)
			return n.dialSite(ctx, k, port)
		}
	}
	for _, e := range rec.Entries {
		if addr, ok := e.Address(); ok {
			k, err := keys.ParseAddress(addr)
			if err != nil {
				return nil, err
			}
			return n.dialDark(ctx, k, port, isolation)
		}
	}
	return nil, fmt.Errorf("%w: the name points to no site or address", specialname.ErrNameNotFound)
}

// closeSites stops serving sites: the node's own streams to sites and,
// on a host, its host service.
func (n *Node) closeSites() {
	s := &n.sites
	s.mu.Lock()
	srv, ln, hostSrv, hostSvc, c, store := s.srv, s.ln, s.hostSrv, s.hostSvc, s.client, s.store
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if srv != nil {
		srv.Close()
	}
	if hostSrv != nil {
		hostSrv.Close()
	}
	if hostSvc != nil {
		hostSvc.Close()
	}
	if c != nil {
		c.Close()
	}
	if store != nil {
		store.Close()
	}
}
