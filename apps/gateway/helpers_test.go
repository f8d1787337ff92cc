package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

const testDomain = "gw.test"

// keyLabel returns the key address label (without ".dark") of test key i.
func testKey(i byte) string {
	return strings.TrimSuffix(keys.ServiceFromSeed([32]byte{i}).Public().Address(), ".dark")
}

// env is a gateway served on loopback, with sites standing in for the
// network behind a test Dial.
type env struct {
	t      *testing.T
	g      *Gateway
	srv    *httptest.Server
	client *http.Client

	mu    sync.Mutex
	sites map[string]string // "SITE.dark:80" → loopback address
	dials []string          // every addr Dial was called with
	fail  map[string]error  // "SITE.dark:80" → Dial's error
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, sites: make(map[string]string), fail: make(map[string]error)}
	if cfg.Domain == "" {
		cfg.Domain = testDomain
	}
	cfg.Dial = e.dial
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	e.srv = httptest.NewServer(g)
	e.client = &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		e.srv.Close()
		g.Close()
	})
	return e
}

func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.mu.Lock()
	e.dials = append(e.dials, addr)
	to, ok := e.sites[addr]
	ferr := e.fail[addr]
	e.mu.Unlock()
	if ferr != nil {
		return nil, ferr
	}
	if !ok {
		return nil, fmt.Errorf("test node: no descriptor: %w", ErrSiteNotFound)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", to)
}

// site starts a loopback server standing in for SITE.dark.
func (e *env) site(site string, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	e.t.Cleanup(s.Close)
	e.mu.Lock()
	e.sites[site+".dark:80"] = s.Listener.Addr().String()
	e.mu.Unlock()
	return s
}

func (e *env) dialCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.dials)
}

// get sends method target to the gateway with Host host.
func (e *env) do(method, host, target string, body io.Reader, hdr http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+target, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// get returns the status and body of GET target at host.
func (e *env) get(host, target string) (int, []byte) {
	e.t.Helper()
	res := e.do("GET", host, target, nil, nil)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, b
}

// raw sends raw request bytes on a new connection and returns the response.
func (e *env) raw(req string) *http.Response {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		e.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res
}
