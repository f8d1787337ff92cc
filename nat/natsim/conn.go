package natsim

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Conn is a socket of a [Host]; it implements net.PacketConn. Addresses
// are *net.UDPAddr.
type Conn struct {
	host  *Host
	local netip.AddrPort
	queue chan packet

	closeOnce sync.Once
	closed    chan struct{}

	readDL  deadline
	writeDL deadline
}

var _ net.PacketConn = (*Conn)(nil)

func newConn(h *Host, local netip.AddrPort) *Conn {
	return &Conn{
		host:    h,
		local:   local,
		queue:   make(chan packet, QueueLen),
		closed:  make(chan struct{}),
		readDL:  newDeadline(),
		writeDL: newDeadline(),
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
	case <-c.readDL.wait():
		return 0, nil, c.opError("read", nil, os.ErrDeadlineExceeded)
	default:
	}
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", nil, net.ErrClosed)
	case <-c.readDL.wait():
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
	case <-c.writeDL.wait():
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
		c.readDL.stop()
		c.writeDL.stop()
		err = nil
	})
	return err
}

// LocalAddr returns the socket's address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}

// SetReadDeadline sets the read deadline; the zero time means none.
func (c *Conn) SetReadDeadline(t time.Time) error { c.readDL.set(t); return nil }

// SetWriteDeadline sets the write deadline; the zero time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.writeDL.set(t); return nil }

// deadline is a channel closed when the deadline passes (like net.Pipe's).
type deadline struct {
	mu     sync.Mutex // guards the following
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired (or is about to close cancel)
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
