package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Subdomain form: bodies, paths and queries arrive unchanged, binary
// included, and the site sees Host SITE.dark.
func TestProxyByteIdentical(t *testing.T) {
	e := newEnv(t, Config{})
	bin := make([]byte, 300<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	var mu sync.Mutex
	var seen []string
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Host+" "+r.RequestURI)
		mu.Unlock()
		switch r.URL.Path {
		case "/bin":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bin)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, "page "+r.RequestURI)
		}
	}))
	for _, c := range []struct {
		target string
		code   int
		body   []byte
	}{
		{"/", 200, []byte("page /")},
		{"/a/b%20c/?x=1&y=%2F", 200, []byte("page /a/b%20c/?x=1&y=%2F")},
		{"/bin", 200, bin},
		{"/empty", 204, nil},
	} {
		code, body := e.get("Alice.GW.test", c.target)
		if code != c.code || !bytes.Equal(body, c.body) {
			t.Errorf("%s: got %d, %d bytes; want %d, %d bytes", c.target, code, len(body), c.code, len(c.body))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"alice.dark /", "alice.dark /a/b%20c/?x=1&y=%2F", "alice.dark /bin", "alice.dark /empty"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("site saw %q, want %q", seen, want)
	}
	for _, a := range e.dials {
		if a != "alice.dark:80" {
			t.Errorf("dialled %q", a)
		}
	}
	if s := e.g.Stats(); s.Proxied != 4 || s.Requests != 4 {
		t.Errorf("stats %+v", s)
	}
}

// Path form redirects to the subdomain form; the home page explains.
func TestPathForm(t *testing.T) {
	e := newEnv(t, Config{})
	k := testKey(3)
	for _, c := range []struct{ method, target, code, loc string }{
		{"GET", "/alice.dark/x/y?q=1", "301", "http://alice.gw.test/x/y?q=1"},
		{"GET", "/Blog.Alice.DARK", "301", "http://blog.alice.gw.test/"},
		{"HEAD", "/" + strings.ToUpper(k) + ".dark/a%2Fb", "301", "http://" + k + ".gw.test/a%2Fb"},
		{"GET", "/www." + k + ".dark/", "301", "http://www." + k + ".gw.test/"},
		{"POST", "/alice.dark/form", "308", "http://alice.gw.test/form"},
		{"GET", "/alice/x", "404", ""},
		{"GET", "/bad_name.dark/", "404", ""},
		{"GET", "/" + k[:55] + "a.dark/", "404", ""},
	} {
		res := e.do(c.method, testDomain, c.target, nil, nil)
		res.Body.Close()
		if got := res.Status[:3]; got != c.code || res.Header.Get("Location") != c.loc {
			t.Errorf("%s %s: %s %q, want %s %q", c.method, c.target, got, res.Header.Get("Location"), c.code, c.loc)
		}
	}
	code, body := e.get("GW.TEST", "/")
	if code != 200 || !bytes.Contains(body, []byte("not anonymous")) || !bytes.Contains(body, []byte("SITE.gw.test")) {
		t.Errorf("home page: %d %s", code, body)
	}
	if e.dialCount() != 0 {
		t.Errorf("Dial called %d times", e.dialCount())
	}
	if s := e.g.Stats(); s.Redirects != 5 || s.Pages != 1 || s.Refused != 3 {
		t.Errorf("stats %+v", s)
	}
}

// Each site is its own origin: the Host alone decides which site a request
// reaches.
func TestOriginIsolation(t *testing.T) {
	e := newEnv(t, Config{})
	k := testKey(1)
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "alice") }))
	e.site(k, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "key") }))
	e.site("www."+k, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "www") }))
	for _, c := range []struct{ host, want string }{
		{"alice.gw.test", "alice"}, {k + ".gw.test", "key"}, {"alice.gw.test", "alice"},
		{"WWW." + strings.ToUpper(k) + ".gw.test", "www"},
	} {
		if code, body := e.get(c.host, "/"+k+".dark/"); code != 200 || string(body) != c.want {
			t.Errorf("%s: %d %q, want %q", c.host, code, body, c.want)
		}
	}
	if code, _ := e.get("bob.gw.test", "/"); code != http.StatusNotFound {
		t.Errorf("unknown site: %d, want 404", code)
	}
}

// The gateway is never an open proxy, and never dials for such requests.
func TestNotOpenProxy(t *testing.T) {
	e := newEnv(t, Config{})
	e.site("alice", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "alice") }))
	k := testKey(2)
	bad := []struct {
		req  string
		code int
	}{
		{"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"GET http://alice.gw.test/ HTTP/1.1\r\nHost: alice.gw.test\r\n\r\n", 400},
		{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400},
		{"CONNECT alice.gw.test:80 HTTP/1.1\r\nHost: alice.gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: alice.gw.test:8080\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: alice.gw.test.example.com\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: alice.gw.test.\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: xgw.test\r\n\r\n", 421},
		{"GET / HTTP/1.0\r\n\r\n", 421},
		{"GET / HTTP/1.1\r\nHost: alice.dark.gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a_b.gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a.b.c.d.e.gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: " + k[:55] + "a.gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a.b.c.d." + k + ".gw.test\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: .gw.test\r\n\r\n", 421},
	}
	for _, c := range bad {
		res := e.raw(c.req)
		if res.StatusCode != c.code || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%q: %d %s, want %d", c.req, res.StatusCode, res.Header.Get("Content-Type"), c.code)
		}
	}
	// net/http answers "OPTIONS *" itself; the handler refuses it too.
	r := httptest.NewRequest("OPTIONS", "/", nil)
	r.RequestURI, r.Host = "*", "alice.gw.test"
	w := httptest.NewRecorder()
	e.g.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("OPTIONS *: %d", w.Code)
	}
	if e.dialCount() != 0 {
		t.Errorf("Dial called for %q", e.dials)
	}
	// A legitimate request on the same listener still works.
	if res := e.raw("GET / HTTP/1.1\r\nHost: alice.gw.test\r\nConnection: close\r\n\r\n"); res.StatusCode != 200 {
		t.Errorf("legitimate request: %d", res.StatusCode)
	}
	// The transport's dialler refuses anything but a site's port 80.
	for _, a := range []string{"example.com:80", "alice.dark:443", "127.0.0.1:80", "ALICE.dark:80", "a..dark:80"} {
		if _, err := e.g.dialSite(context.Background(), "tcp", a); err == nil {
			t.Errorf("dialSite(%q) succeeded", a)
		}
	}
	if e.dialCount() != 1 {
		t.Errorf("Dial called %d times, want 1", e.dialCount())
	}
}

// Deny list: names exactly, key addresses with every subdomain, any case.
func TestDeny(t *testing.T) {
	k, k2 := testKey(4), testKey(5)
	e := newEnv(t, Config{Deny: []string{"Alice.DARK", strings.ToUpper(k) + ".Dark.", "bob"}})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, s := range []string{"alice", "blog.alice", k, "www." + k, "bob", k2} {
		e.site(s, ok)
	}
	for _, c := range []struct {
		host string
		code int
	}{
		{"alice.gw.test", 451}, {"ALICE.gw.test", 451}, {"blog.alice.gw.test", 200},
		{k + ".gw.test", 451}, {"www." + k + ".gw.test", 451}, {"a.b." + strings.ToUpper(k) + ".gw.test", 451},
		{"bob.gw.test", 451}, {k2 + ".gw.test", 200},
	} {
		code, body := e.get(c.host, "/secret-path?q=secret-query")
		if code != c.code {
			t.Errorf("%s: %d, want %d", c.host, code, c.code)
		}
		if code == 451 && (!bytes.Contains(body, []byte("operator of this gateway refuses")) || bytes.Contains(body, []byte("secret"))) {
			t.Errorf("%s: 451 page %s", c.host, body)
		}
	}
	if e.dialCount() != 2 {
		t.Errorf("Dial called %d times, want 2", e.dialCount())
	}
	if s := e.g.Stats(); s.Denied != 6 {
		t.Errorf("stats %+v", s)
	}
	for _, d := range []string{"", "a_b", "x.dark.dark", k[:55] + "a", "a.b.c.d.e"} {
		if _, err := New(Config{Domain: testDomain, Dial: e.dial, Deny: []string{d}}); !errors.Is(err, ErrConfig) {
			t.Errorf("Deny %q: %v", d, err)
		}
	}
}

// Rate limit: a burst, then 429 with Retry-After, while another client
// still gets through; time refills the bucket.
func TestRateLimit(t *testing.T) {
	g, err := New(Config{Domain: testDomain, Dial: nil2, Rate: 0.5, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1e9, 0)
	g.now = func() time.Time { return now }
	get := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = testDomain
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := get("192.0.2.1:1000"); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := get("192.0.2.1:1001")
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" || !strings.Contains(w.Body.String(), "Too many requests") {
		t.Errorf("4th request: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("192.0.2.2:1000"); w.Code != 200 {
		t.Errorf("other client: %d", w.Code)
	}
	// IPv6: one /64 is one client; another /64 is another.
	for range 3 {
		get("[2001:db8:1:2::1]:1")
	}
	if w := get("[2001:db8:1:2:ffff::9]:1"); w.Code != 429 {
		t.Errorf("same /64: %d", w.Code)
	}
	if w := get("[2001:db8:1:3::1]:1"); w.Code != 200 {
		t.Errorf("other /64: %d", w.Code)
	}
	// IPv4-mapped IPv6 is the IPv4 client.
	if w := get("[::ffff:192.0.2.1]:5"); w.Code != 429 {
		t.Errorf("mapped: %d", w.Code)
	}
	now = now.Add(2 * time.Second)
	if w := get("192.0.2.1:1000"); w.Code != 200 {
		t.Errorf("after refill: %d", w.Code)
	}
	if w := get("192.0.2.1:1000"); w.Code != 429 {
		t.Errorf("after one refilled token: %d", w.Code)
	}
	if s := g.Stats(); s.RateLimited != 4 || s.Pages != 9 {
		t.Errorf("stats %+v", s)
	}
}

func nil2(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no dial in this test")
}

// The limiter holds at most MaxClients, dropping the one idle longest.
func TestLimiterBounded(t *testing.T) {
	l := newLimiter(1, 1, 100)
	now := time.Unix(1e9, 0)
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		l.allow(clientOf("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)+":1"), now)
		if l.len() > 100 {
			t.Fatalf("%d clients held", l.len())
		}
	}
	// The last client is still held (its bucket is empty); the first was
	// dropped (it starts again full).
	if ok, _ := l.allow(clientOf("10.0.3.231:1"), now); ok {
		t.Error("most recent client was dropped")
	}
	if ok, _ := l.allow(clientOf("10.0.0.0:1"), now); !ok {
		t.Error("oldest client was kept")
	}
}
