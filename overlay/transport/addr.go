package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SchemeTCP names the TCP transport in addresses: "tcp://host:port". An
// address without a scheme is a TCP address, so "host:port" from flags and
// older bootstrap strings keeps working.
const SchemeTCP = "tcp"

// MaxSchemeLen bounds a scheme, as spec/descriptor.md §2 does.
const MaxSchemeLen = 16

// SchemeSep separates an address's scheme from its "host:port".
const SchemeSep = "://"

// ErrUnknownScheme means no transport is registered for an address's
// scheme.
var ErrUnknownScheme = errors.New("transport: no transport for the address scheme")

// Addr is a link address: the scheme names the transport, HostPort is the
// "host:port" that transport dials or listens on.
type Addr struct {
	Scheme   string // "tcp", "mem", later "quic"; [a-z][a-z0-9]*, at most 16 bytes
	HostPort string // "host:port"; the host may be empty and the port 0 for Listen
}

// ParseAddr parses "scheme://host:port", or a bare "host:port", which means
// tcp. The scheme is a lowercase letter followed by lowercase letters and
// digits (at most 16); host:port must split with net.SplitHostPort and the
// port must be a number in 0..65535. Whether the host resolves, or the
// scheme has a transport, is left to Dial and Listen.
func ParseAddr(s string) (Addr, error) {
	scheme, hostport, ok := strings.Cut(s, SchemeSep)
	if !ok {
		scheme, hostport = SchemeTCP, s
	}
	if err := CheckScheme(scheme); err != nil {
		return Addr{}, fmt.Errorf("transport: address %q: %w", s, err)
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Addr{}, fmt.Errorf("transport: address %q is not [scheme://]host:port", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Addr{}, fmt.Errorf("transport: address %q: port is not a number in 0..65535", s)
	}
	return Addr{Scheme: scheme, HostPort: hostport}, nil
}

// CheckScheme checks an address scheme (spec/descriptor.md §2): 1..16
// bytes, a lowercase ASCII letter followed by lowercase letters and digits.
// Any such scheme is valid, whether a transport for it exists or not.
func CheckScheme(s string) error {
	if len(s) == 0 || len(s) > MaxSchemeLen {
		return fmt.Errorf("scheme is %d bytes, want 1..%d", len(s), MaxSchemeLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9') {
			return fmt.Errorf("scheme %q is not [a-z][a-z0-9]*", s)
		}
	}
	return nil
}

// String returns "scheme://host:port".
func (a Addr) String() string { return a.Scheme + SchemeSep + a.HostPort }

// Registry is a set of transports keyed by address scheme, so one node runs
// several at once (TCP, later QUIC; memnet under its own scheme in tests).
// It is itself a Transport: Dial and Listen take "scheme://host:port" or a
// bare "host:port" (tcp), pick the transport by scheme and give it the
// host:port. Do not modify a Registry while it is in use.
type Registry map[string]Transport

var _ Transport = Registry(nil)

// Lookup returns the transport for addr's scheme and addr parsed.
func (r Registry) Lookup(addr string) (Transport, Addr, error) {
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, Addr{}, err
	}
	t := r[a.Scheme]
	if t == nil {
		return nil, a, fmt.Errorf("%w %q", ErrUnknownScheme, a.Scheme)
	}
	return t, a, nil
}

// Supports reports whether addr parses and its scheme has a transport.
func (r Registry) Supports(addr string) bool {
	_, _, err := r.Lookup(addr)
	return err == nil
}

// Dial connects to addr with the transport of its scheme.
func (r Registry) Dial(ctx context.Context, addr string) (net.Conn, error) {
	t, a, err := r.Lookup(addr)
	if err != nil {
		return nil, err
	}
	return t.Dial(ctx, a.HostPort)
}

// Listen listens on addr with the transport of its scheme. The listener's
// Addr is the transport's, without the scheme.
func (r Registry) Listen(addr string) (net.Listener, error) {
	t, a, err := r.Lookup(addr)
	if err != nil {
		return nil, err
	}
	return t.Listen(a.HostPort)
}
