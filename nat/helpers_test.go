package nat

import (
	"net"
	"net/netip"
	"testing"

	"github.com/darkmatter/darkmatter/nat/natsim"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// Addresses of the test STUN server: A1:P1 is the primary socket.
var (
	stunA1 = ip("198.51.100.1")
	stunA2 = ip("198.51.100.2")
)

const stunP1, stunP2 = 3478, 3479

func mustListen(t testing.TB, h *natsim.Host, addr string) net.PacketConn {
	t.Helper()
	c, err := h.ListenPacket(addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startSTUN runs a Server on a public host of n; with full it has the three
// alternate sockets of RFC 5780. The returned stop closes it and checks
// that Serve returned nil.
func startSTUN(t testing.TB, n *natsim.Network, a1, a2 netip.Addr, full bool, cfg ServerConfig) (netip.AddrPort, *Server, func()) {
	t.Helper()
	ips := []netip.Addr{a1}
	if full {
		ips = append(ips, a2)
	}
	h, err := n.NewHost(ips...)
	if err != nil {
		t.Fatal(err)
	}
	at := func(a netip.Addr, p int) net.PacketConn {
		return mustListen(t, h, netip.AddrPortFrom(a, uint16(p)).String())
	}
	pc := at(a1, stunP1)
	if full {
		cfg.AltPort, cfg.AltIP, cfg.AltIPPort = at(a1, stunP2), at(a2, stunP1), at(a2, stunP2)
	}
	s := NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	return netip.AddrPortFrom(a1, stunP1), s, func() {
		pc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}

// behindNAT returns a socket on a private host behind a new NAT of n.
func behindNAT(t testing.TB, n *natsim.Network, public string, m, f natsim.Mapping) net.PacketConn {
	t.Helper()
	x, err := n.NewNAT(ip(public), natsim.NATConfig{Mapping: m, Filtering: f})
	if err != nil {
		t.Fatal(err)
	}
	h, err := x.NewHost(ip("192.168.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	return mustListen(t, h, ":4000")
}

var simBehaviours = []natsim.Mapping{natsim.EndpointIndependent, natsim.AddressDependent, natsim.AddressAndPortDependent}

// behaviour converts a natsim behaviour into the probe's.
func behaviour(m natsim.Mapping) Behavior {
	return map[natsim.Mapping]Behavior{
		natsim.EndpointIndependent:     EndpointIndependent,
		natsim.AddressDependent:        AddressDependent,
		natsim.AddressAndPortDependent: AddressAndPortDependent,
	}[m]
}
