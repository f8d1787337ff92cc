package sites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Host protocol (spec/sites.md §6).
const (
	// BlobPath starts the request path of a blob: BlobPath + 64 lowercase
	// hex digits of its SHA-256.
	BlobPath = "/v1/blob/"
	// SitePath starts the request path of a site's manifest: SitePath + 64
	// lowercase hex digits of the site key.
	SitePath = "/v1/site/"
)

// Implementation constants of Host.
const (
	// indexName is the file in the store's directory that lists the sites
	// held: one line "<site key hex> <manifest hash hex>" per site.
	indexName = "sites.idx"
	// maxIndexSize bounds the index Load reads.
	maxIndexSize = 16 << 20
	// syncFetches is how many blobs Sync fetches at once.
	syncFetches = 4
)

// ErrOld is returned by Sync for a manifest whose seq is not higher than
// the one held for its site (unless it is the same manifest).
var ErrOld = errors.New("sites: manifest is not newer than the one held")

// Host holds the sites a node hosts (their manifests and files, in a
// Store) and serves their blobs over the host protocol (ServeHTTP). It is
// safe for concurrent use; Sync, Remove and Load run one at a time.
type Host struct {
	store   *Store
	network string

	// wmu serialises the writers (Sync, Remove, Load), so a blob one of
	// them fetched is never removed by another before its switch.
	wmu sync.Mutex

	mu    sync.RWMutex // guards the following
	sites map[keys.IdentityPublicKey]*hosted
	refs  map[[32]byte]int // blob hash → sites whose files or manifest it is
}

// hosted is a site a Host holds.
type hosted struct {
	m     *Manifest
	enc   []byte                // the encoded signed manifest
	hash  [32]byte              // SHA-256(enc): the manifest's blob hash
	blobs map[[32]byte]struct{} // the files' hashes and hash
}

func newHosted(m *Manifest, enc []byte) *hosted {
	h := &hosted{m: m, enc: enc, hash: sha256.Sum256(enc), blobs: make(map[[32]byte]struct{}, len(m.Files)+1)}
	for _, e := range m.Files {
		h.blobs[e.Hash] = struct{}{}
	}
	h.blobs[h.hash] = struct{}{}
	return h
}

// NewHost returns a host of no site that keeps blobs in store and accepts
// manifests signed for network. Load adds the sites store held before.
func NewHost(store *Store, network string) *Host {
	return &Host{store: store, network: network, sites: make(map[keys.IdentityPublicKey]*hosted), refs: make(map[[32]byte]int)}
}

// Sync makes h host the signed manifest encoded (of any site, signed for
// h's network) and its files. It refuses a manifest whose seq is not
// higher than the one held for its site (ErrOld; the same manifest again
// is a no-op success). It fetches every file blob the store lacks with
// fetch, at most 4 at once, checks each with CheckFile before storing it,
// stores the manifest, and only then switches the site to it: until Sync
// returns nil, the previous manifest (if any) is the one served, and
// readers never see a half-synced site. Blobs of the previous manifest
// that no held site uses any more are removed after the switch.
func (h *Host) Sync(ctx context.Context, encoded []byte, fetch func(ctx context.Context, hash [32]byte) ([]byte, error)) (*Manifest, error) {
	m, err := Parse(encoded)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(h.network); err != nil {
		return nil, err
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.RLock()
	cur := h.sites[m.Site]
	h.mu.RUnlock()
	if cur != nil {
		if m.Seq == cur.m.Seq && bytes.Equal(encoded, cur.enc) {
			return cur.m, nil
		}
		if m.Seq <= cur.m.Seq {
			return nil, fmt.Errorf("%w: seq %d, holding %d", ErrOld, m.Seq, cur.m.Seq)
		}
	}
	enc := bytes.Clone(encoded)
	if err := h.fetchMissing(ctx, m, fetch); err != nil {
		return nil, err
	}
	if _, err := h.store.Put(enc); err != nil {
		return nil, err
	}
	next := newHosted(m, enc)
	if err := h.writeIndex(m.Site, next); err != nil {
		return nil, err
	}
	h.switchSite(m.Site, next)
	return m, nil
}

// fetchMissing fetches, checks and stores the files of m the store lacks.
func (h *Host) fetchMissing(ctx context.Context, m *Manifest, fetch func(ctx context.Context, hash [32]byte) ([]byte, error)) error {
	var todo []int // indexes into m.Files, one per missing hash
	seen := make(map[[32]byte]bool)
	for i, e := range m.Files {
		if !seen[e.Hash] && !h.store.Has(e.Hash) {
			todo = append(todo, i)
		}
		seen[e.Hash] = true
	}
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, syncFetches)
	)
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
loop:
	for _, i := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.fetchFile(ctx, m.Files[i], fetch); err != nil {
				fail(fmt.Errorf("sites: sync: file %d of %d: %w", i+1, len(m.Files), err))
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sites: sync: %w", err)
	}
	return nil
}

// fetchFile fetches one file, checks it against its entry and stores it.
func (h *Host) fetchFile(ctx context.Context, e Entry, fetch func(ctx context.Context, hash [32]byte) ([]byte, error)) error {
	b, err := fetch(ctx, e.Hash)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := CheckFile(e, b); err != nil {
		return err
	}
	_, err = h.store.Put(b)
	return err
}

// switchSite makes next the manifest held for site (nil: none), then
// removes the blobs no held site uses any more. The caller holds wmu.
func (h *Host) switchSite(site keys.IdentityPublicKey, next *hosted) {
	var unused [][32]byte
	h.mu.Lock()
	old := h.sites[site]
	if next != nil {
		h.sites[site] = next
		for b := range next.blobs {
			h.refs[b]++
		}
	} else {
		delete(h.sites, site)
	}
	if old != nil {
		for b := range old.blobs {
			if h.refs[b]--; h.refs[b] <= 0 {
				delete(h.refs, b)
				unused = append(unused, b)
			}
		}
	}
	h.mu.Unlock()
	for _, b := range unused {
		_ = h.store.Remove(b) // a blob left behind is only disk space
	}
}

// Remove stops hosting site and removes the blobs no other held site uses.
func (h *Host) Remove(site keys.IdentityPublicKey) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.mu.RLock()
	_, ok := h.sites[site]
	h.mu.RUnlock()
	if !ok {
		return nil
	}
	if err := h.writeIndex(site, nil); err != nil {
		return err
	}
	h.switchSite(site, nil)
	return nil
}

// Manifest returns the manifest held for site and its encoding, which the
// caller must not modify.
func (h *Host) Manifest(site keys.IdentityPublicKey) (*Manifest, []byte, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.sites[site]
	if !ok {
		return nil, nil, false
	}
	return s.m, s.enc, true
}

// Sites returns the site keys held, sorted.
func (h *Host) Sites() []keys.IdentityPublicKey {
	h.mu.RLock()
	out := make([]keys.IdentityPublicKey, 0, len(h.sites))
	for k := range h.sites {
		out = append(out, k)
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b keys.IdentityPublicKey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// writeIndex writes the index of the sites held with site's entry set to
// next (nil: removed). The caller holds wmu.
func (h *Host) writeIndex(site keys.IdentityPublicKey, next *hosted) error {
	idx := make(map[keys.IdentityPublicKey][32]byte)
	h.mu.RLock()
	for k, s := range h.sites {
		idx[k] = s.hash
	}
	h.mu.RUnlock()
	if next != nil {
		idx[site] = next.hash
	} else {
		delete(idx, site)
	}
	sites := slices.SortedFunc(func(yield func(keys.IdentityPublicKey) bool) {
		for k := range idx {
			if !yield(k) {
				return
			}
		}
	}, func(a, b keys.IdentityPublicKey) int { return bytes.Compare(a[:], b[:]) })
	var b strings.Builder
	for _, k := range sites {
		hash := idx[k]
		b.WriteString(hex.EncodeToString(k[:]))
		b.WriteByte(' ')
		b.WriteString(hex.EncodeToString(hash[:]))
		b.WriteByte('\n')
	}
	return h.store.writeFile(indexName, []byte(b.String()))
}

// Load adds the sites listed in the store's index (what h hosted before a
// restart): for each, the manifest must be in the store, match its hash,
// verify for h's network and be of the listed site key, and every file
// blob must be present. Sites that fail are left out (and dropped from
// the index at the next write); the error joins their failures. A missing
// index is no site.
func (h *Host) Load() error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	raw, err := h.store.readFile(indexName, maxIndexSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for n, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if line == "" {
			continue
		}
		site, hash, ok := parseIndexLine(line)
		if !ok {
			errs = append(errs, fmt.Errorf("sites: index line %d malformed", n+1))
			continue
		}
		s, err := h.loadSite(site, hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("index line %d: %w", n+1, err))
			continue
		}
		h.mu.RLock()
		cur := h.sites[site]
		h.mu.RUnlock()
		if cur != nil && cur.m.Seq >= s.m.Seq {
			continue
		}
		h.switchSite(site, s)
	}
	return errors.Join(errs...)
}

// loadSite reads and checks the manifest hash of site from the store.
func (h *Host) loadSite(site keys.IdentityPublicKey, hash [32]byte) (*hosted, error) {
	enc, err := h.store.Get(hash)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(enc) != hash {
		return nil, errors.New("sites: stored manifest does not match its hash")
	}
	m, err := Parse(enc)
	if err != nil {
		return nil, err
	}
	if m.Site != site {
		return nil, errors.New("sites: stored manifest of another site key")
	}
	if err := m.Verify(h.network); err != nil {
		return nil, err
	}
	for i, e := range m.Files {
		if !h.store.Has(e.Hash) {
			return nil, fmt.Errorf("sites: file %d of %d missing from the store", i+1, len(m.Files))
		}
	}
	return newHosted(m, enc), nil
}

func parseIndexLine(line string) (keys.IdentityPublicKey, [32]byte, bool) {
	a, b, ok := strings.Cut(line, " ")
	if !ok {
		return keys.IdentityPublicKey{}, [32]byte{}, false
	}
	site, ok1 := parseHash(a)
	hash, ok2 := parseHash(b)
	return keys.IdentityPublicKey(site), hash, ok1 && ok2
}

// ServeHTTP answers the host protocol (spec/sites.md §6):
//
//	GET /v1/blob/<hash>      the blob, if it is a file or the manifest of a held site
//	GET /v1/site/<site key>  the signed manifest held for the site
//
// with 64 lowercase hex digits. HEAD is answered like GET without a body;
// other methods get 405, other paths and anything not held 404. Bodies
// never echo the request. Blobs are served as they are on disk: the
// client checks them.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.RawPath != "" || r.URL.RawQuery != "" || r.URL.ForceQuery {
		http.NotFound(w, r)
		return
	}
	p := r.URL.Path
	var (
		body  []byte
		found bool
	)
	switch {
	case strings.HasPrefix(p, BlobPath):
		hash, ok := parseHash(p[len(BlobPath):])
		if !ok {
			break
		}
		h.mu.RLock()
		held := h.refs[hash] > 0
		h.mu.RUnlock()
		if !held {
			break
		}
		b, err := h.store.Get(hash)
		if errors.Is(err, fs.ErrNotExist) {
			break // removed since: no longer held
		}
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		body, found = b, true
	case strings.HasPrefix(p, SitePath):
		site, ok := parseHash(p[len(SitePath):])
		if !ok {
			break
		}
		h.mu.RLock()
		s := h.sites[keys.IdentityPublicKey(site)]
		h.mu.RUnlock()
		if s != nil {
			body, found = s.enc, true
		}
	}
	if !found {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
