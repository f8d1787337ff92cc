package httpproxy

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\n\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\nProxy-Authorization: Basic YTpiYw==\r\n\r\n",
		"GET http://example.invalid/path?q=1 HTTP/1.1\r\nHost: example.invalid\r\n\r\n",
		"POST http://192.0.2.1:8080/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET https://x/ HTTP/1.0\r\n\r\n",
		"GET http://[fe80::1%25eth0]:1/ HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(req.Target)
		if err != nil || host == "" {
			t.Fatalf("Target %q does not split: %v", req.Target, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("Target %q has a bad port", req.Target)
		}
		if req.Isolation != "" && !strings.HasPrefix(req.Isolation, "http:") {
			t.Fatalf("isolation key %q", req.Isolation)
		}
		if !req.Connect && req.HTTP.URL.Scheme != "http" {
			t.Fatalf("scheme %q accepted", req.HTTP.URL.Scheme)
		}
		// The target, written back as either kind of request, parses to
		// itself.
		for _, s := range []string{
			"CONNECT " + req.Target + " HTTP/1.1\r\n\r\n",
			"GET http://" + req.Target + "/ HTTP/1.1\r\n\r\n",
		} {
			again, err := ParseRequest(bufio.NewReader(strings.NewReader(s)))
			if err != nil || again.Target != req.Target {
				t.Fatalf("%q: %v, target %q, want %q", s, err, again.Target, req.Target)
			}
		}
	})
}
