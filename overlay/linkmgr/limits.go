package linkmgr

import (
	"net"
	"net/netip"
)

// Accept limits: defaults for the Config fields of the same names. They
// bound what peers can make a relay hold before any cryptography runs: a
// connection over a limit is closed as soon as it is accepted.
const (
	// DefaultMaxLinks bounds the accepted links, open or in their
	// handshake, in total. At about 20 KiB of memory each (buffers, two
	// goroutines, the Noise state) that is about 80 MiB.
	DefaultMaxLinks = 4096
	// DefaultMaxLinksPerIP bounds the accepted links, open or in their
	// handshake, from one source address (an IPv4 address, or an IPv6
	// /64). A client keeps one link to its guard and a relay one to
	// another; 16 leaves room for several nodes behind one NAT, while one
	// address can take at most 1/256 of DefaultMaxLinks.
	DefaultMaxLinksPerIP = 16
	// DefaultMaxHandshakes bounds the inbound handshakes in flight in
	// total. A handshake holds a goroutine and a read buffer until it
	// completes or link.Config.HandshakeTimeout (10 s) passes.
	DefaultMaxHandshakes = 256
	// DefaultMaxHandshakesPerIP bounds the inbound handshakes in flight
	// from one source address, so that one address holding connections
	// open without handshaking cannot take the handshake slots of others.
	DefaultMaxHandshakesPerIP = 4
)

// Stats are the manager's gauges and counters.
type Stats struct {
	// Links is the number of open links in the table, inbound and
	// outbound.
	Links int
	// Inbound is the number of accepted links, open or in their
	// handshake (what MaxLinks bounds).
	Inbound int
	// Handshakes is the number of inbound handshakes in flight.
	Handshakes int
	// Sources is the number of source addresses (IPv4, or IPv6 /64) with
	// an accepted link or handshake.
	Sources int
	// Dials is the number of dials in flight.
	Dials int

	// RefusedLinks counts connections closed at accept because MaxLinks
	// accepted links were open; RefusedLinksPerIP because their source
	// had MaxLinksPerIP.
	RefusedLinks, RefusedLinksPerIP uint64
	// RefusedHandshakes and RefusedHandshakesPerIP count connections
	// closed at accept because MaxHandshakes (MaxHandshakesPerIP from
	// their source) handshakes were in flight.
	RefusedHandshakes, RefusedHandshakesPerIP uint64
	// FailedHandshakes counts accepted connections whose handshake
	// failed (bad preamble, wrong key, timeout).
	FailedHandshakes uint64
}

// source is where an accepted connection comes from, as the per-address
// limits count it: an IPv4 address, or the /64 of an IPv6 address (one
// host usually has a whole /64). A transport whose addresses are not IP
// addresses is counted by host.
type source struct {
	ip    netip.Addr // IPv4, or the first address of the IPv6 /64
	other string     // the host when the address is not an IP
}

func sourceOf(a net.Addr) source {
	var ap netip.AddrPort
	if t, ok := a.(*net.TCPAddr); ok {
		ap = t.AddrPort()
	} else if p, err := netip.ParseAddrPort(a.String()); err == nil {
		ap = p
	} else {
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			host = a.String()
		}
		return source{other: host}
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return source{ip: ip}
}

// sourceCount is what one source holds.
type sourceCount struct {
	links      int // accepted links, open or in their handshake
	handshakes int // of which in their handshake
}

// slot is an accepted connection's place under the accept limits. It is
// taken when the connection is accepted, before the handshake, and given
// back exactly once: when the handshake fails or the link closes.
// Manager.mu guards its fields.
type slot struct {
	src         source
	handshaking bool
	released    bool
}

// admit takes a slot for a connection from remote, or returns nil if a
// limit is reached (and counts the refusal).
func (m *Manager) admit(remote net.Addr) *slot {
	src := sourceOf(remote)
	m.mu.Lock()
	defer m.mu.Unlock()
	sc := m.sources[src]
	switch {
	case m.inbound >= m.cfg.MaxLinks:
		m.stats.RefusedLinks++
	case sc != nil && sc.links >= m.cfg.MaxLinksPerIP:
		m.stats.RefusedLinksPerIP++
	case m.handshakes >= m.cfg.MaxHandshakes:
		m.stats.RefusedHandshakes++
	case sc != nil && sc.handshakes >= m.cfg.MaxHandshakesPerIP:
		m.stats.RefusedHandshakesPerIP++
	default:
		if sc == nil {
			sc = &sourceCount{}
			m.sources[src] = sc
		}
		sc.links++
		sc.handshakes++
		m.inbound++
		m.handshakes++
		return &slot{src: src, handshaking: true}
	}
	return nil
}

// handshakeDone moves s from the handshake count to the link count.
func (m *Manager) handshakeDone(s *slot) {
	if s == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.released || !s.handshaking {
		return
	}
	s.handshaking = false
	m.handshakes--
	m.sources[s.src].handshakes--
}

// release gives s back; a nil s (an outbound link) and a second call do
// nothing. The source's entry goes once it holds nothing, so the table
// holds only sources with a connection.
func (m *Manager) release(s *slot) {
	if s == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	sc := m.sources[s.src]
	if s.handshaking {
		m.handshakes--
		sc.handshakes--
	}
	m.inbound--
	sc.links--
	if sc.links == 0 {
		delete(m.sources, s.src)
	}
}
