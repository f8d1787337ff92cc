package sites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/compute/examples/prebuilt"
	"github.com/darkmatter/darkmatter/apps/compute/wasm"
)

// get serves GET target through h and returns the status and body.
func get(t testing.TB, h http.Handler, target string, hdr http.Header) (int, string) {
	t.Helper()
	w := do(h, http.MethodGet, target, hdr)
	return w.Code, w.Body.String()
}

func do(h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://site.dark"+target, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkNoLeak fails if an error page quotes the site or the path.
func checkNoLeak(t *testing.T, body string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(body, s) {
			t.Errorf("page %q quotes %q", body, s)
		}
	}
}

func TestHandlerFiles(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	host := env.addHost(site, 10)
	m := env.publish(t, k, 1, testFiles)
	c, _ := newTestClient(t, env, ClientConfig{})
	h := c.Handler(site)

	w := do(h, http.MethodGet, "/style.css", nil)
	e, _ := m.file("/style.css")
	etag := `"` + hex.EncodeToString(e.Hash[:]) + `"`
	if w.Code != 200 || w.Body.String() != testFiles["/style.css"] {
		t.Fatalf("GET /style.css = %d %q", w.Code, w.Body)
	}
	for k, v := range map[string]string{"Content-Type": "text/css; charset=utf-8", "Content-Length": "15", "ETag": etag,
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	// Directories serve their index; dot segments are cleaned.
	for target, want := range map[string]string{"/": "<h1>home</h1>", "/about/": "<h1>about</h1>", "//about/./": "<h1>about</h1>", "/empty.html": ""} {
		if code, body := get(t, h, target, nil); code != 200 || body != want {
			t.Errorf("GET %s = %d %q, want %q", target, code, body, want)
		}
	}
	// If-None-Match answers 304 without fetching the file.
	n := host.reqs.Load()
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
		w = do(h, http.MethodGet, "/style.css", http.Header{"If-None-Match": {inm}})
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d %q", inm, w.Code, w.Body)
		}
	}
	if host.reqs.Load() != n {
		t.Error("a 304 fetched the file")
	}
	if w = do(h, http.MethodGet, "/style.css", http.Header{"If-None-Match": {`"other"`}}); w.Code != 200 {
		t.Errorf("another ETag: %d", w.Code)
	}
	// Redirect of a directory without its '/', with the query kept.
	w = do(h, http.MethodGet, "/about?x=1&y=%2F", nil)
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/about/?x=1&y=%2F" {
		t.Errorf("GET /about = %d, Location %q", w.Code, w.Header().Get("Location"))
	}
	// HEAD: the headers, no body.
	w = do(h, http.MethodHead, "/index.html", nil)
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "13" || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD = %d %q %v", w.Code, w.Body, w.Header())
	}
	// Other methods: 405 with Allow.
	for _, meth := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		w = do(h, meth, "/index.html", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s = %d, Allow %q", meth, w.Code, w.Header().Get("Allow"))
		}
	}
	// Not found, bad paths.
	if code, body := get(t, h, "/secret-name.html", nil); code != 404 {
		t.Errorf("GET missing = %d", code)
	} else {
		checkNoLeak(t, body, "secret-name", Address(site))
	}
	for _, target := range []string{"/a/%2e%2e/b", "/a%5Cb", "/%00"} {
		if code, body := get(t, h, target, nil); code != 400 {
			t.Errorf("GET %s = %d", target, code)
		} else if !strings.HasPrefix(body, "<!DOCTYPE html>") {
			t.Errorf("error page %q", body)
		}
	}
}

func TestHandlerFailures(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	host := env.addHost(site, 10)
	env.publish(t, k, 1, testFiles)
	c, _ := newTestClient(t, env, ClientConfig{})
	h := c.Handler(site)
	if _, err := c.Manifest(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	// Every host and the DHT down: 502.
	host.mu.Lock()
	host.down = true
	host.mu.Unlock()
	env.mu.Lock()
	env.dhtDown = true
	env.mu.Unlock()
	code, body := get(t, h, "/style.css", nil)
	if code != http.StatusBadGateway || !strings.Contains(body, "every host failed") {
		t.Fatalf("everything down: %d %q", code, body)
	}
	checkNoLeak(t, body, "style", Address(site), strings.TrimSuffix(host.key.Address(), ".dark"))
	if st := c.Stats(); st.HostFailures == 0 {
		t.Fatalf("stats %+v", st)
	}
	// A site with no manifest: 404 "site not found".
	other := testKey(2).Public()
	code, body = get(t, c.Handler(other), "/", nil)
	if code != http.StatusNotFound || !strings.Contains(body, "site not found") {
		t.Fatalf("no site: %d %q", code, body)
	}
	checkNoLeak(t, body, Address(other), strings.TrimSuffix(Address(other), ".dark"))
	// A manifest no source has: 502.
	c2, _ := newTestClient(t, env, ClientConfig{})
	if code, _ := get(t, c2.Handler(site), "/", nil); code != http.StatusBadGateway {
		t.Fatalf("manifest unavailable: %d", code)
	}
}

var testModule = sha256.Sum256([]byte("handler module"))

func TestHandlerDynamic(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	env.addHost(site, 10)
	m := env.publish(t, k, 1, testFiles, Handler{Prefix: "/app/", Module: testModule, Function: "page"})
	var gotIn []byte
	out := "X-Other: 1\nSet-Cookie: a=b\r\nLocation: http://evil/\r\nStatus: 201 Created\r\ncontent-type: text/plain\r\n\r\nhello\r\n\r\nworld"
	env.call = func(_ context.Context, mod [32]byte, fn string, in []byte) ([]byte, error) {
		if mod != testModule || fn != "page" {
			return nil, errors.New("wrong handler")
		}
		gotIn = in
		return []byte(out), nil
	}
	c, _ := newTestClient(t, env, ClientConfig{})
	h := c.Handler(site)
	w := do(h, http.MethodGet, "/app/x%20y/?q=1", nil)
	if w.Code != 201 || w.Body.String() != "hello\r\n\r\nworld" {
		t.Fatalf("GET /app/ = %d %q", w.Code, w.Body)
	}
	for k, v := range map[string]string{"Content-Type": "text/plain", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Set-Cookie": "", "Location": "", "X-Other": ""} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	var in struct {
		Method, Path, Query, Site string
		Files                     map[string]string
	}
	if err := json.Unmarshal(gotIn, &in); err != nil {
		t.Fatal(err)
	}
	if in.Method != "GET" || in.Path != "/app/x y/" || in.Query != "q=1" || in.Site != Address(site) || len(in.Files) != len(m.Files) {
		t.Fatalf("input %s", gotIn)
	}
	for _, e := range m.Files {
		if in.Files[e.Path] != hex.EncodeToString(e.Hash[:]) {
			t.Errorf("input files[%s] = %q", e.Path, in.Files[e.Path])
		}
	}
	// HEAD runs the handler and sends no body.
	if w = do(h, http.MethodHead, "/app/", nil); w.Code != 201 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "14" {
		t.Fatalf("HEAD /app/ = %d %q %v", w.Code, w.Body, w.Header())
	}
	// Bad output and a failed call: 502 "handler failed".
	for _, bad := range []string{"", "hello", "Content-Type: text/html\r\n", "Status: 200\r\n\r\nbody", "Status: 99 x\r\nContent-Type: a\r\n\r\n"} {
		out = bad
		if code, body := get(t, h, "/app/", nil); code != http.StatusBadGateway || !strings.Contains(body, "handler failed") {
			t.Errorf("output %q: %d %q", bad, code, body)
		}
	}
	env.call = func(context.Context, [32]byte, string, []byte) ([]byte, error) { return nil, errors.New("trap") }
	if code, body := get(t, h, "/app/", nil); code != http.StatusBadGateway || !strings.Contains(body, "handler failed") {
		t.Errorf("failed call: %d %q", code, body)
	}
	if st := c.Stats(); st.HandlerCalls != 8 || st.HandlerErrors != 6 {
		t.Errorf("stats %+v", st)
	}
	// Files win over the handler; a path outside its prefix is not found.
	if code, _ := get(t, h, "/index.html", nil); code != 200 {
		t.Errorf("GET /index.html = %d", code)
	}
	if code, _ := get(t, h, "/app", nil); code != 404 {
		t.Errorf("GET /app = %d", code)
	}
}

// The prebuilt site module runs as a handler in the real runtime, reading
// the site's data file as a data source.
func TestHandlerWasm(t *testing.T) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	env.addHost(site, 10)
	code := prebuilt.Site()
	mod := sha256.Sum256(code)
	files := map[string]string{"/index.html": "home", "/data/items.json": `{"title":"Stock","items":[{"name":"apples","value":"<3>"}]}`}
	env.publish(t, k, 1, files, Handler{Prefix: "/app/", Module: mod, Function: "page"})
	rt, err := wasm.New(context.Background(), wasm.Limits{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	env.call = func(ctx context.Context, m [32]byte, fn string, in []byte) ([]byte, error) {
		if m != mod {
			return nil, errors.New("no such module")
		}
		return rt.RunJob(ctx, wasm.Job{Hash: m, Code: code, Function: fn, Input: in, Source: env.GetBlob})
	}
	c, _ := newTestClient(t, env, ClientConfig{})
	w := do(c.Handler(site), http.MethodGet, "/app/a%3Cb", nil)
	body := w.Body.String()
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(body, "Generated by WebAssembly for /app/a&lt;b") || !strings.Contains(body, "<td>&lt;3&gt;</td>") {
		t.Fatalf("GET /app/a<b = %d %v\n%s", w.Code, w.Header(), body)
	}
}

func TestParseHandlerOutput(t *testing.T) {
	for _, tc := range []struct {
		out    string
		status int
		ct     string
		body   string
	}{
		{"Content-Type: text/html\n\n<p>", 200, "text/html", "<p>"},
		{"Status: 404 Not Found\r\nContent-Type:text/plain \r\n\r\n", 404, "text/plain", ""},
		{"content-TYPE: a/b\nSTATUS: 599\nX-Y: z\n\n\n", 599, "a/b", "\n"},
	} {
		res, err := ParseHandlerOutput([]byte(tc.out))
		if err != nil || res.Status != tc.status || res.ContentType != tc.ct || string(res.Body) != tc.body {
			t.Errorf("ParseHandlerOutput(%q) = %+v, %v", tc.out, res, err)
		}
	}
	long := "X: " + strings.Repeat("a", MaxHandlerHeader) + "\r\nContent-Type: a\r\n\r\n"
	for _, bad := range []string{"", "\n", "Content-Type: a", "Content-Type: a\r\n", ": a\n\n", "Content Type: a\n\n",
		"Content-Type: a\nContent-Type: a\n\n", "Content-Type: \n\n", "Content-Type: a\x00\n\n", "Content-Type: é\n\n",
		"Content-Type: a\nStatus: 199\n\n", "Content-Type: a\nStatus: 600\n\n", "Content-Type: a\nStatus: 2000\n\n",
		"Content-Type: a\nStatus: +20\n\n", "Content-Type: a\nStatus: 200\nStatus: 200\n\n", "Content-Type: a\nno colon\n\n",
		"Content-Type: a\rb\n\n", long} {
		if res, err := ParseHandlerOutput([]byte(bad)); !errors.Is(err, ErrHandlerOutput) {
			t.Errorf("ParseHandlerOutput(%.40q) = %+v, %v", bad, res, err)
		}
	}
	// A header block of exactly MaxHandlerHeader bytes is accepted.
	pad := "Content-Type: a\r\nX: "
	exact := pad + strings.Repeat("b", MaxHandlerHeader-len(pad)-4) + "\r\n\r\n"
	if _, err := ParseHandlerOutput([]byte(exact + "body")); err != nil {
		t.Errorf("%d-byte header: %v", len(exact), err)
	}
}
