package sites

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// testSite is a signed site and the content of its files: what a
// publisher offers and fetch reads.
type testSite struct {
	m     *Manifest
	enc   []byte
	files map[[32]byte][]byte
}

// newTestSite signs a manifest of files (path → content) at seq with key.
func newTestSite(t testing.TB, key *keys.IdentityPrivateKey, seq uint64, files map[string]string) *testSite {
	t.Helper()
	s := &testSite{m: &Manifest{Seq: seq, Created: 1767225600}, files: make(map[[32]byte][]byte)}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		e := entry(p, files[p], "text/plain; charset=utf-8")
		s.m.Files = append(s.m.Files, e)
		s.files[e.Hash] = []byte(files[p])
	}
	enc, err := s.m.Sign(testNet, key)
	if err != nil {
		t.Fatal(err)
	}
	s.enc = enc
	return s
}

// fetch serves the site's files and counts the calls.
func (s *testSite) fetch(calls *atomic.Int64) func(context.Context, [32]byte) ([]byte, error) {
	return func(_ context.Context, h [32]byte) ([]byte, error) {
		if calls != nil {
			calls.Add(1)
		}
		b, ok := s.files[h]
		if !ok {
			return nil, errors.New("no such blob")
		}
		return bytes.Clone(b), nil
	}
}

func newTestHost(t *testing.T) (*Host, string) {
	t.Helper()
	dir := t.TempDir()
	return NewHost(openStore(t, dir), testNet), dir
}

// get requests path from srv and returns the status and body.
func hostGet(t *testing.T, srv *httptest.Server, method, path string) (int, http.Header, []byte) {
	t.Helper()
	code, hd, b, err := request(srv, method, path)
	if err != nil {
		t.Fatal(err)
	}
	return code, hd, b
}

func request(srv *httptest.Server, method, path string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func blobURL(h [32]byte) string { return BlobPath + hex.EncodeToString(h[:]) }

func siteURL(k keys.IdentityPublicKey) string { return SitePath + hex.EncodeToString(k[:]) }

func TestHostSyncAndServe(t *testing.T) {
	h, _ := newTestHost(t)
	site := newTestSite(t, testKey(1), 1, map[string]string{"/index.html": "home", "/a.txt": "a", "/empty": "", "/same": "a"})
	var calls atomic.Int64
	m, err := h.Sync(t.Context(), site.enc, site.fetch(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 1 || calls.Load() != 3 { // "/a.txt" and "/same" share a blob
		t.Fatalf("seq %d, %d fetches", m.Seq, calls.Load())
	}
	if got, enc, ok := h.Manifest(m.Site); !ok || got.Seq != 1 || !bytes.Equal(enc, site.enc) {
		t.Fatal("Manifest")
	}
	if s := h.Sites(); len(s) != 1 || s[0] != m.Site {
		t.Fatalf("Sites = %v", s)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, e := range m.Files {
		code, hd, body := hostGet(t, srv, http.MethodGet, blobURL(e.Hash))
		if code != http.StatusOK || hd.Get("Content-Type") != "application/octet-stream" ||
			hd.Get("Content-Length") != fmt.Sprint(e.Size) || CheckFile(e, body) != nil {
			t.Fatalf("%s: %d %v %q", e.Path, code, hd, body)
		}
		code, hd, body = hostGet(t, srv, http.MethodHead, blobURL(e.Hash))
		if code != http.StatusOK || len(body) != 0 || hd.Get("Content-Length") != fmt.Sprint(e.Size) {
			t.Fatalf("HEAD %s: %d %v %d bytes", e.Path, code, hd, len(body))
		}
	}
	// The manifest: by its blob hash and by the site key.
	if code, _, body := hostGet(t, srv, http.MethodGet, blobURL(sha256.Sum256(site.enc))); code != 200 || !bytes.Equal(body, site.enc) {
		t.Fatalf("manifest blob: %d", code)
	}
	code, _, body := hostGet(t, srv, http.MethodGet, siteURL(m.Site))
	if code != 200 {
		t.Fatalf("site: %d", code)
	}
	if _, err := PointerFor(m, site.enc).CheckManifest(testNet, m.Site, body); err != nil {
		t.Fatal(err)
	}

	// A blob in the store that no held site lists is not served.
	stray, _ := h.store.Put([]byte("not a file of any site"))
	hexSite := hex.EncodeToString(m.Site[:])
	hexFile := hex.EncodeToString(m.Files[0].Hash[:])
	for _, p := range []string{
		blobURL(stray), siteURL(testKey(2).Public()), "/", "/v1/", "/v1/blob/", "/v1/site/",
		BlobPath + strings.ToUpper(hexFile), BlobPath + hexFile + "/", BlobPath + hexFile + "?x=1", BlobPath + hexFile[:63],
		SitePath + hexSite + "/index.html", "/v1/blob/../site/" + hexSite, "/v2/blob/" + hexFile, BlobPath + "%30" + hexFile[1:],
		"/v1/blob/<script>" + hexFile,
	} {
		code, _, body := hostGet(t, srv, http.MethodGet, p)
		if code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
		if bytes.Contains(body, []byte("script")) || bytes.Contains(body, []byte(hexFile[:16])) || bytes.Contains(body, []byte(hexSite[:16])) {
			t.Errorf("%s: body echoes the request: %q", p, body)
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "OPTIONS"} {
		if code, hd, _ := hostGet(t, srv, method, blobURL(m.Files[0].Hash)); code != http.StatusMethodNotAllowed || hd.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v", method, code, hd)
		}
	}
}

func TestHostSyncRefuses(t *testing.T) {
	h, _ := newTestHost(t)
	site := newTestSite(t, testKey(1), 5, map[string]string{"/index.html": "v5"})
	if _, err := h.Sync(t.Context(), site.enc, site.fetch(nil)); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	// The same manifest again: a no-op.
	if _, err := h.Sync(t.Context(), site.enc, site.fetch(&calls)); err != nil || calls.Load() != 0 {
		t.Fatalf("same manifest: %v, %d fetches", err, calls.Load())
	}
	older := newTestSite(t, testKey(1), 4, map[string]string{"/index.html": "v4"})
	same := newTestSite(t, testKey(1), 5, map[string]string{"/index.html": "other v5"})
	for name, enc := range map[string][]byte{"older": older.enc, "same seq": same.enc} {
		if _, err := h.Sync(t.Context(), enc, older.fetch(&calls)); !errors.Is(err, ErrOld) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if calls.Load() != 0 {
		t.Fatal("fetched for a refused manifest")
	}
	// Tampered, another network's, garbage.
	bad := bytes.Clone(site.enc)
	bad[len(bad)-1] ^= 1
	other := &Manifest{Seq: 9, Files: site.m.Files}
	otherEnc, _ := other.Sign("othernet", testKey(1))
	for name, enc := range map[string][]byte{"bad signature": bad, "other network": otherEnc, "garbage": []byte("x")} {
		if _, err := h.Sync(t.Context(), enc, site.fetch(nil)); err == nil || errors.Is(err, ErrOld) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if m, _, _ := h.Manifest(site.m.Site); m.Seq != 5 {
		t.Fatalf("seq %d", m.Seq)
	}
}

// A fetch that returns a tampered file fails Sync without naming the
// path, and the previous manifest stays the one served.
func TestHostSyncBadFileKeepsOld(t *testing.T) {
	h, _ := newTestHost(t)
	v1 := newTestSite(t, testKey(1), 1, map[string]string{"/index.html": "v1", "/secret-name.txt": "s"})
	if _, err := h.Sync(t.Context(), v1.enc, v1.fetch(nil)); err != nil {
		t.Fatal(err)
	}
	v2 := newTestSite(t, testKey(1), 2, map[string]string{"/index.html": "v2", "/secret-name.txt": "s2"})
	tampering := func(ctx context.Context, hash [32]byte) ([]byte, error) {
		b, err := v2.fetch(nil)(ctx, hash)
		if string(b) == "s2" {
			b = []byte("s3")
		}
		return b, err
	}
	_, err := h.Sync(t.Context(), v2.enc, tampering)
	if err == nil || errors.Is(err, ErrOld) {
		t.Fatalf("tampered file: %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secret-name") || strings.Contains(msg, "s3") || !strings.Contains(msg, "of 2") {
		t.Fatalf("error %q", msg)
	}
	failing := func(context.Context, [32]byte) ([]byte, error) { return nil, errors.New("unreachable") }
	if _, err := h.Sync(t.Context(), v2.enc, failing); err == nil {
		t.Fatal("Sync with failing fetch")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Sync(ctx, v2.enc, v2.fetch(nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, _, body := hostGet(t, srv, http.MethodGet, siteURL(v1.m.Site)); code != 200 || !bytes.Equal(body, v1.enc) {
		t.Fatalf("after failures the site serves %d", code)
	}
	for _, e := range v1.m.Files {
		if code, _, _ := hostGet(t, srv, http.MethodGet, blobURL(e.Hash)); code != 200 {
			t.Fatalf("%s: %d", e.Path, code)
		}
	}
	// v2's new index.html was fetched and checked but is not served: v2
	// is not held.
	if code, _, _ := hostGet(t, srv, http.MethodGet, blobURL(sha256.Sum256([]byte("v2")))); code != 404 {
		t.Fatalf("half-synced blob served: %d", code)
	}
}

// An update replaces the manifest and removes the blobs no held site
// uses; blobs shared with another site stay.
func TestHostUpdateAndRemove(t *testing.T) {
	h, dir := newTestHost(t)
	a1 := newTestSite(t, testKey(1), 1, map[string]string{"/index.html": "a1", "/shared.css": "shared", "/kept": "kept"})
	b1 := newTestSite(t, testKey(2), 1, map[string]string{"/index.html": "b1", "/style.css": "shared"})
	for _, s := range []*testSite{a1, b1} {
		if _, err := h.Sync(t.Context(), s.enc, s.fetch(nil)); err != nil {
			t.Fatal(err)
		}
	}
	a2 := newTestSite(t, testKey(1), 2, map[string]string{"/index.html": "a2", "/kept": "kept"})
	var calls atomic.Int64
	if _, err := h.Sync(t.Context(), a2.enc, a2.fetch(&calls)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d fetches, want 1 (only the changed file)", calls.Load())
	}
	has := func(content string) bool { return h.store.Has(sha256.Sum256([]byte(content))) }
	if has("a1") || !has("a2") || !has("kept") || !has("shared") || !has("b1") {
		t.Fatal("blobs after update")
	}
	if h.store.Has(sha256.Sum256(a1.enc)) || !h.store.Has(sha256.Sum256(a2.enc)) {
		t.Fatal("manifest blobs after update")
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	if code, _, body := hostGet(t, srv, http.MethodGet, siteURL(a2.m.Site)); code != 200 || !bytes.Equal(body, a2.enc) {
		t.Fatalf("updated site: %d", code)
	}
	if code, _, _ := hostGet(t, srv, http.MethodGet, blobURL(sha256.Sum256([]byte("a1")))); code != 404 {
		t.Fatalf("old blob: %d", code)
	}

	if err := h.Remove(b1.m.Site); err != nil {
		t.Fatal(err)
	}
	if has("b1") || has("shared") || !has("a2") {
		t.Fatal("blobs after Remove")
	}
	if code, _, _ := hostGet(t, srv, http.MethodGet, siteURL(b1.m.Site)); code != 404 {
		t.Fatalf("removed site: %d", code)
	}
	if err := h.Remove(b1.m.Site); err != nil {
		t.Fatal(err)
	}
	// What remains on disk: the blobs of a2 and the index.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 { // a2, kept, a2's manifest, sites.idx
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("dir holds %v", names)
	}
}

// Load after a restart hosts the sites again; a site whose files went
// missing is left out and reported.
func TestHostLoad(t *testing.T) {
	h, dir := newTestHost(t)
	a := newTestSite(t, testKey(1), 3, map[string]string{"/index.html": "a"})
	b := newTestSite(t, testKey(2), 7, map[string]string{"/index.html": "b", "/b.txt": "bb"})
	c := newTestSite(t, testKey(3), 1, map[string]string{"/index.html": "c"})
	for _, s := range []*testSite{a, b, c} {
		if _, err := h.Sync(t.Context(), s.enc, s.fetch(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.store.Remove(sha256.Sum256([]byte("bb"))); err != nil {
		t.Fatal(err)
	}
	// c's manifest on disk is tampered with.
	mh := sha256.Sum256(c.enc)
	if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(mh[:])), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}

	h2 := NewHost(openStore(t, dir), testNet)
	err := h2.Load()
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Load: %v", err)
	}
	if s := h2.Sites(); len(s) != 1 || s[0] != a.m.Site {
		t.Fatalf("loaded %d sites", len(s))
	}
	if m, enc, ok := h2.Manifest(a.m.Site); !ok || m.Seq != 3 || !bytes.Equal(enc, a.enc) {
		t.Fatal("loaded manifest")
	}
	srv := httptest.NewServer(h2)
	defer srv.Close()
	if code, _, body := hostGet(t, srv, http.MethodGet, blobURL(sha256.Sum256([]byte("a")))); code != 200 || string(body) != "a" {
		t.Fatalf("blob after Load: %d", code)
	}
	// b syncs again, fetching only what is missing.
	var calls atomic.Int64
	if _, err := h2.Sync(t.Context(), b.enc, b.fetch(&calls)); err != nil || calls.Load() != 1 {
		t.Fatalf("resync: %v, %d fetches", err, calls.Load())
	}
	// A fresh store has no index: no site, no error.
	h3, _ := newTestHost(t)
	if err := h3.Load(); err != nil || len(h3.Sites()) != 0 {
		t.Fatalf("empty Load: %v", err)
	}
	// Another network's host loads none of them.
	h4 := NewHost(openStore(t, dir), "othernet")
	if err := h4.Load(); err == nil || len(h4.Sites()) != 0 {
		t.Fatalf("other network Load: %v, %d sites", err, len(h4.Sites()))
	}
}

// A blob changed on disk is served as it is: the host does not re-verify,
// and the client's CheckFile catches it.
func TestHostServesTamperedAsIs(t *testing.T) {
	h, dir := newTestHost(t)
	site := newTestSite(t, testKey(1), 1, map[string]string{"/index.html": "genuine"})
	m, err := h.Sync(t.Context(), site.enc, site.fetch(nil))
	if err != nil {
		t.Fatal(err)
	}
	e := m.Files[0]
	if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(e.Hash[:])), []byte("forged!"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, _, body := hostGet(t, srv, http.MethodGet, blobURL(e.Hash))
	if code != 200 || string(body) != "forged!" {
		t.Fatalf("%d %q", code, body)
	}
	if CheckFile(e, body) == nil {
		t.Fatal("the client check passed a forged file")
	}
}

// Sync fetches at most 4 blobs at once, and does use 4.
func TestHostSyncBounded(t *testing.T) {
	h, _ := newTestHost(t)
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("/f%02d", i)] = fmt.Sprint("content ", i)
	}
	site := newTestSite(t, testKey(1), 1, files)
	var active, peak atomic.Int64
	four := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a failsafe, not an assertion
	defer cancel()
	fetch := func(ctx context.Context, hash [32]byte) ([]byte, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == 4 {
			once.Do(func() { close(four) })
		}
		select {
		case <-four:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return site.files[hash], nil
	}
	if _, err := h.Sync(ctx, site.enc, fetch); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 4 {
		t.Fatalf("peak %d concurrent fetches, want 4", p)
	}
}

// Readers during updates always see a whole site: each manifest served
// verifies, and each of its files is served (the update keeps them) or
// the site moved on.
func TestHostConcurrent(t *testing.T) {
	h, _ := newTestHost(t)
	key := testKey(1)
	const versions = 12
	sites := make([]*testSite, versions)
	for i := range sites {
		sites[i] = newTestSite(t, key, uint64(i+1), map[string]string{
			"/index.html": fmt.Sprint("version ", i), "/common.css": "common",
		})
	}
	if _, err := h.Sync(t.Context(), sites[0].enc, sites[0].fetch(nil)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _, body, err := request(srv, http.MethodGet, siteURL(key.Public()))
				if err != nil || code != 200 {
					errc <- fmt.Errorf("site: %d, %v", code, err)
					return
				}
				m, err := Parse(body)
				if err == nil {
					err = m.Verify(testNet)
				}
				if err != nil {
					errc <- err
					return
				}
				common, _ := m.Lookup("/common.css")
				if code, _, b, err := request(srv, http.MethodGet, blobURL(common.Entry.Hash)); err != nil || code != 200 || CheckFile(common.Entry, b) != nil {
					errc <- fmt.Errorf("shared file: %d, %v", code, err)
					return
				}
				idx, _ := m.Lookup("/index.html")
				if code, _, b, err := request(srv, http.MethodGet, blobURL(idx.Entry.Hash)); err != nil || code == 200 && CheckFile(idx.Entry, b) != nil {
					errc <- errors.New("a wrong index file")
					return
				}
				_ = h.Sites()
			}
		})
	}
	for _, s := range sites[1:] {
		if _, err := h.Sync(t.Context(), s.enc, s.fetch(nil)); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if m, _, _ := h.Manifest(key.Public()); m.Seq != versions {
		t.Fatalf("seq %d", m.Seq)
	}
}
