package natsim

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Mapping is how a NAT chooses the public address of an outbound flow
// (RFC 4787 §4.1).
type Mapping int

// Mapping behaviours.
const (
	// EndpointIndependent reuses one public port for every destination of
	// an internal address and port.
	EndpointIndependent Mapping = iota
	// AddressDependent uses one public port per destination IP.
	AddressDependent
	// AddressAndPortDependent uses one public port per destination IP and
	// port: the symmetric NAT.
	AddressAndPortDependent
)

// Filtering is which inbound packets a NAT lets through a mapping (RFC
// 4787 §5). It reuses the names of [Mapping]: EndpointIndependent admits
// anyone, AddressDependent admits IPs the mapping has sent to,
// AddressAndPortDependent admits only the exact IP and port it has sent to.
type Filtering = Mapping

// Tuning defaults of a NAT.
const (
	DefaultMappingTimeout = 2 * time.Minute // RFC 4787 REQ-5 minimum
	DefaultMaxMappings    = 4096
	firstPublicPort       = 20000
)

// NATConfig configures a [NAT]. The zero value is an endpoint-independent
// mapping with endpoint-independent filtering (a "full cone").
type NATConfig struct {
	Mapping   Mapping
	Filtering Filtering
	// MappingTimeout is how long a mapping lives without outbound traffic;
	// 0 means DefaultMappingTimeout.
	MappingTimeout time.Duration
	// MaxMappings bounds the mapping table; when it is full and no mapping
	// has expired, new flows are dropped. 0 means DefaultMaxMappings.
	MaxMappings int
	// Now is the NAT's clock; nil means time.Now.
	Now func() time.Time
}

// NAT joins a private LAN of hosts to the public network through one
// public IP address.
type NAT struct {
	net      *Network
	publicIP netip.Addr
	cfg      NATConfig

	mu       sync.Mutex           // guards the following
	lan      map[netip.Addr]*Host // private hosts by address
	byKey    map[mapKey]*mapping  // outbound lookup
	byPort   map[uint16]*mapping  // inbound lookup
	nextPort uint16
}

// mapKey identifies a mapping: the internal endpoint plus whatever part of
// the destination the mapping behaviour depends on.
type mapKey struct {
	internal netip.AddrPort
	dst      netip.AddrPort // zero, IP only, or IP and port
}

type mapping struct {
	key    mapKey
	public uint16
	last   time.Time                   // last outbound packet
	peers  map[netip.AddrPort]struct{} // destinations sent to (for filtering)
}

// NewNAT attaches a NAT owning publicIP to the network.
func (n *Network) NewNAT(publicIP netip.Addr, cfg NATConfig) (*NAT, error) {
	if cfg.Mapping < EndpointIndependent || cfg.Mapping > AddressAndPortDependent ||
		cfg.Filtering < EndpointIndependent || cfg.Filtering > AddressAndPortDependent {
		return nil, fmt.Errorf("%w: mapping %d, filtering %d", ErrUnsupported, cfg.Mapping, cfg.Filtering)
	}
	if cfg.MappingTimeout <= 0 {
		cfg.MappingTimeout = DefaultMappingTimeout
	}
	if cfg.MaxMappings <= 0 {
		cfg.MaxMappings = DefaultMaxMappings
	}
	x := &NAT{
		net:      n,
		publicIP: publicIP.Unmap(),
		cfg:      cfg,
		lan:      make(map[netip.Addr]*Host),
		byKey:    make(map[mapKey]*mapping),
		byPort:   make(map[uint16]*mapping),
		nextPort: firstPublicPort,
	}
	if err := n.claim(x.publicIP, x); err != nil {
		return nil, err
	}
	return x, nil
}

// PublicIP returns the NAT's public address.
func (x *NAT) PublicIP() netip.Addr { return x.publicIP }

// NewHost attaches a private host with address ip behind the NAT.
func (x *NAT) NewHost(ip netip.Addr) (*Host, error) {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip == x.publicIP {
		return nil, fmt.Errorf("%w: %v", ErrBadAddress, ip)
	}
	h := newHost([]netip.Addr{ip}, x.outbound)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.lan[ip]; ok {
		return nil, fmt.Errorf("%w: %v", ErrIPInUse, ip)
	}
	x.lan[ip] = h
	return h, nil
}

// Mappings returns how many live mappings the NAT holds.
func (x *NAT) Mappings() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := clockNow(x.cfg.Now)
	n := 0
	for _, m := range x.byKey {
		if !x.expired(m, now) {
			n++
		}
	}
	return n
}

func (x *NAT) expired(m *mapping, now time.Time) bool {
	return now.Sub(m.last) > x.cfg.MappingTimeout
}

func (x *NAT) key(internal, dst netip.AddrPort) mapKey {
	switch x.cfg.Mapping {
	case AddressDependent:
		return mapKey{internal, netip.AddrPortFrom(dst.Addr(), 0)}
	case AddressAndPortDependent:
		return mapKey{internal, dst}
	default:
		return mapKey{internal: internal}
	}
}

// outbound translates a packet from the LAN, or delivers it inside the LAN.
func (x *NAT) outbound(p packet) {
	x.mu.Lock()
	if h := x.lan[p.dst.Addr()]; h != nil {
		x.mu.Unlock()
		h.receive(p)
		return
	}
	now := clockNow(x.cfg.Now)
	k := x.key(p.src, p.dst)
	m := x.byKey[k]
	if m != nil && x.expired(m, now) {
		x.remove(m)
		m = nil
	}
	if m == nil {
		port, ok := x.allocate(now)
		if !ok {
			x.mu.Unlock()
			return // table full: drop
		}
		m = &mapping{key: k, public: port, peers: make(map[netip.AddrPort]struct{})}
		x.byKey[k] = m
		x.byPort[port] = m
	}
	m.last = now
	if len(m.peers) < x.cfg.MaxMappings {
		m.peers[p.dst] = struct{}{}
	}
	p.src = netip.AddrPortFrom(x.publicIP, m.public)
	x.mu.Unlock()
	x.net.route(p)
}

func (x *NAT) remove(m *mapping) {
	delete(x.byKey, m.key)
	delete(x.byPort, m.public)
}

// allocate finds a free public port, expiring stale mappings when the
// table is full. x.mu is held.
func (x *NAT) allocate(now time.Time) (uint16, bool) {
	if len(x.byKey) >= x.cfg.MaxMappings {
		for _, m := range x.byKey {
			if x.expired(m, now) {
				x.remove(m)
			}
		}
		if len(x.byKey) >= x.cfg.MaxMappings {
			return 0, false
		}
	}
	for range 1 << 16 {
		port := x.nextPort
		x.nextPort++
		if x.nextPort < 1024 {
			x.nextPort = 1024
		}
		old := x.byPort[port]
		if old == nil {
			return port, true
		}
		if x.expired(old, now) {
			x.remove(old)
			return port, true
		}
	}
	return 0, false
}

// receive admits a packet from the public network to the NAT's public IP.
func (x *NAT) receive(p packet) {
	x.mu.Lock()
	m := x.byPort[p.dst.Port()]
	now := clockNow(x.cfg.Now)
	if m == nil || x.expired(m, now) || !x.admits(m, p.src) {
		x.mu.Unlock()
		return
	}
	h := x.lan[m.key.internal.Addr()]
	x.mu.Unlock()
	if h != nil {
		p.dst = m.key.internal
		h.receive(p)
	}
}

func (x *NAT) admits(m *mapping, src netip.AddrPort) bool {
	switch x.cfg.Filtering {
	case AddressAndPortDependent:
		_, ok := m.peers[src]
		return ok
	case AddressDependent:
		for peer := range m.peers {
			if peer.Addr() == src.Addr() {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// String names the behaviour as RFC 4787 does.
func (m Mapping) String() string {
	switch m {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("natsim.Mapping(%d)", int(m))
}
