package natsim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Errors of this package.
var (
	ErrAddrInUse   = errors.New("natsim: address already in use")
	ErrNoSuchIP    = errors.New("natsim: address not assigned to this host")
	ErrIPInUse     = errors.New("natsim: IP already assigned")
	ErrBadAddress  = errors.New("natsim: bad address")
	ErrUnsupported = errors.New("natsim: unsupported address type")
)

// QueueLen is how many packets a socket queues before it drops new ones.
const QueueLen = 128

// packet is one datagram in flight.
type packet struct {
	src, dst netip.AddrPort
	data     []byte
}

// receiver is what an IP address of the public network leads to: a public
// host or the public side of a NAT.
type receiver interface {
	receive(p packet)
}

// Network is the public internet of a simulation. The zero value is not
// usable; call [NewNetwork].
type Network struct {
	mu     sync.Mutex
	routes map[netip.Addr]receiver // mu guards routes
}

// NewNetwork returns an empty public network.
func NewNetwork() *Network {
	return &Network{routes: make(map[netip.Addr]receiver)}
}

func (n *Network) claim(ip netip.Addr, r receiver) error {
	if !ip.IsValid() || ip.IsUnspecified() {
		return fmt.Errorf("%w: %v", ErrBadAddress, ip)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.routes[ip]; ok {
		return fmt.Errorf("%w: %v", ErrIPInUse, ip)
	}
	n.routes[ip] = r
	return nil
}

// route delivers p to whoever owns p.dst's address, or drops it.
func (n *Network) route(p packet) {
	n.mu.Lock()
	r := n.routes[p.dst.Addr()]
	n.mu.Unlock()
	if r != nil {
		r.receive(p)
	}
}

// NewHost attaches a public host that owns the given addresses (at least
// one). Its first address is its primary one.
func (n *Network) NewHost(ips ...netip.Addr) (*Host, error) {
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w: a host needs an address", ErrBadAddress)
	}
	h := newHost(ips, n.route)
	for i, ip := range ips {
		if err := n.claim(ip.Unmap(), h); err != nil {
			n.mu.Lock()
			for _, done := range ips[:i] {
				delete(n.routes, done.Unmap())
			}
			n.mu.Unlock()
			return nil, err
		}
	}
	return h, nil
}

// Host is a machine with one or more IP addresses and UDP-like sockets.
type Host struct {
	ips  []netip.Addr
	send func(packet) // the upstream: the public network or the host's NAT

	mu       sync.Mutex
	conns    map[netip.AddrPort]*Conn // mu guards conns and nextPort
	nextPort uint16
}

func newHost(ips []netip.Addr, send func(packet)) *Host {
	own := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		own[i] = ip.Unmap()
	}
	return &Host{ips: own, send: send, conns: make(map[netip.AddrPort]*Conn), nextPort: 40000}
}

// IPs returns the host's addresses, primary first.
func (h *Host) IPs() []netip.Addr { return append([]netip.Addr(nil), h.ips...) }

func (h *Host) owns(ip netip.Addr) bool {
	for _, own := range h.ips {
		if own == ip {
			return true
		}
	}
	return false
}

// ListenPacket opens a socket on addr, "ip:port". An empty or unspecified
// IP means the host's primary address; port 0 picks a free port.
func (h *Host) ListenPacket(addr string) (net.PacketConn, error) {
	c, err := h.listen(addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (h *Host) listen(addr string) (*Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	ip := h.ips[0]
	if host != "" {
		parsed, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
		}
		if !parsed.IsUnspecified() {
			ip = parsed.Unmap()
		}
	}
	if !h.owns(ip) {
		return nil, fmt.Errorf("%w: %v", ErrNoSuchIP, ip)
	}
	port, err := net.LookupPort("udp", portStr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if port == 0 {
		for range 1 << 16 {
			h.nextPort++
			if h.nextPort < 1024 {
				h.nextPort = 1024
			}
			if _, used := h.conns[netip.AddrPortFrom(ip, h.nextPort)]; !used {
				port = int(h.nextPort)
				break
			}
		}
		if port == 0 {
			return nil, ErrAddrInUse
		}
	}
	local := netip.AddrPortFrom(ip, uint16(port))
	if _, used := h.conns[local]; used {
		return nil, fmt.Errorf("%w: %v", ErrAddrInUse, local)
	}
	c := newConn(h, local)
	h.conns[local] = c
	return c, nil
}

func (h *Host) unbind(c *Conn) {
	h.mu.Lock()
	if h.conns[c.local] == c {
		delete(h.conns, c.local)
	}
	h.mu.Unlock()
}

// receive hands p to the socket bound to p.dst, or drops it.
func (h *Host) receive(p packet) {
	h.mu.Lock()
	c := h.conns[p.dst]
	h.mu.Unlock()
	if c != nil {
		c.enqueue(p)
	}
}

// output sends p from one of the host's sockets: to a local socket when
// p.dst is the host's own, upstream otherwise.
func (h *Host) output(p packet) {
	if h.owns(p.dst.Addr()) {
		h.receive(p)
		return
	}
	h.send(p)
}

// clockNow is time.Now, or the injected clock.
func clockNow(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}
