package descriptor

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/darkmatter/darkmatter/overlay/transport"
)

// Address schemes (spec/descriptor.md §2). A link address is
// "scheme://host:port"; the scheme names the transport that reaches it.
const (
	// SchemeTCP is a Noise link over a TCP connection.
	SchemeTCP = transport.SchemeTCP
	// MaxSchemeLen bounds the scheme of an address in bytes.
	MaxSchemeLen = transport.MaxSchemeLen
)

const schemeSep = transport.SchemeSep

// SplitAddr splits a link address "scheme://host:port" into its scheme and
// "host:port", checking both (spec/descriptor.md §2): the scheme is 1..16
// bytes of [a-z][a-z0-9]*, and any scheme is accepted, known or not (a node
// skips addresses whose transport it lacks). The whole address is at most
// MaxAddrLen bytes. An address without a scheme is an error; see
// NormalizeAddr for user input.
func SplitAddr(a string) (scheme, hostport string, err error) {
	scheme, hostport, err = splitAddr(a)
	if err != nil {
		return "", "", fmt.Errorf("descriptor: %w", err)
	}
	return scheme, hostport, nil
}

// splitAddr is SplitAddr with errors that lack the package prefix, for
// callers that wrap them.
func splitAddr(a string) (scheme, hostport string, err error) {
	if len(a) == 0 || len(a) > MaxAddrLen {
		return "", "", fmt.Errorf("address is %d bytes, want 1..%d", len(a), MaxAddrLen)
	}
	scheme, hostport, ok := strings.Cut(a, schemeSep)
	if !ok {
		return "", "", fmt.Errorf("address %q has no scheme (want scheme://host:port)", a)
	}
	if err := transport.CheckScheme(scheme); err != nil {
		return "", "", fmt.Errorf("address %q: %w", a, err)
	}
	if err := checkHostPort(hostport); err != nil {
		return "", "", err
	}
	return scheme, hostport, nil
}

// JoinAddr returns "scheme://hostport". It does not check its arguments.
func JoinAddr(scheme, hostport string) string { return scheme + schemeSep + hostport }

// NormalizeAddr returns a in the form descriptors carry: a bare
// "host:port" becomes "tcp://host:port", and an address with a scheme is
// checked as SplitAddr checks it. Use it for addresses typed by users and
// for Descriptor.Addrs before signing (Sign calls it).
func NormalizeAddr(a string) (string, error) {
	a, err := normalizeAddr(a)
	if err != nil {
		return "", fmt.Errorf("descriptor: %w", err)
	}
	return a, nil
}

// normalizeAddr is NormalizeAddr with errors that lack the package prefix.
func normalizeAddr(a string) (string, error) {
	if !strings.Contains(a, schemeSep) {
		a = JoinAddr(SchemeTCP, a)
	}
	if _, _, err := splitAddr(a); err != nil {
		return "", err
	}
	return a, nil
}

// checkHostPort checks the "host:port" part of a link address: a decimal
// port in 1..65535 without leading zeros, and a host that is an IP address
// (IPv6 in brackets, no zone) or a DNS name of letters, digits, '-' and
// '.'.
func checkHostPort(s string) error {
	if len(s) == 0 || len(s) > MaxAddrLen {
		return fmt.Errorf("address is %d bytes, want 1..%d", len(s), MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("address %q: port is not a number in 1..65535", s)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("address %q: zones are not allowed", s)
		}
		if ip.Is6() != (s[0] == '[') {
			return fmt.Errorf("address %q: only IPv6 addresses go in brackets", s)
		}
		return nil
	}
	if s[0] == '[' {
		return fmt.Errorf("address %q: brackets hold only IPv6 addresses", s)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("address %q: host is neither an IP address nor a DNS name", s)
		}
	}
	return nil
}
