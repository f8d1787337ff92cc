package httpproxy

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Errors returned by ParseRequest for requests that are well-formed HTTP but
// not acceptable proxy requests. Malformed HTTP gives other errors, which
// wrap those of net/http or of the reader.
var (
	ErrNotProxyRequest = errors.New("httpproxy: origin-form request, not a proxy request")
	ErrScheme          = errors.New("httpproxy: unsupported URL scheme")
	ErrBadTarget       = errors.New("httpproxy: bad target host or port")
	ErrUserinfo        = errors.New("httpproxy: userinfo in request URI")
	ErrProxyAuth       = errors.New("httpproxy: malformed Proxy-Authorization")
	ErrHTTPVersion     = errors.New("httpproxy: unsupported HTTP version")
)

// Request is a parsed proxy request.
type Request struct {
	// Target is "host:port" (net.JoinHostPort form), where host is an IP
	// literal in canonical form or a domain name as the client sent it.
	Target string
	// Connect is true for a CONNECT request, false for an absolute-URI one.
	Connect bool
	// Isolation is the stream-isolation key from Proxy-Authorization.
	Isolation string
	// HTTP is the request as read by net/http. For an absolute-URI request
	// its Body reads the request body from the bufio.Reader, on demand.
	HTTP *http.Request
}

// ParseRequest reads one request from br and checks that it is a proxy
// request: CONNECT host:port, or an absolute URI with scheme http. It reads
// the headers only; a body stays in br, behind Request.HTTP.Body.
func ParseRequest(br *bufio.Reader) (*Request, error) {
	hr, err := http.ReadRequest(br)
	if err != nil {
		return nil, fmt.Errorf("httpproxy: read request: %w", err)
	}
	if hr.ProtoMajor != 1 {
		return nil, ErrHTTPVersion
	}
	req := &Request{HTTP: hr}
	if hr.Method == http.MethodConnect {
		req.Connect = true
		// net/http puts an authority-form target into URL.Host; anything
		// else (CONNECT /path, CONNECT http://...) leaves it empty or sets
		// a path.
		if hr.URL.Host == "" || hr.URL.Path != "" || hr.URL.Scheme != "" ||
			hr.URL.RawQuery != "" || hr.URL.User != nil {
			return nil, ErrBadTarget
		}
		host, port, err := net.SplitHostPort(hr.URL.Host)
		if err != nil {
			return nil, ErrBadTarget
		}
		if req.Target, err = target(host, port); err != nil {
			return nil, err
		}
	} else {
		if !hr.URL.IsAbs() {
			return nil, ErrNotProxyRequest
		}
		if hr.URL.Scheme != "http" {
			return nil, ErrScheme
		}
		if hr.URL.User != nil {
			return nil, ErrUserinfo
		}
		if hr.URL.Opaque != "" || hr.URL.Host == "" {
			return nil, ErrBadTarget
		}
		port := hr.URL.Port()
		if port == "" {
			port = "80"
		}
		if req.Target, err = target(hr.URL.Hostname(), port); err != nil {
			return nil, err
		}
	}
	if req.Isolation, err = isolationKey(hr.Header); err != nil {
		return nil, err
	}
	return req, nil
}

// target checks host and port and joins them.
func target(host, port string) (string, error) {
	h, ok := checkHost(host)
	if !ok {
		return "", ErrBadTarget
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || port[0] == '+' {
		return "", ErrBadTarget
	}
	return net.JoinHostPort(h, strconv.FormatUint(p, 10)), nil
}

// checkHost returns host for the Dialer: an IP literal in canonical form, or
// host itself when it is a plausible domain name (letters, digits, '-', '.',
// '_', at most 255 bytes).
func checkHost(host string) (string, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if host == "" || len(host) > 255 {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_':
		default:
			return "", false
		}
	}
	return host, true
}

// isolationKey derives the isolation key from Proxy-Authorization.
func isolationKey(h http.Header) (string, error) {
	vals := h.Values("Proxy-Authorization")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", ErrProxyAuth
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", ErrProxyAuth
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", ErrProxyAuth
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", ErrProxyAuth
	}
	return IsolationKey(user, pass), nil
}

// IsolationKey returns the stream-isolation key for Basic credentials:
// "http:" followed by each string prefixed with its decimal length and a
// colon.
func IsolationKey(user, pass string) string {
	return "http:" + strconv.Itoa(len(user)) + ":" + user + strconv.Itoa(len(pass)) + ":" + pass
}
