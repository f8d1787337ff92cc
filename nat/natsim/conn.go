package natsim

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/internal/deadline"
)

// Conn is a socket of a [Host]; it implements net.PacketConn. Addresses
// are *net.UDPAddr.
type Conn struct {
	host  *Host
	local netip.AddrPort
	queue chan packet

	closeOnce sync.Once
	closed    chan struct{}

	readDL  deadline.Deadline
	writeDL deadline.Deadline
}

var _ net.PacketConn = (*Conn)(nil)

func newConn(h *Host, local netip.AddrPort) *Conn {
	return &Conn{
		host:    h,
		local:   local,
		queue:   make(chan packet, QueueLen),
		closed:  make(chan struct{}),
		readDL:  deadline.Make(),
		writeDL: deadline.Make(),
	}
}

func (c *Conn) enqueue(p packet) {
	select {
	case <-c.closed:
	case c.queue <- p:
	default: // full: drop, like a kernel socket buffer
	}
}

func (c *Conn) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
}

// ReadFrom reads one datagram into b; a datagram longer than b is
// truncated, the rest discarded.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", nil, net.ErrClosed)
	case <-c.readDL.Wait():
		return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", nil, net.ErrClosed)
	case <-c.readDL.Wait():
		return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	case p := <-c.queue:
		return copy(b, p.data), net.UDPAddrFromAddrPort(p.src), nil
	}
}

// WriteTo sends b to addr, a *net.UDPAddr (or any net.Addr whose String is
// "ip:port"). It never blocks: a packet nobody can take is dropped.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write", addr, net.ErrClosed)
	case <-c.writeDL.Wait():
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	default:
	}
	var dst netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		dst = a.AddrPort()
	case nil:
		return 0, c.opError("write", addr, ErrBadAddress)
	default:
		var err error
		if dst, err = netip.ParseAddrPort(a.String()); err != nil {
			return 0, c.opError("write", addr, ErrUnsupported)
		}
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if !dst.IsValid() || dst.Port() == 0 || dst.Addr().IsUnspecified() {
		return 0, c.opError("write", addr, ErrBadAddress)
	}
	c.host.output(packet{src: c.local, dst: dst, data: append([]byte(nil), b...)})
	return len(b), nil
}

// Close closes the socket; calling it again returns an error that matches
// net.ErrClosed.
func (c *Conn) Close() error {
	err := c.opError("close", nil, net.ErrClosed)
	c.closeOnce.Do(func() {
		close(c.closed)
		c.host.unbind(c)
		c.readDL.Stop()
		c.writeDL.Stop()
		err = nil
	})
	return err
}

// LocalAddr returns the socket's address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL.Set(t)
	c.writeDL.Set(t)
	return nil
}

// SetReadDeadline sets the read deadline; the zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error { c.readDL.Set(t); return nil }

// SetWriteDeadline sets the write deadline; the zero time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.writeDL.Set(t); return nil }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
