package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// startOrigin starts an httptest server and a Dialer that reaches it for
// every target.
func startOrigin(t *testing.T, h http.HandlerFunc) *proxytest.Dialer {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &proxytest.Dialer{Backend: ts.Listener.Addr().String()}
}

func TestConnect(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	d := &proxytest.Dialer{Backend: be.Addr()}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})

	for i, tt := range []struct{ authority, target, auth, isolation string }{
		{"example.invalid:443", "example.invalid:443", "", ""},
		{"[2001:DB8::1]:8443", "[2001:db8::1]:8443", "", ""},
		{"192.0.2.1:22", "192.0.2.1:22", basic("a", "bc"), "http:1:a2:bc"},
	} {
		c := proxytest.Dial(t, proxy)
		req := "CONNECT " + tt.authority + " HTTP/1.1\r\nHost: " + tt.authority + "\r\n"
		if tt.auth != "" {
			req += "Proxy-Authorization: " + tt.auth + "\r\n"
		}
		// Early data right behind the headers, in the same write.
		write(t, c, req+"\r\nEARLY")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 200 Connection established\r\n" {
			t.Fatalf("status line %q, %v", line, err)
		}
		if blank, _ := br.ReadString('\n'); blank != "\r\n" {
			t.Fatalf("expected end of headers, got %q", blank)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "EARLY" {
			t.Fatalf("early data echo %q, %v", got, err)
		}
		write(t, c, "later")
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "later" {
			t.Fatalf("echo %q, %v", got, err)
		}
		c.Close()
		if calls := d.Calls(); len(calls) != i+1 || calls[i] != (proxytest.DialCall{Target: tt.target, Isolation: tt.isolation}) {
			t.Fatalf("calls %q, want (%q, %q) last", calls, tt.target, tt.isolation)
		}
	}
}

func TestConnectLargeAndHalfClose(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.HashAfterEOF)
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr()}})
	c := proxytest.Dial(t, proxy)
	write(t, c, "CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	proxytest.HalfCloseAndCheckHash(t, c, br, 3<<20+5)
}

// A client that sends its request through a CONNECT tunnel and shuts its
// write side still gets a large response whole: the half-close crosses
// the proxy (as END on a circuit stream) and the other direction stays
// open. The remote is a stream-like CloseWriter, and then a TCP
// connection.
func TestConnectHalfCloseLargeResponse(t *testing.T) {
	const size = 8 << 20
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(size))
	for name, wrap := range map[string]func(net.Conn) net.Conn{"stream": proxytest.Stream, "tcp": nil} {
		t.Run(name, func(t *testing.T) {
			proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr(), Wrap: wrap}})
			c := proxytest.Dial(t, proxy)
			// The request's first bytes ride with the CONNECT, as a
			// client in a hurry sends them.
			write(t, c, "CONNECT example.invalid:7 HTTP/1.1\r\nHost: example.invalid:7\r\n\r\nGET ")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("CONNECT: %v %v", resp, err)
			}
			// The backend answers everything it read, "GET " included.
			proxytest.RequestAndCheckAnswer(t, c, br, "GET /big HTTP/1.0\r\n\r\n", len("GET "), size)
		})
	}
}

// A remote that cannot half-close ends the tunnel at the client's EOF, as
// before half-close existed: the client's connection closes, nothing
// hangs.
func TestConnectHalfCloseUnsupported(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(1<<20))
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr(), Wrap: proxytest.NoHalfClose}})
	c := proxytest.Dial(t, proxy)
	write(t, c, "CONNECT example.invalid:7 HTTP/1.1\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	write(t, c, "request")
	_ = c.(*net.TCPConn).CloseWrite()
	if n, err := io.Copy(io.Discard, br); n == 1<<20 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read %d bytes, %v", n, err)
	}
}

func TestGetLargeBody(t *testing.T) {
	data := make([]byte, 4<<20+3)
	rand.Read(data)
	var mu sync.Mutex
	var seen []*http.Request
	d := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(context.Background()))
		mu.Unlock()
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data)
		case "/chunked":
			for off := 0; off < len(data); off += 1 << 20 {
				w.Write(data[off:min(off+1<<20, len(data))])
				w.(http.Flusher).Flush()
			}
		}
	})
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	client := &http.Client{Transport: proxyTransport(t, proxy, url.UserPassword("ab", "c"))}

	for _, path := range []string{"/big?x=1", "/chunked"} {
		req, _ := http.NewRequest("GET", "http://example.invalid"+path, nil)
		req.Header.Set("User-Agent", "test-agent")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || sum(body) != sum(data) {
			t.Fatalf("%s: status %d, %d bytes, hash mismatch=%v", path, resp.StatusCode, len(body), sum(body) != sum(data))
		}
	}
	calls := d.Calls()
	if len(calls) != 2 || calls[0] != (proxytest.DialCall{Target: "example.invalid:80", Isolation: "http:2:ab1:c"}) {
		t.Fatalf("calls %q", calls)
	}
	mu.Lock()
	defer mu.Unlock()
	r := seen[0]
	if r.RequestURI != "/big?x=1" || r.Host != "example.invalid" || !r.Close ||
		r.Header.Get("User-Agent") != "test-agent" {
		t.Fatalf("origin saw %s %s Host=%s Close=%v UA=%q", r.Method, r.RequestURI, r.Host, r.Close, r.Header.Get("User-Agent"))
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("origin saw %s: %q", h, v)
		}
	}
}

func TestUpload(t *testing.T) {
	d := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		fmt.Fprintf(w, "%s %d %v", sum(b), r.ContentLength, r.TransferEncoding)
	})
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	client := &http.Client{Transport: proxyTransport(t, proxy, nil)}
	data := make([]byte, 3<<20+11)
	rand.Read(data)

	// Known length.
	resp, err := client.Post("http://example.invalid/up", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%s %d []", sum(data), len(data)); string(got) != want {
		t.Fatalf("origin answered %q, want %q", got, want)
	}

	// Chunked.
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(data); off += 100 << 10 {
			pw.Write(data[off:min(off+100<<10, len(data))])
		}
		pw.Close()
	}()
	resp, err = client.Post("http://example.invalid/up", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%s -1 [chunked]", sum(data)); string(got) != want {
		t.Fatalf("origin answered %q, want %q", got, want)
	}
}

func TestKeepAliveAndHopByHop(t *testing.T) {
	var mu sync.Mutex
	var hdrs []http.Header
	// A raw origin, because net/http's server rewrites Connection.
	be := proxytest.StartBackend(t, func(c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		mu.Lock()
		hdrs = append(hdrs, r.Header.Clone())
		mu.Unlock()
		body := "hello " + r.URL.Path
		// Not "close, X-Resp-Hop": net/http's ReadResponse drops a
		// Connection header that holds "close", with its other tokens.
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\n"+
			"Keep-Alive: timeout=5\r\nX-Resp-E2E: yes\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	d := &proxytest.Dialer{Backend: be.Addr()}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	c := proxytest.Dial(t, proxy)
	br := bufio.NewReader(c)
	for i := range 3 {
		write(t, c, fmt.Sprintf("GET http://example.invalid/%d HTTP/1.1\r\nHost: example.invalid\r\n"+
			"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n"+
			"TE: trailers\r\nUpgrade: websocket\r\nX-E2E: yes\r\n\r\n", i))
		resp, body := readResponse(t, br, "GET")
		if string(body) != fmt.Sprintf("hello /%d", i) || resp.Close {
			t.Fatalf("response %d: %q close=%v", i, body, resp.Close)
		}
		for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Connection"} {
			if v := resp.Header.Get(h); v != "" {
				t.Errorf("client saw %s: %q", h, v)
			}
		}
		if resp.Header.Get("X-Resp-E2E") != "yes" {
			t.Errorf("end-to-end response header lost")
		}
	}
	if n := len(d.Calls()); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hdrs {
		for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade"} {
			if v := h.Get(k); v != "" {
				t.Errorf("origin saw %s: %q", k, v)
			}
		}
		if h.Get("X-E2E") != "yes" {
			t.Errorf("end-to-end request header lost")
		}
		if _, ok := h["User-Agent"]; ok {
			t.Errorf("proxy added User-Agent %q", h.Get("User-Agent"))
		}
	}
}

// closeDelimitedOrigin answers every request HTTP/1.0 style: no length, the
// body ends when the connection closes.
func closeDelimitedOrigin(body []byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
		c.Write(body)
	}
}

func TestCloseDelimitedResponse(t *testing.T) {
	data := make([]byte, 1<<20+1)
	rand.Read(data)
	be := proxytest.StartBackend(t, closeDelimitedOrigin(data))
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr()}})

	// HTTP/1.1 client: chunked, connection kept.
	c := proxytest.Dial(t, proxy)
	br := bufio.NewReader(c)
	for range 2 {
		write(t, c, "GET http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
		resp, body := readResponse(t, br, "GET")
		if resp.Proto != "HTTP/1.1" || len(resp.TransferEncoding) == 0 || resp.Close || sum(body) != sum(data) {
			t.Fatalf("%s TE=%v close=%v len=%d", resp.Proto, resp.TransferEncoding, resp.Close, len(body))
		}
	}

	// HTTP/1.0 client: body until close.
	c = proxytest.Dial(t, proxy)
	write(t, c, "GET http://example.invalid/ HTTP/1.0\r\n\r\n")
	resp, body := readResponse(t, bufio.NewReader(c), "GET")
	if !resp.Close || len(resp.TransferEncoding) != 0 || sum(body) != sum(data) {
		t.Fatalf("close=%v TE=%v len=%d", resp.Close, resp.TransferEncoding, len(body))
	}
}

func TestHeadAndExpectContinue(t *testing.T) {
	d := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "HEAD" {
			w.Header().Set("Content-Length", "1234")
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, sum(b))
	})
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	c := proxytest.Dial(t, proxy)
	br := bufio.NewReader(c)

	write(t, c, "HEAD http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
	resp, body := readResponse(t, br, "HEAD")
	if resp.StatusCode != 200 || resp.ContentLength != 1234 || len(body) != 0 {
		t.Fatalf("HEAD: %d CL=%d body=%q", resp.StatusCode, resp.ContentLength, body)
	}

	// The client waits for 100 Continue before it sends the body.
	write(t, c, "PUT http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n"+
		"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, _ = readResponse(t, br, "PUT")
	if resp.StatusCode != 100 {
		t.Fatalf("got %d, want 100 Continue", resp.StatusCode)
	}
	write(t, c, "hello")
	resp, body = readResponse(t, br, "PUT")
	if resp.StatusCode != 200 || string(body) != sum([]byte("hello")) {
		t.Fatalf("PUT: %d %q", resp.StatusCode, body)
	}

	// The connection is still usable after a request with a body.
	write(t, c, "POST http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	resp, body = readResponse(t, br, "POST")
	if resp.StatusCode != 200 || string(body) != sum([]byte("abc")) {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	if n := len(d.Calls()); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
}

func TestEarlyResponse(t *testing.T) {
	// The origin answers without reading the request body.
	be := proxytest.StartBackend(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
	})
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr()}})
	c := proxytest.Dial(t, proxy)
	write(t, c, "POST http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n"+
		"Content-Length: 10000000\r\n\r\nonly the start of it")
	br := bufio.NewReader(c)
	resp, body := readResponse(t, br, "POST")
	if resp.StatusCode != 413 || string(body) != "big" || !resp.Close {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	// The rest of the body was never sent, so the proxy must end the
	// connection rather than wait for it.
	if b, err := io.ReadAll(br); len(b) != 0 {
		t.Fatalf("read %q, %v after the response", b, err)
	}
}

// statusTests is the status and body text of each dial error.
var statusTests = []struct {
	err    error
	status int
	text   string
}{
	{streamerr.New(streamerr.ExitPolicy), 403, "rejected by exit policy"},
	{streamerr.New(streamerr.Timeout), 504, "connect timed out"},
	{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), 504, "connect timed out"},
	{streamerr.New(streamerr.ResolveFailed), 502, "host name not resolved"},
	{streamerr.New(streamerr.ConnRefused), 502, "connection refused"},
	{streamerr.New(streamerr.Unreachable), 502, "host unreachable"},
	{streamerr.New(streamerr.NoExit), 502, "no usable circuit"},
	{streamerr.New(streamerr.Destroyed), 502, "circuit destroyed"},
	{streamerr.New(streamerr.BadAddress), 502, "bad target address"},
	{streamerr.New(streamerr.Misc), 502, "failed"},
	{streamerr.New(streamerr.Done), 502, "done"},
	{streamerr.New(streamerr.ProtocolError), 502, "protocol error"},
	{streamerr.New(streamerr.ResourceLimit), 502, "exit out of resources"},
	{streamerr.New(streamerr.Unsupported), 502, "stream kind not served here"},
	{streamerr.New(streamerr.Closed), 502, "closed by the other end"},
	{fmt.Errorf("circuit: %w", streamerr.New(streamerr.ExitPolicy)), 403, "rejected by exit policy"},
	{errors.Join(errors.New("first"), streamerr.New(streamerr.ExitPolicy)), 403, "rejected by exit policy"},
	{errors.New("dial secret.invalid: boom"), 502, "failed"},
	{specialname.ErrBadName, 400, "mistyped .dark name: "},
	{fmt.Errorf("overlay: bad address: %w", specialname.ErrBadName), 400, "mistyped .dark name: "},
	{specialname.ErrNameNotFound, 502, "connect failed: name not registered"},
	{fmt.Errorf("overlay: %w: %w", specialname.ErrNameNotFound, errors.New("names: not found")), 502, "connect failed: name not registered"},
	{specialname.ErrName, 502, "a network name, resolved by the node"},
	{fmt.Errorf("dial: %w", specialname.ErrHiddenService), 502, "hidden service address"},
}

// Every stream error reason has a deliberate status: a reason added to
// streamerr fails this test until it is placed in statusTests (and in the
// package documentation).
func TestStatusForEveryReason(t *testing.T) {
	mapped := map[streamerr.Reason]bool{}
	for _, tt := range statusTests {
		var se *streamerr.Error
		if errors.As(tt.err, &se) && tt.err == error(se) {
			mapped[se.Reason] = true
		}
	}
	for r := range 256 {
		reason := streamerr.Reason(r)
		if !strings.HasPrefix(reason.String(), "reason ") && !mapped[reason] {
			t.Errorf("reason %d (%v) has no status in statusTests", r, reason)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	tests := statusTests
	errs := map[string]error{}
	for i, tt := range tests {
		errs[fmt.Sprintf("r%d.invalid:80", i)] = tt.err
		if got := StatusCode(tt.err); got != tt.status {
			t.Errorf("StatusCode(%v) = %d, want %d", tt.err, got, tt.status)
		}
	}
	if StatusCode(nil) != 200 {
		t.Errorf("StatusCode(nil) != 200")
	}
	d := &proxytest.Dialer{Fn: proxytest.FailWith(errs)}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	for i, tt := range tests {
		for _, connect := range []bool{false, true} {
			c := proxytest.Dial(t, proxy)
			if connect {
				write(t, c, fmt.Sprintf("CONNECT r%d.invalid:80 HTTP/1.1\r\nHost: r%d.invalid:80\r\n\r\n", i, i))
			} else {
				write(t, c, fmt.Sprintf("GET http://r%d.invalid/ HTTP/1.1\r\nHost: r%d.invalid\r\n\r\n", i, i))
			}
			resp, body := readResponse(t, bufio.NewReader(c), "GET")
			if resp.StatusCode != tt.status || !resp.Close {
				t.Errorf("%v: status %d close=%v, want %d", tt.err, resp.StatusCode, resp.Close, tt.status)
			}
			if !strings.Contains(string(body), tt.text) || strings.Contains(string(body), "invalid") {
				t.Errorf("%v: body %q", tt.err, body)
			}
		}
	}
}

// A CONNECT or absolute-URI request to a .dark host (and to the other
// names of specialname) is answered with a page that says why (400 for a
// mistyped .dark name, 502 for the others; TestDarkAddressPages checks
// each .dark case), before
// the Dialer is asked, whatever the letter case, with or without a
// trailing dot; neither the page nor the log names the host.
func TestSpecialNamesRefused(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	const dark = "mistyped .dark name: "
	for _, tt := range []struct{ req, text string }{
		{"CONNECT abcdef_secret.dark:443 HTTP/1.1\r\nHost: abcdef_secret.dark:443\r\n\r\n", dark},
		{"CONNECT ABCDEF_SECRET.DARK.:443 HTTP/1.1\r\n\r\n", dark},
		{"GET http://abcdef_secret.dark/ HTTP/1.1\r\nHost: abcdef_secret.dark\r\n\r\n", dark},
		{"GET http://www.abcdef_secret.Dark.:8080/x HTTP/1.1\r\n\r\n", dark},
		{"CONNECT abcdefsecret.onion:443 HTTP/1.1\r\n\r\n", ".onion"},
		{"GET http://localhost:8080/ HTTP/1.1\r\n\r\n", "local names"},
		{"CONNECT printer.local:631 HTTP/1.1\r\n\r\n", "local names"},
		{"GET http://nas.home.arpa/ HTTP/1.1\r\n\r\n", "local names"},
	} {
		c := proxytest.Dial(t, proxy)
		write(t, c, tt.req)
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		want := http.StatusBadGateway
		if tt.text == dark {
			want = http.StatusBadRequest
		}
		if resp.StatusCode != want || !resp.Close {
			t.Errorf("%q: status %d close=%v, want %d", tt.req, resp.StatusCode, resp.Close, want)
		}
		if !strings.Contains(string(body), tt.text) || strings.Contains(string(body), "secret") {
			t.Errorf("%q: body %q", tt.req, body)
		}
	}
	// A percent-encoded dot is not allowed in a host (RFC 3986 §3.2.2).
	c := proxytest.Dial(t, proxy)
	write(t, c, "GET http://abcdefsecret%2Edark/ HTTP/1.1\r\n\r\n")
	if resp, _ := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("percent-encoded host: status %d, want 400", resp.StatusCode)
	}
	if calls := d.Calls(); len(calls) != 0 {
		t.Fatalf("Dialer called for %q", calls)
	}
	proxytest.CheckNoAddresses(t, rec.WaitLines(9), "secret", "printer", "nas")
}

// The Host header of an absolute-URI request is replaced by the URI's
// authority (RFC 9112 §3.2.2), so a .dark name in it never reaches the
// origin.
func TestHostHeaderNotForwarded(t *testing.T) {
	var got string
	d := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { got = r.Host })
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	c := proxytest.Dial(t, proxy)
	write(t, c, "GET http://example.invalid/ HTTP/1.1\r\nHost: abcdef.dark\r\nConnection: close\r\n\r\n")
	if resp, _ := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got != "example.invalid" {
		t.Fatalf("origin saw Host %q", got)
	}
}

// A client that drips its request headers one byte a second (a
// slowloris) is closed, without an answer, once DefaultHandshakeTimeout
// (at most 5 s) has passed since the accept; a client that connects
// meanwhile is served, and its tunnel, idle for longer than the timeout,
// stays open: the deadline ends with the headers.
func TestSlowHeaderClosed(t *testing.T) {
	if DefaultHandshakeTimeout > 5*time.Second {
		t.Fatalf("DefaultHandshakeTimeout is %v, more than 5 s", DefaultHandshakeTimeout)
	}
	synctest.Test(t, func(t *testing.T) {
		d := &proxytest.Dialer{Fn: proxytest.PipeEcho}
		p := proxytest.StartMemProxy(t, &Server{Dialer: d})

		slow := p.Dial(t)
		req := []byte("GET http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
		closed := proxytest.ReadUntilClosed(slow)
		dripped := make(chan int, 1)
		go func() { dripped <- proxytest.Drip(slow, req, time.Second) }()

		time.Sleep(2 * time.Second)
		c := p.Dial(t)
		write(t, c, "CONNECT example.invalid:443 HTTP/1.1\r\n\r\n")
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
			t.Fatalf("normal client: %v, %v", resp, err)
		}
		time.Sleep(2 * DefaultHandshakeTimeout)
		write(t, c, "ping")
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
			t.Fatalf("tunnel echo %q, %v", got, err)
		}

		select {
		case r := <-closed:
			if r.After > 5*time.Second || len(r.Read) != 0 {
				t.Errorf("slow client closed after %v having read %q; want at most 5 s and nothing", r.After, r.Read)
			}
		case <-time.After(time.Minute):
			t.Fatal("slow client not closed")
		}
		if n := <-dripped; n >= len(req) {
			t.Errorf("the whole request (%d bytes) was accepted", n)
		}
		if calls := d.Calls(); len(calls) != 1 {
			t.Errorf("dial calls %q, want the normal client's only", calls)
		}
	})
}

func TestDialTimeout(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.NewStall().Dial}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, DialTimeout: 50 * time.Millisecond})
	c := proxytest.Dial(t, proxy)
	write(t, c, "GET http://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n")
	if resp, _ := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}

func TestBadRequests(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: example.invalid\r\n\r\n",
		"GET https://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n",
		"GET ftp://example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n",
		"GET http://user:pw@example.invalid/ HTTP/1.1\r\nHost: example.invalid\r\n\r\n",
		"GET http://example.invalid:99999/ HTTP/1.1\r\n\r\n",
		"GET http://example.invalid:0/ HTTP/1.1\r\n\r\n",
		"GET http://exa_mple!.invalid/ HTTP/1.1\r\n\r\n",
		"GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n\r\n",
		"GET http:///path HTTP/1.1\r\n\r\n",
		"CONNECT example.invalid HTTP/1.1\r\n\r\n",
		"CONNECT /rpc HTTP/1.1\r\n\r\n",
		"CONNECT user@example.invalid:443 HTTP/1.1\r\n\r\n",
		"CONNECT example.invalid:443 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n",
		"CONNECT example.invalid:443 HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n",
		"CONNECT example.invalid:443 HTTP/1.1\r\nProxy-Authorization: " + basic("a", "b") + "\r\nProxy-Authorization: " + basic("c", "d") + "\r\n\r\n",
		"BLAH\r\n\r\n",
	} {
		c := proxytest.Dial(t, proxy)
		write(t, c, raw)
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		if resp.StatusCode != 400 || !resp.Close {
			t.Errorf("%q: status %d close=%v", raw, resp.StatusCode, resp.Close)
		}
		if strings.Contains(string(body), "example.invalid") {
			t.Errorf("%q: body echoes the target: %q", raw, body)
		}
	}
	c := proxytest.Dial(t, proxy)
	write(t, c, "GET http://example.invalid/ HTTP/9.9\r\n\r\n")
	if resp, _ := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 505 {
		t.Errorf("HTTP/9.9: status %d, want 505", resp.StatusCode)
	}
	if n := len(d.Calls()); n != 0 {
		t.Fatalf("Dialer called %d times", n)
	}
}

func TestHeaderTooLarge(t *testing.T) {
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{}})
	c := proxytest.Dial(t, proxy)
	go func() {
		_, _ = io.WriteString(c, "GET http://example.invalid/ HTTP/1.1\r\nX-Big: "+strings.Repeat("a", maxHeaderBytes+10<<10)+"\r\n\r\n")
	}()
	resp, _ := readResponse(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != 431 {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{}, HandshakeTimeout: 100 * time.Millisecond})
	c := proxytest.Dial(t, proxy)
	write(t, c, "GET http://example.invalid/ HTTP/1.1\r\n") // headers never end
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want a silent close", b, err)
	}
}

func TestCloseWithActiveConnections(t *testing.T) {
	echoBE := proxytest.StartBackend(t, proxytest.Echo)
	// A slow origin: headers and part of the body, then nothing.
	slowBE := proxytest.StartBackend(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		io.Copy(io.Discard, c)
	})
	stall := proxytest.NewStall()
	d := &proxytest.Dialer{Fn: func(ctx context.Context, target string) (net.Conn, error) {
		var nd net.Dialer
		switch target {
		case "blocked.invalid:80":
			return stall.Dial(ctx, target)
		case "slow.invalid:80":
			return nd.DialContext(ctx, "tcp", slowBE.Addr())
		default:
			return nd.DialContext(ctx, "tcp", echoBE.Addr())
		}
	}}
	s := &Server{Dialer: d}
	proxy, serveErr := proxytest.Serve(t, s)

	var clients []net.Conn
	tunnel := proxytest.Dial(t, proxy)
	write(t, tunnel, "CONNECT example.invalid:443 HTTP/1.1\r\n\r\nping")
	tbr := bufio.NewReader(tunnel)
	if resp, err := http.ReadResponse(tbr, &http.Request{Method: "CONNECT"}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v", err)
	}
	if b := make([]byte, 4); func() error { _, err := io.ReadFull(tbr, b); return err }() != nil {
		t.Fatal("no echo")
	}
	clients = append(clients, tunnel)

	slow := proxytest.Dial(t, proxy)
	write(t, slow, "GET http://slow.invalid/ HTTP/1.1\r\n\r\n")
	sbr := bufio.NewReader(slow)
	resp, err := http.ReadResponse(sbr, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow GET: %v", err)
	}
	clients = append(clients, slow)

	half := proxytest.Dial(t, proxy)
	write(t, half, "GET http://example.invalid/ HTTP/1.1\r\n")
	clients = append(clients, half)

	blocked := proxytest.Dial(t, proxy)
	write(t, blocked, "GET http://blocked.invalid/ HTTP/1.1\r\n\r\n")
	stall.WaitEntered(t)
	clients = append(clients, blocked)

	proxytest.CloseWithin(t, s, serveErr)
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("slow body ended cleanly after Close: %q", b)
	}
	proxytest.ExpectAllClosed(t, clients...)
	proxytest.VerifyClosedServer(t, s, clients, echoBE, slowBE)
}

func TestCloseConcurrentWithServe(t *testing.T) {
	proxytest.CloseConcurrentWithServe(t, func() proxytest.Server { return &Server{Dialer: &proxytest.Dialer{}} })
}

func TestServeNilDialer(t *testing.T) {
	proxytest.ExpectServeRefused(t, &Server{}, "httpproxy: ")
}

func TestLogsNoAddresses(t *testing.T) {
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Fn: proxytest.SecretRefused}, Logf: rec.Logf})
	for _, raw := range []string{
		"GET http://secret.invalid/ HTTP/1.1\r\n\r\n",
		"GET http://secret.invalid/ HTTP/1.1\r\nBad Header\r\n\r\n",
		"GET https://secret.invalid/ HTTP/1.1\r\n\r\n",
	} {
		c := proxytest.Dial(t, proxy)
		write(t, c, raw)
		readResponse(t, bufio.NewReader(c), "GET")
	}
	lines := rec.Lines()
	if len(lines) < 3 {
		t.Fatalf("logged %q, want three lines", lines)
	}
	proxytest.CheckNoAddresses(t, lines, "secret")
}
