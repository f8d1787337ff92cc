package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Implementation defaults (tuning, not protocol).
const (
	DefaultRate       = 10               // requests per second per client
	DefaultBurst      = 40               // requests a client may send at once
	DefaultMaxClients = 10000            // rate-limiter entries
	DefaultTimeout    = 60 * time.Second // per request, upstream
	DefaultMaxBody    = 1 << 20          // bytes of request body forwarded

	maxIdlePerSite = 2
	maxIdle        = 64
	idleTimeout    = 90 * time.Second
)

var (
	// ErrSiteNotFound is what Config.Dial wraps its node's "no such name"
	// and "no such site" errors into; the gateway answers it with 404.
	ErrSiteNotFound = errors.New("gateway: site not found")
	// ErrConfig is wrapped by New's errors.
	ErrConfig = errors.New("gateway: invalid config")
)

// Config configures a Gateway. Domain and Dial are required; every other
// field has a usable zero value.
type Config struct {
	// Domain is the gateway's own host[:port] as browsers see it, e.g.
	// "localhost:8080" or "gw.example.org" (any case). Sites are served at
	// SITE.<Domain>. When it has a port, a request's Host must carry the
	// same port; when it has none, the Host must carry none.
	Domain string
	// Dial opens a stream to a site; it is called only with network "tcp"
	// and addr "<SITE>.dark:80". It wraps the node's not-found errors into
	// ErrSiteNotFound.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Deny lists names or key addresses (with or without ".dark", any
	// case) that the gateway refuses with 451. A key address denies every
	// subdomain of it too; a name denies that name only.
	Deny []string
	// Rate is the requests per second a client may sustain (default
	// DefaultRate) and Burst how many it may send at once (default
	// DefaultBurst). A client is its remote IPv4 address or IPv6 /64.
	Rate  float64
	Burst int
	// MaxClients bounds the rate limiter's entries (default
	// DefaultMaxClients); the client idle longest is dropped first.
	MaxClients int
	// Timeout bounds each proxied request, from dialing to the end of the
	// response body (default DefaultTimeout).
	Timeout time.Duration
	// MaxBody is the largest request body forwarded (default
	// DefaultMaxBody); a larger one is refused with 413.
	MaxBody int64
	// Logf, if not nil, receives the gateway's few log lines. They never
	// hold client addresses, names, sites or paths.
	Logf func(format string, args ...any)
}

// Stats counts a Gateway's requests by outcome. Every request counts in
// Requests and in exactly one other field.
type Stats struct {
	Requests    uint64 // every request
	Proxied     uint64 // a site's response passed on
	Redirects   uint64 // path form answered with a redirect
	Pages       uint64 // the gateway's own pages: home, robots.txt
	Refused     uint64 // 400, 421 and 404 for the gateway's own host: not a proxy, foreign Host, invalid site
	RateLimited uint64 // 429
	Denied      uint64 // 451: on the deny list
	TooLarge    uint64 // 413: request body over MaxBody
	NotFound    uint64 // 404: the site was not found
	Upstream    uint64 // 502: any other failure to reach the site
	Timeouts    uint64 // 504
	Closed      uint64 // 503 after Close
}

// Gateway is an http.Handler serving network sites to browsers.
type Gateway struct {
	domain    domain
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	denyNames map[string]bool
	denyKeys  map[string]bool
	limiter   *limiter
	timeout   time.Duration
	maxBody   int64
	logf      func(format string, args ...any)
	tr        *http.Transport
	errLog    *log.Logger
	now       func() time.Time
	closed    atomic.Bool
	stats     struct{ requests, proxied, redirects, pages, refused, rateLimited, denied, tooLarge, notFound, upstream, timeouts, closed atomic.Uint64 }
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	d, err := parseDomain(cfg.Domain)
	if err != nil {
		return nil, err
	}
	if cfg.Dial == nil {
		return nil, fmt.Errorf("%w: no Dial", ErrConfig)
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Burst < 0 || cfg.MaxClients < 0 || cfg.Timeout < 0 || cfg.MaxBody < 0 {
		return nil, fmt.Errorf("%w: a negative or non-finite limit", ErrConfig)
	}
	g := &Gateway{
		domain:    d,
		dial:      cfg.Dial,
		denyNames: make(map[string]bool),
		denyKeys:  make(map[string]bool),
		timeout:   or(cfg.Timeout, DefaultTimeout),
		maxBody:   or(cfg.MaxBody, DefaultMaxBody),
		logf:      cfg.Logf,
		errLog:    log.New(io.Discard, "", 0),
		now:       time.Now,
	}
	if g.logf == nil {
		g.logf = func(string, ...any) {}
	}
	g.limiter = newLimiter(or(cfg.Rate, DefaultRate), or(cfg.Burst, DefaultBurst), or(cfg.MaxClients, DefaultMaxClients))
	for i, s := range cfg.Deny {
		site, err := canonicalSite(strings.TrimSuffix(trimDark(strings.TrimSuffix(s, ".")), "."))
		if err != nil {
			return nil, fmt.Errorf("%w: Deny[%d]: %w", ErrConfig, i, err)
		}
		if k := keyLabel(site); k != "" {
			g.denyKeys[k] = true
		} else {
			g.denyNames[site] = true
		}
	}
	g.tr = &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialSite,
		MaxIdleConns:           maxIdle,
		MaxIdleConnsPerHost:    maxIdlePerSite,
		IdleConnTimeout:        idleTimeout,
		ResponseHeaderTimeout:  g.timeout,
		DisableCompression:     true, // bodies pass unchanged, Accept-Encoding as the browser sent it
		MaxResponseHeaderBytes: 64 << 10,
	}
	return g, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// trimDark removes one trailing ".dark", any case.
func trimDark(s string) string {
	if len(s) > len(Suffix) && strings.EqualFold(s[len(s)-len(Suffix):], Suffix) {
		return s[:len(s)-len(Suffix)]
	}
	return s
}

// dialSite is the transport's only way out: it refuses any address but a
// site's port 80, whatever a bug upstream of it might ask.
func (g *Gateway) dialSite(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != SitePort || network != "tcp" {
		return nil, errors.New("gateway: refusing to dial a non-site address")
	}
	if len(host) <= len(Suffix) || host[len(host)-len(Suffix):] != Suffix {
		return nil, errors.New("gateway: refusing to dial a non-site address")
	}
	if site, err := canonicalSite(host[:len(host)-len(Suffix)]); err != nil || site+Suffix != host {
		return nil, errors.New("gateway: refusing to dial a non-site address")
	}
	return g.dial(ctx, network, addr)
}

// Close closes the idle connections to sites; requests after it are
// answered 503. It can be called more than once.
func (g *Gateway) Close() error {
	g.closed.Store(true)
	g.tr.CloseIdleConnections()
	return nil
}

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	s := &g.stats
	return Stats{
		Requests: s.requests.Load(), Proxied: s.proxied.Load(), Redirects: s.redirects.Load(),
		Pages: s.pages.Load(), Refused: s.refused.Load(), RateLimited: s.rateLimited.Load(),
		Denied: s.denied.Load(), TooLarge: s.tooLarge.Load(), NotFound: s.notFound.Load(),
		Upstream: s.upstream.Load(), Timeouts: s.timeouts.Load(), Closed: s.closed.Load(),
	}
}

// ServeHTTP serves one request (spec/gateway.md §3).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.stats.requests.Add(1)
	if g.closed.Load() {
		g.stats.closed.Add(1)
		errorPage(w, http.StatusServiceUnavailable)
		return
	}
	if ok, wait := g.limiter.allow(clientOf(r.RemoteAddr), g.now()); !ok {
		g.stats.rateLimited.Add(1)
		tooMany(w, int(math.Ceil(wait.Seconds())))
		return
	}
	// Never an open proxy: no CONNECT, no absolute-form, no "*".
	if r.Method == http.MethodConnect || r.URL.IsAbs() || !strings.HasPrefix(r.RequestURI, "/") {
		g.stats.refused.Add(1)
		errorPage(w, http.StatusBadRequest)
		return
	}
	site, kind, err := parseHost(r.Host, g.domain)
	switch {
	case kind == hostForeign:
		g.stats.refused.Add(1)
		errorPage(w, http.StatusMisdirectedRequest)
	case err != nil:
		g.stats.refused.Add(1)
		errorPage(w, http.StatusBadRequest)
	case kind == hostDomain:
		g.serveDomain(w, r)
	case g.denied(site):
		g.stats.denied.Add(1)
		errorPage(w, http.StatusUnavailableForLegalReasons)
	default:
		g.proxy(w, r, site)
	}
}

// denied reports whether the operator refuses a canonical site.
func (g *Gateway) denied(site string) bool {
	if k := keyLabel(site); k != "" {
		return g.denyKeys[k]
	}
	return g.denyNames[site]
}

// scheme is the scheme the browser used to reach the gateway.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// serveDomain serves the gateway's own host: the home page, robots.txt
// and the path form.
func (g *Gateway) serveDomain(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch p {
	case "/":
		g.stats.pages.Add(1)
		writePage(w, http.StatusOK, page{
			Title:  "darkmatter gateway",
			Paras:  []string{"This is an HTTP gateway to the sites of the darkmatter network, for visitors who do not run darkmatter."},
			Home:   true,
			Scheme: scheme(r),
			Domain: g.domain.String(),
		})
		return
	case "/robots.txt":
		g.stats.pages.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, "User-agent: *\nDisallow: /\n")
		return
	}
	first, rest := p[1:], "/"
	if i := strings.IndexByte(first, '/'); i >= 0 {
		first, rest = first[:i], first[i:]
	}
	site, err := canonicalSite(trimDark(first))
	if err != nil || trimDark(first) == first {
		g.stats.refused.Add(1)
		errorPage(w, http.StatusNotFound)
		return
	}
	target := scheme(r) + "://" + site + "." + g.domain.String() + rest
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusPermanentRedirect // keeps the method and body
	}
	g.stats.redirects.Add(1)
	w.Header().Set("Location", target)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
}
