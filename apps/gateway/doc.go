// Package gateway is darkmatter's HTTP gateway: it lets people with no
// darkmatter software visit network sites in an ordinary browser, the way
// an IPFS subdomain gateway serves IPFS content. spec/gateway.md is
// normative.
//
//	subdomain form   http://SITE.<Domain>/path?q  → the site SITE.dark,
//	                 reverse-proxied through the node's Dial to
//	                 "SITE.dark:80"; every site is its own browser origin
//	path form        http://<Domain>/SITE.dark/path?q → 301 to the
//	                 subdomain form
//	home             http://<Domain>/ → a page saying what the gateway is,
//	                 and that its visitors are not anonymous
//
// SITE is a key address label (56 base32 bytes, possibly under up to three
// subdomain labels) or a name of 1..4 labels (spec/names.md §1), in
// canonical lowercase form.
//
// Learning from tor2web, the gateway is never an open proxy: it answers
// only Hosts that are its Domain or a valid site under it, refuses CONNECT
// and absolute-form requests, and never dials anything but
// "<SITE>.dark:80". It limits each client (an IPv4 address or an IPv6 /64)
// with a token bucket, refuses the sites on its operator's deny list (451),
// bounds request bodies and the time of each request, and forwards only
// the end-to-end parts of a request: no hop-by-hop headers, and none that
// say who the visitor is (X-Forwarded-For, Forwarded, X-Real-IP, Via).
// Response bodies pass unchanged; response headers only as spec/gateway.md
// §4 says (hop-by-hop removed, cookies made host-only, .dark redirects
// mapped to the gateway, nosniff and a referrer policy added).
//
// Protocol flow:
//
//	g, err := gateway.New(gateway.Config{Domain: "gw.example.org", Dial: node.Dial})
//	http.ListenAndServe(":80", g)   // and a *.gw.example.org DNS record
//	defer g.Close()
//
// The caller's Dial wraps its node's "no such name or site" errors into
// ErrSiteNotFound, which the gateway answers with 404.
//
// What it does not do: it resolves no names and finds no hosts (the
// node's Dial does); it does not rewrite bodies, so absolute links to
// .dark hosts inside pages stay as they are; it serves no WebSocket or
// other Upgrade; it terminates no TLS and knows no certificates (the
// operator's server does; a wildcard certificate covers one-label sites
// only); it does not trust X-Forwarded-For, so behind a reverse proxy
// every visitor is one client to the rate limiter; it keeps no logs of
// visitors, names or paths. Visitors of a gateway are not anonymous: its
// operator sees their requests.
package gateway
