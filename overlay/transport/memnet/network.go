package memnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Tuning constants.
const (
	// DefaultBufferSize is the bytes buffered per direction of a conn when
	// Network.BufferSize is zero.
	DefaultBufferSize = 256 << 10
	// Backlog is how many dialled conns a listener queues before Accept.
	Backlog = 128

	// Ephemeral ports, as IANA suggests (RFC 6335).
	ephemeralFirst = 49152
	ephemeralLast  = 65535
)

// DialRecord is one successful dial.
type DialRecord struct {
	From string // "ip:port" of the dialing end
	To   string // the address dialled, "ip:port"
}

// Network is an in-memory network of hosts. The zero value is an empty
// network ready to use, and a Network is safe for concurrent use.
type Network struct {
	// BufferSize is the number of bytes buffered in each direction of a
	// conn; zero means DefaultBufferSize. A Write larger than the free space
	// blocks until the reader drains it. Set it before the first Dial; a
	// conn keeps the size it was created with.
	BufferSize int

	mu        sync.Mutex // guards the following
	hosts     map[netip.Addr]*Host
	listeners map[netip.AddrPort]*listener
	ports     map[netip.AddrPort]struct{} // bound by a listener or a dialer
	dials     []DialRecord
}

// Host is the view of one host of a Network. It implements
// transport.Transport and is safe for concurrent use.
type Host struct {
	n  *Network
	ip netip.Addr

	nextPort int // next ephemeral port to try; guarded by n.mu
}

// Host returns the host with IP address ip ("10.0.0.1", "fd00::1"),
// creating it on first use; later calls return the same *Host. It panics if
// ip is not an IP literal or is the unspecified address, since that is a bug
// in the test that calls it.
func (n *Network) Host(ip string) *Host {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.IsUnspecified() || addr.Zone() != "" {
		panic(fmt.Sprintf("memnet: Host(%q): not a usable IP address", ip))
	}
	addr = addr.Unmap()
	n.mu.Lock()
	defer n.mu.Unlock()
	if h, ok := n.hosts[addr]; ok {
		return h
	}
	if n.hosts == nil {
		n.hosts = make(map[netip.Addr]*Host)
		n.listeners = make(map[netip.AddrPort]*listener)
		n.ports = make(map[netip.AddrPort]struct{})
	}
	h := &Host{n: n, ip: addr, nextPort: ephemeralFirst}
	n.hosts[addr] = h
	return h
}

// Dials returns every successful dial so far, oldest first. A dial is
// recorded before the listener can accept it and before Dial returns.
func (n *Network) Dials() []DialRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]DialRecord(nil), n.dials...)
}

func (n *Network) bufferSize() int {
	if n.BufferSize > 0 {
		return n.BufferSize
	}
	return DefaultBufferSize
}

// IP returns the host's IP address, as in "10.0.0.1".
func (h *Host) IP() string { return h.ip.String() }

// String returns the same as IP.
func (h *Host) String() string { return h.IP() }

// Listen listens for conns on addr: "ip:port" with the host's own IP,
// ":port", or "0.0.0.0:port" ("[::]:port"), which all mean this host. Port 0
// picks a free ephemeral port; the listener's Addr tells which.
func (h *Host) Listen(addr string) (net.Listener, error) {
	ip, port, err := parseHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "memnet", Err: err}
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = h.ip
	}
	if ip != h.ip {
		return nil, &net.OpError{Op: "listen", Net: "memnet",
			Addr: &Addr{netip.AddrPortFrom(ip, port)}, Err: ErrAddrNotAvailable}
	}

	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	ap, err := h.bindLocked(port)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "memnet",
			Addr: &Addr{netip.AddrPortFrom(ip, port)}, Err: err}
	}
	l := &listener{
		n:     n,
		addr:  &Addr{ap},
		queue: make(chan *conn, Backlog),
		done:  make(chan struct{}),
		space: make(chan struct{}),
	}
	n.listeners[ap] = l
	return l, nil
}

// bindLocked reserves port on h (an ephemeral one if port is 0).
// n.mu must be held.
func (h *Host) bindLocked(port uint16) (netip.AddrPort, error) {
	if port != 0 {
		ap := netip.AddrPortFrom(h.ip, port)
		if _, used := h.n.ports[ap]; used {
			return netip.AddrPort{}, ErrAddrInUse
		}
		h.n.ports[ap] = struct{}{}
		return ap, nil
	}
	for range ephemeralLast - ephemeralFirst + 1 {
		p := h.nextPort
		h.nextPort++
		if h.nextPort > ephemeralLast {
			h.nextPort = ephemeralFirst
		}
		ap := netip.AddrPortFrom(h.ip, uint16(p))
		if _, used := h.n.ports[ap]; !used {
			h.n.ports[ap] = struct{}{}
			return ap, nil
		}
	}
	return netip.AddrPort{}, ErrAddrInUse
}

func (n *Network) unbind(ap netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ports, ap)
}

// Dial connects from this host, from an ephemeral port, to the listener at
// addr ("ip:port"). It fails at once with ErrConnRefused if nothing listens
// there. If the listener's accept queue is full it waits for room until ctx
// ends. A nil error means the conn is queued for Accept, as with TCP.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ip, port, err := parseHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "memnet", Err: err}
	}
	dst := &Addr{netip.AddrPortFrom(ip, port)}
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: dst, Err: ErrAddrNotAvailable}
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: dst, Err: err}
	}

	n := h.n
	n.mu.Lock()
	l := n.listeners[dst.AddrPort]
	if l == nil {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: dst, Err: ErrConnRefused}
	}
	srcAP, err := h.bindLocked(0)
	n.mu.Unlock()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: dst, Err: err}
	}
	src := &Addr{srcAP}

	client, server := newConnPair(src, dst, n.bufferSize())
	client.release = func() { n.unbind(srcAP) }
	fail := func(err error) (net.Conn, error) {
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "memnet", Source: src, Addr: dst, Err: err}
	}
	for {
		queued, space, err := l.enqueue(server, DialRecord{From: src.String(), To: dst.String()})
		if err != nil {
			return fail(err)
		}
		if queued {
			return client, nil
		}
		select {
		case <-space:
		case <-l.done:
			return fail(ErrConnRefused)
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
}
