package httpproxy

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
)

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
