package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func parse(s string) (*Request, error) {
	return ParseRequest(bufio.NewReader(strings.NewReader(s)))
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		in        string
		target    string
		connect   bool
		isolation string
		err       error
	}{
		{"CONNECT example.invalid:443 HTTP/1.1\r\n\r\n", "example.invalid:443", true, "", nil},
		{"CONNECT [2001:DB8::1]:443 HTTP/1.1\r\n\r\n", "[2001:db8::1]:443", true, "", nil},
		{"CONNECT 192.0.2.1:22 HTTP/1.0\r\nProxy-Authorization: basic YTpiYw==\r\n\r\n", "192.0.2.1:22", true, "http:1:a2:bc", nil},
		{"GET http://example.invalid/x?y HTTP/1.1\r\n\r\n", "example.invalid:80", false, "", nil},
		{"GET http://Example.Invalid:8080 HTTP/1.1\r\n\r\n", "Example.Invalid:8080", false, "", nil},
		{"POST HTTP://example.invalid:/ HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", "example.invalid:80", false, "", nil},
		{"GET http://[::1]/ HTTP/1.1\r\n\r\n", "[::1]:80", false, "", nil},
		{"GET http://x.dark/ HTTP/1.1\r\nProxy-Authorization: Basic " + "YWI6Yw==" + "\r\n\r\n", "x.dark:80", false, "http:2:ab1:c", nil},
		{"GET http://x.dark/ HTTP/1.1\r\nProxy-Authorization: Basic Og==\r\n\r\n", "x.dark:80", false, "http:0:0:", nil},

		{"GET /x HTTP/1.1\r\nHost: example.invalid\r\n\r\n", "", false, "", ErrNotProxyRequest},
		{"OPTIONS * HTTP/1.1\r\n\r\n", "", false, "", ErrNotProxyRequest},
		{"GET https://example.invalid/ HTTP/1.1\r\n\r\n", "", false, "", ErrScheme},
		{"GET http://u:p@example.invalid/ HTTP/1.1\r\n\r\n", "", false, "", ErrUserinfo},
		{"GET http://example.invalid:65536/ HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"GET http://a!b/ HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"CONNECT example.invalid HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"CONNECT example.invalid:0 HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"CONNECT example.invalid:443/x HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"CONNECT /rpc HTTP/1.1\r\n\r\n", "", false, "", ErrBadTarget},
		{"CONNECT x:1 HTTP/1.1\r\nProxy-Authorization: Basic YWJj\r\n\r\n", "", false, "", ErrProxyAuth},
		{"CONNECT x:1 HTTP/1.1\r\nProxy-Authorization: Digest a=b\r\n\r\n", "", false, "", ErrProxyAuth},
		{"CONNECT x:1 HTTP/2.0\r\n\r\n", "", false, "", ErrHTTPVersion},
		{"", "", false, "", io.EOF},
		{"GET http://x/ HTTP/1.1\r\nHost: x\r\n", "", false, "", io.ErrUnexpectedEOF},
	} {
		req, err := parse(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%q: err %v, want %v", tt.in, err, tt.err)
			} else if !strings.HasPrefix(err.Error(), "httpproxy: ") {
				t.Errorf("%q: error %q lacks the package prefix", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if req.Target != tt.target || req.Connect != tt.connect || req.Isolation != tt.isolation {
			t.Errorf("%q: got (%q, %v, %q), want (%q, %v, %q)", tt.in,
				req.Target, req.Connect, req.Isolation, tt.target, tt.connect, tt.isolation)
		}
	}
}

func TestParseRequestLeavesBody(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET http://y/ HTTP/1.1\r\n\r\n"))
	req, err := ParseRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(req.HTTP.Body)
	if err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v", b, err)
	}
	req, err = ParseRequest(br)
	if err != nil || req.Target != "y:80" {
		t.Fatalf("second request: %v, %v", req, err)
	}
}

func TestIsolationKey(t *testing.T) {
	if IsolationKey("a", "bc") == IsolationKey("ab", "c") {
		t.Fatal("keys collide")
	}
}
