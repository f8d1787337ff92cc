package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
)

// clientHeaders are request headers that say who or where the visitor is,
// or that only a proxy may act on; they are never forwarded
// (spec/gateway.md §4.1). httputil.ReverseProxy removes the hop-by-hop
// headers itself.
var clientHeaders = []string{
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip", "Via",
	"True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip",
	"Client-Ip", "Fastly-Client-Ip", "Proxy-Authorization", "Proxy-Connection",
	"Upgrade", "Connection",
}

// siteHeaders are response headers a site may not set through the
// gateway, since they act on the gateway's host or connection rather than
// on the site (spec/gateway.md §4.2).
var siteHeaders = []string{"Strict-Transport-Security", "Alt-Svc", "Public-Key-Pins", "Public-Key-Pins-Report-Only"}

// proxy forwards r to the canonical site and its response back.
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, site string) {
	if r.ContentLength > g.maxBody {
		g.stats.tooLarge.Add(1)
		errorPage(w, http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
	}
	sch := scheme(r)
	rp := &httputil.ReverseProxy{
		Transport: g.tr,
		ErrorLog:  g.errLog,
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme = "http"
			out.URL.Host = site + Suffix
			out.Host = site + Suffix
			for _, h := range clientHeaders {
				out.Header.Del(h)
			}
			g.rewriteOrigin(out.Header, site)
		},
		ModifyResponse: func(res *http.Response) error {
			g.stats.proxied.Add(1)
			g.rewriteResponse(res.Header, sch)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.proxyError(w, err)
		},
	}
	rp.ServeHTTP(w, r)
}

// proxyError answers a request the site could not answer.
func (g *Gateway) proxyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		g.stats.tooLarge.Add(1)
		errorPage(w, http.StatusRequestEntityTooLarge)
	case errors.Is(err, ErrSiteNotFound):
		g.stats.notFound.Add(1)
		errorPage(w, http.StatusNotFound)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		g.stats.timeouts.Add(1)
		g.logf("gateway: a site did not answer in time")
		errorPage(w, http.StatusGatewayTimeout)
	default:
		g.stats.upstream.Add(1)
		g.logf("gateway: a site could not be reached")
		errorPage(w, http.StatusBadGateway)
	}
}

// rewriteOrigin maps the Origin and Referer of a request from the
// gateway's form (http://SITE.<Domain>) to the site's own
// (http://SITE.dark), so a site's same-origin checks keep working. A
// Referer from anywhere but the same site is dropped; an Origin of
// another host is kept (the site must see that it is foreign), except the
// gateway's own host, which is dropped.
func (g *Gateway) rewriteOrigin(h http.Header, site string) {
	if o := h.Get("Origin"); o != "" && o != "null" {
		if s, kind, ok := g.gatewayURL(o); ok && kind == hostSite {
			h.Set("Origin", "http://"+s+Suffix)
		} else if ok {
			h.Del("Origin")
		}
	}
	if ref := h.Get("Referer"); ref != "" {
		s, kind, ok := g.gatewayURL(ref)
		if !ok || kind != hostSite || s != site {
			h.Del("Referer")
		} else {
			h.Set("Referer", "http://"+s+Suffix+ref[authorityEnd(ref):])
		}
	}
}

// gatewayURL reports whether u is an http(s) URL whose host is the
// gateway's or under it, and which site it names.
func (g *Gateway) gatewayURL(u string) (string, hostKind, bool) {
	i := strings.Index(u, "://")
	if i < 0 {
		return "", hostForeign, false
	}
	if sch := strings.ToLower(u[:i]); sch != "http" && sch != "https" {
		return "", hostForeign, false
	}
	site, kind, err := parseHost(u[i+3:authorityEnd(u)], g.domain)
	if kind == hostForeign || err != nil {
		return "", hostForeign, kind != hostForeign
	}
	return site, kind, true
}

// authorityEnd returns the index in u (which has a "://") where its
// authority ends: the first '/', '?' or '#' after it, or len(u).
func authorityEnd(u string) int {
	start := strings.Index(u, "://") + 3
	if j := strings.IndexAny(u[start:], "/?#"); j >= 0 {
		return start + j
	}
	return len(u)
}

// rewriteResponse applies spec/gateway.md §4.2 to a site's response
// headers; httputil.ReverseProxy has removed the hop-by-hop ones.
func (g *Gateway) rewriteResponse(h http.Header, sch string) {
	for _, k := range siteHeaders {
		h.Del(k)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Referrer-Policy") == "" {
		h.Set("Referrer-Policy", "same-origin")
	}
	if cs := h.Values("Set-Cookie"); len(cs) > 0 {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = hostOnlyCookie(c)
		}
		h["Set-Cookie"] = out
	}
	if loc := h.Get("Location"); loc != "" {
		if to, ok := g.mapDarkURL(loc, sch); ok {
			h.Set("Location", to)
		}
	}
}

// hostOnlyCookie removes the Domain attributes of a Set-Cookie value, so
// the cookie stays with the site's own origin and never reaches another
// site under the gateway (a parent name's site would otherwise set
// cookies for its children, and any site for all of them).
func hostOnlyCookie(c string) string {
	if !strings.Contains(strings.ToLower(c), "domain") {
		return c
	}
	parts := strings.Split(c, ";")
	kept := parts[:1]
	for _, a := range parts[1:] {
		name, _, _ := strings.Cut(a, "=")
		if strings.EqualFold(strings.TrimSpace(name), "domain") {
			continue
		}
		kept = append(kept, a)
	}
	return strings.Join(kept, ";")
}

// mapDarkURL maps an absolute http(s) URL of a site (http://SITE.dark[:80]/…)
// to the gateway's form (sch://SITE.<Domain>/…), the rest unchanged.
func (g *Gateway) mapDarkURL(u, sch string) (string, bool) {
	i := strings.Index(u, "://")
	if i < 0 {
		return "", false
	}
	if s := strings.ToLower(u[:i]); s != "http" && s != "https" {
		return "", false
	}
	end := authorityEnd(u)
	host := strings.ToLower(u[i+3 : end])
	host = strings.TrimSuffix(host, ":80")
	if strings.ContainsAny(host, ":@") || len(host) <= len(Suffix) || !strings.HasSuffix(host, Suffix) {
		return "", false
	}
	site, err := canonicalSite(host[:len(host)-len(Suffix)])
	if err != nil {
		return "", false
	}
	return sch + "://" + site + "." + g.domain.String() + u[end:], true
}
