package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hop-by-hop headers and those naming the visitor never reach the site;
// response headers change only as spec/gateway.md §4.2 says.
func TestHeaders(t *testing.T) {
	e := newEnv(t, Config{})
	var mu sync.Mutex
	var got http.Header
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("X-End-To-End", "kept")
		h.Set("Strict-Transport-Security", "max-age=99; includeSubDomains")
		h.Set("Alt-Svc", `h2="evil.example:443"`)
		h.Add("Set-Cookie", "a=1; Domain=gw.test; Path=/; HttpOnly")
		h.Add("Set-Cookie", "b=2; Path=/")
		h.Set("Location", "http://Alice.dark:80/next?x=1")
		w.WriteHeader(http.StatusFound)
	}))
	hdr := http.Header{
		"Connection":          {"X-Hop, keep-alive"},
		"X-Hop":               {"secret"},
		"Keep-Alive":          {"timeout=5"},
		"X-Forwarded-For":     {"198.51.100.7"},
		"X-Forwarded-Proto":   {"https"},
		"Forwarded":           {"for=198.51.100.7"},
		"X-Real-Ip":           {"198.51.100.7"},
		"Via":                 {"1.1 cache"},
		"Proxy-Authorization": {"Basic eDp5"},
		"Cookie":              {"session=abc"},
		"Origin":              {"http://alice.gw.test"},
		"Referer":             {"http://bob.gw.test/private"},
		"X-End-To-End":        {"kept"},
		"Accept-Encoding":     {"br"},
	}
	res := e.do("GET", "alice.gw.test", "/", nil, hdr)
	res.Body.Close()
	mu.Lock()
	for _, h := range []string{"X-Hop", "Keep-Alive", "X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip", "Via", "Proxy-Authorization", "Referer"} {
		if v, ok := got[h]; ok {
			t.Errorf("site got %s: %q", h, v)
		}
	}
	for h, want := range map[string]string{"Cookie": "session=abc", "Origin": "http://alice.dark", "X-End-To-End": "kept", "Accept-Encoding": "br"} {
		if got.Get(h) != want {
			t.Errorf("site got %s %q, want %q", h, got.Get(h), want)
		}
	}
	if c := got.Get("Connection"); c != "" {
		t.Errorf("site got Connection %q", c)
	}
	rh := res.Header
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Strict-Transport-Security", "Alt-Svc"} {
		if v, ok := rh[h]; ok {
			t.Errorf("browser got %s: %q", h, v)
		}
	}
	for h, want := range map[string]string{
		"X-End-To-End": "kept", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
		"Location": "http://alice.gw.test/next?x=1",
	} {
		if rh.Get(h) != want {
			t.Errorf("browser got %s %q, want %q", h, rh.Get(h), want)
		}
	}
	if c := rh.Values("Set-Cookie"); len(c) != 2 || c[0] != "a=1; Path=/; HttpOnly" || c[1] != "b=2; Path=/" {
		t.Errorf("Set-Cookie %q", c)
	}

	mu.Unlock()

	// A Referer of the same site is mapped; an Origin from outside is kept.
	res = e.do("GET", "alice.gw.test", "/", nil, http.Header{"Referer": {"http://alice.gw.test/from?x"}, "Origin": {"https://example.com"}})
	res.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if got.Get("Referer") != "http://alice.dark/from?x" || got.Get("Origin") != "https://example.com" {
		t.Errorf("Referer %q Origin %q", got.Get("Referer"), got.Get("Origin"))
	}
}

// Request bodies: up to MaxBody forwarded byte for byte; larger ones 413,
// refused before dialing when the length is declared.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 1000})
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		w.Write(b)
	}))
	body := bytes.Repeat([]byte{0, 1, 2, 0xff}, 250)
	res := e.do("POST", "alice.gw.test", "/", bytes.NewReader(body), nil)
	echo, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(echo, body) {
		t.Errorf("1000 bytes: %d, %d bytes back", res.StatusCode, len(echo))
	}
	res = e.do("POST", "alice.gw.test", "/", bytes.NewReader(append(body, 1)), nil)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || e.dialCount() != 1 {
		t.Errorf("1001 bytes: %d, %d dials", res.StatusCode, e.dialCount())
	}
	// Chunked, so the length is learnt only while forwarding.
	res = e.do("POST", "alice.gw.test", "/", io.MultiReader(bytes.NewReader(body), strings.NewReader("xx")), nil)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1002 bytes chunked: %d", res.StatusCode)
	}
	if s := e.g.Stats(); s.TooLarge != 2 || s.Proxied != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Upstream failures: not found 404, others 502, too slow 504; the pages
// never quote the request.
func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t, Config{Timeout: 200 * time.Millisecond})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.site("lazy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	e.mu.Lock()
	e.fail["down.dark:80"] = errors.New("test node: circuit failed")
	e.mu.Unlock()
	for _, c := range []struct {
		host string
		code int
		text string
	}{
		{"nobody.gw.test", 404, "No such site"},
		{"down.gw.test", 502, "could not get an answer"},
		{"lazy.gw.test", 504, "did not answer in time"},
	} {
		code, body := e.get(c.host, "/secret-path?secret-query")
		if code != c.code || !bytes.Contains(body, []byte(c.text)) || bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte(strings.Split(c.host, ".")[0])) {
			t.Errorf("%s: %d %s", c.host, code, body)
		}
	}
	if s := e.g.Stats(); s.NotFound != 1 || s.Upstream != 1 || s.Timeouts != 1 {
		t.Errorf("stats %+v", s)
	}
}

// After Close, requests are answered 503 without dialing; Close twice is fine.
func TestClose(t *testing.T) {
	e := newEnv(t, Config{})
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if code, _ := e.get("alice.gw.test", "/"); code != 200 {
		t.Fatalf("before Close: %d", code)
	}
	if e.g.Close() != nil || e.g.Close() != nil {
		t.Fatal("Close failed")
	}
	if code, _ := e.get("alice.gw.test", "/"); code != 503 || e.dialCount() != 1 {
		t.Errorf("after Close: %d, %d dials", code, e.dialCount())
	}
}

func TestNewConfig(t *testing.T) {
	for _, d := range []string{"", "127.0.0.1", "[::1]:80", "gw.test:0", "gw.test:080", "gw.test:x", "a_b.test", "-a.test", "gw..test", "gw.test."} {
		if _, err := New(Config{Domain: d, Dial: nil2}); !errors.Is(err, ErrConfig) {
			t.Errorf("Domain %q: %v", d, err)
		}
	}
	if _, err := New(Config{Domain: "gw.test"}); !errors.Is(err, ErrConfig) {
		t.Errorf("no Dial: %v", err)
	}
	if _, err := New(Config{Domain: "gw.test", Dial: nil2, Rate: -1}); !errors.Is(err, ErrConfig) {
		t.Errorf("negative rate: %v", err)
	}
	g, err := New(Config{Domain: "LocalHost:8080", Dial: nil2})
	if err != nil {
		t.Fatal(err)
	}
	if site, kind, err := parseHost("alice.localhost:8080", g.domain); kind != hostSite || site != "alice" || err != nil {
		t.Errorf("parseHost: %q %v %v", site, kind, err)
	}
	if _, kind, _ := parseHost("alice.localhost", g.domain); kind != hostForeign {
		t.Errorf("parseHost without port: %v", kind)
	}
}
