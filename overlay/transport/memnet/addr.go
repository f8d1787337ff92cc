package memnet

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Scheme is the address scheme a memnet Host is registered under in a
// transport.Registry by convention: "mem://10.0.0.1:7000".
const Scheme = "mem"

// Addr is the address of a memnet listener or conn end. It implements
// net.Addr.
type Addr struct {
	AddrPort netip.AddrPort
}

var _ net.Addr = (*Addr)(nil)

// Network returns "memnet".
func (a *Addr) Network() string { return "memnet" }

// String returns "ip:port" ("[ip]:port" for IPv6).
func (a *Addr) String() string { return a.AddrPort.String() }

// parseHostPort parses "ip:port", ":port" or "[ip]:port". An empty host
// gives the zero netip.Addr.
func parseHostPort(s string) (netip.Addr, uint16, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("memnet: bad address %q: %w", s, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("memnet: bad port in %q", s)
	}
	if host == "" {
		return netip.Addr{}, uint16(port), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("memnet: bad address %q: host must be an IP literal", s)
	}
	return ip.Unmap(), uint16(port), nil
}
