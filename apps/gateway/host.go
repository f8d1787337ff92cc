package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Specification constants of the gateway (spec/gateway.md §2).
const (
	// Suffix is the top-level label of network sites.
	Suffix = ".dark"
	// SitePort is the only port the gateway dials.
	SitePort = "80"
	// MaxKeySubdomains is the most labels before a key address label.
	MaxKeySubdomains = 3
)

// Errors of the Host and site parsers.
var (
	// errForeignHost: the Host is neither the gateway's Domain nor under it.
	errForeignHost = errors.New("gateway: host is not served by this gateway")
	// errBadSite: the labels before the Domain are not a valid site.
	errBadSite = errors.New("gateway: invalid site")
)

// hostKind says what a Host names.
type hostKind int

const (
	hostForeign hostKind = iota // not ours: 421
	hostDomain                  // the gateway itself: home page, path form
	hostSite                    // SITE.<Domain>: a site
)

// domain is the gateway's own host and port, lowercased.
type domain struct {
	host string // e.g. "gw.example.org"
	port string // "" when the Domain has none
}

// String returns host[:port].
func (d domain) String() string {
	if d.port == "" {
		return d.host
	}
	return d.host + ":" + d.port
}

// parseDomain checks Config.Domain: DNS labels of [a-z0-9-] (any case,
// lowered), not an IP address, with an optional decimal port.
func parseDomain(s string) (domain, error) {
	s = strings.ToLower(s)
	h, p := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		h, p = s[:i], s[i+1:]
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return domain{}, fmt.Errorf("%w: Domain has an invalid port", ErrConfig)
		}
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return domain{}, fmt.Errorf("%w: Domain is an IP address; sites need subdomains of a DNS name", ErrConfig)
	}
	if len(h) == 0 || len(h) > 253 {
		return domain{}, fmt.Errorf("%w: Domain host has %d bytes, want 1..253", ErrConfig, len(h))
	}
	for _, l := range strings.Split(h, ".") {
		if !dnsLabel(l) {
			return domain{}, fmt.Errorf("%w: Domain has an invalid DNS label", ErrConfig)
		}
	}
	return domain{host: h, port: p}, nil
}

// dnsLabel reports whether l is 1..63 bytes of [a-z0-9-], not starting or
// ending with '-'.
func dnsLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseHost classifies a request's Host against the gateway's Domain
// (spec/gateway.md §2). Letter case is ignored. The port must be the
// Domain's, or absent when the Domain has none. For hostSite it returns
// the site in canonical form (without ".dark"); a Host under the Domain
// whose site labels are not canonical (a ".dark" or a trailing dot
// included) is errBadSite, so each site has exactly one origin.
func parseHost(host string, d domain) (string, hostKind, error) {
	host = strings.ToLower(host)
	h, p := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		h, p = host[:i], host[i+1:]
		if p == "" {
			return "", hostForeign, errForeignHost
		}
	}
	if p != d.port {
		return "", hostForeign, errForeignHost
	}
	if h == d.host {
		return "", hostDomain, nil
	}
	if len(h) <= len(d.host)+1 || h[len(h)-len(d.host)-1] != '.' || h[len(h)-len(d.host):] != d.host {
		return "", hostForeign, errForeignHost
	}
	label := h[:len(h)-len(d.host)-1]
	site, err := canonicalSite(label)
	if err != nil {
		return "", hostSite, err
	}
	if site != label {
		return "", hostSite, fmt.Errorf("%w: not in canonical form", errBadSite)
	}
	return site, hostSite, nil
}

// canonicalSite returns the canonical form of a site written without its
// ".dark" suffix: a key address label under at most MaxKeySubdomains
// subdomain labels, or a name (names.CanonicalName). Errors never quote s.
func canonicalSite(s string) (string, error) {
	if s == "" || strings.HasSuffix(s, ".") || strings.HasPrefix(s, ".") {
		return "", fmt.Errorf("%w: empty label", errBadSite)
	}
	if len(s) > names.MaxNameLen {
		return "", fmt.Errorf("%w: %d bytes", errBadSite, len(s))
	}
	last := s
	prefix := ""
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		prefix, last = s[:i], s[i+1:]
	}
	if strings.EqualFold(last, "dark") {
		return "", fmt.Errorf("%w: the last label is \"dark\"", errBadSite)
	}
	if len(last) != keys.AddressLabelLength {
		n, err := names.CanonicalName(s)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errBadSite, err)
		}
		return n, nil
	}
	if _, err := keys.ParseAddress(last); err != nil {
		return "", fmt.Errorf("%w: %w", errBadSite, err)
	}
	last = strings.ToLower(last)
	if prefix == "" {
		return last, nil
	}
	if strings.Count(prefix, ".") >= MaxKeySubdomains {
		return "", fmt.Errorf("%w: more than %d labels before a key address", errBadSite, MaxKeySubdomains)
	}
	p, err := names.CanonicalName(prefix)
	if err != nil || p != strings.ToLower(prefix) {
		return "", fmt.Errorf("%w: invalid subdomain of a key address", errBadSite)
	}
	return p + "." + last, nil
}

// keyLabel returns the key address label of a canonical site, or "" for
// a name.
func keyLabel(site string) string {
	last := site[strings.LastIndexByte(site, '.')+1:]
	if len(last) == keys.AddressLabelLength {
		return last
	}
	return ""
}
