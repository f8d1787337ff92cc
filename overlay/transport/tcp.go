package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultDialTimeout bounds TCP.Dial when the context has no deadline.
const DefaultDialTimeout = 10 * time.Second

// TCP is the loopback/internet Transport over TCP. The zero value is ready
// to use; set fields before first use and do not change them afterwards.
// Conns from Dial and Accept are *net.TCPConn with TCP_NODELAY set, since
// links write whole cells and batch their own writes. Listener Close is
// idempotent.
type TCP struct {
	// DialTimeout bounds Dial when ctx has no deadline. Zero means
	// DefaultDialTimeout; a negative value means no bound. A deadline on
	// ctx always wins.
	DialTimeout time.Duration

	// KeepAlive is the TCP keep-alive period for dialled and accepted
	// conns, as in net.Dialer.KeepAlive: zero means the net package's
	// default (15s), negative disables keep-alives.
	KeepAlive time.Duration

	mu      sync.Mutex
	sources []netip.Addr // IPs Listen bound (not loopback, not unspecified)
}

var _ Transport = (*TCP)(nil)

// Dial connects to addr ("host:port"). Host names are resolved by the
// system resolver.
func (t *TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := t.dialContext(ctx)
	defer cancel()
	d := net.Dialer{KeepAlive: t.KeepAlive}
	if src, ok := t.source(addr); ok {
		// A relay listening on one address of a host with several
		// dials from it, so that peers see the address its descriptor
		// lists (spec/descriptor.md §4).
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if err := setNoDelay(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	return c, nil
}

// dialContext bounds ctx by the dial timeout if it has no deadline.
func (t *TCP) dialContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	timeout := t.DialTimeout
	if timeout == 0 {
		timeout = DefaultDialTimeout
	}
	if timeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// Listen listens on addr ("host:port", for example "127.0.0.1:0" for an
// ephemeral loopback port; the listener's Addr reports the port).
func (t *TCP) Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: t.KeepAlive}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		if ip := a.AddrPort().Addr().Unmap(); !ip.IsLoopback() && !ip.IsUnspecified() {
			t.mu.Lock()
			t.sources = append(t.sources, ip)
			t.mu.Unlock()
		}
	}
	return &tcpListener{Listener: l}, nil
}

// tcpListener sets TCP_NODELAY on the conns it accepts and makes Close
// idempotent.
type tcpListener struct {
	net.Listener
	closeOnce sync.Once
	closeErr  error
}

// Close closes the listener; later calls return the first call's result.
func (l *tcpListener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}

func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// An error here means the peer has already gone; hand the conn over
	// anyway and let its first Read or Write report that.
	_ = setNoDelay(c)
	return c, nil
}

func setNoDelay(c net.Conn) error {
	if tc, ok := c.(*net.TCPConn); ok {
		tuneConn(tc)
		return tc.SetNoDelay(true)
	}
	return nil
}

// source returns the address to dial addr from: the first address Listen
// bound of the destination's family, unless the destination is an IP
// literal on loopback or not an IP literal at all.
func (t *TCP) source(addr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().IsLoopback() {
		return netip.Addr{}, false
	}
	dst := ap.Addr().Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ip := range t.sources {
		if ip.Is4() == dst.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
