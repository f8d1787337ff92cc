package httpproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// ioTimeout bounds every blocking step of a test.
const ioTimeout = 10 * time.Second

type dialCall struct {
	target, isolation string
}

// fakeDialer records its calls and, unless fn decides otherwise, dials the
// loopback backend directly.
type fakeDialer struct {
	backend string
	// fn, when set, is asked first; a nil conn and nil error fall through
	// to dialing the backend.
	fn func(ctx context.Context, target string) (net.Conn, error)

	mu    sync.Mutex
	calls []dialCall
}

func (d *fakeDialer) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, dialCall{target, isolation})
	d.mu.Unlock()
	if d.fn != nil {
		c, err := d.fn(ctx, target)
		if c != nil || err != nil {
			return c, err
		}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.backend)
}

func (d *fakeDialer) Calls() []dialCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialCall(nil), d.calls...)
}

// backend is a loopback TCP server running handler on each connection.
type backend struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startBackend(t *testing.T, handler func(net.Conn)) *backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{l: l, conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				handler(c)
			}()
		}
	}()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) Addr() string { return b.l.Addr().String() }

func (b *backend) Close() {
	b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo copies everything back and half-closes on EOF.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// hashAfterEOF reads until EOF, then writes the SHA-256 of what it read.
func hashAfterEOF(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	_, _ = c.Write(h.Sum(nil))
}

// startProxy starts a Server on loopback and closes it at cleanup, checking
// that Serve returned net.ErrClosed.
func startProxy(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve returned %v, want net.ErrClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return l.Addr().String()
}

func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readResponse reads one response and its whole body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// proxyTransport returns an http.Transport that uses the proxy for every
// request and never anything else.
func proxyTransport(t *testing.T, proxy string, user *url.Userinfo) *http.Transport {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: proxy, User: user}
	tr := &http.Transport{
		Proxy:       http.ProxyURL(u),
		DialContext: (&net.Dialer{}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
