package nat

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/internal/deadline"
)

// DemuxQueue is how many datagrams a Demux view holds unread; more are
// dropped, as a full socket buffer drops them.
const DemuxQueue = 64

// Demux splits the datagrams of one socket between STUN requests (IsSTUN),
// STUN responses and hole punching (IsPunch), so that a STUN server, a
// STUN client and a puncher share the socket
// whose mapping they are about (spec/nat.md §2); anything else is dropped.
// Each view is a net.PacketConn: ReadFrom returns its own datagrams,
// WriteTo writes on the shared socket. Closing a view closes that view
// only; Close stops the Demux and closes every view, not the socket.
type Demux struct {
	pc    net.PacketConn
	stun  *demuxConn
	resp  *demuxConn
	punch *demuxConn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// NewDemux starts reading pc. The caller keeps owning pc: closing it
// stops the Demux too.
func NewDemux(pc net.PacketConn) *Demux {
	d := &Demux{pc: pc, done: make(chan struct{})}
	d.stun, d.resp, d.punch = newDemuxConn(d), newDemuxConn(d), newDemuxConn(d)
	d.wg.Go(d.run)
	return d
}

// STUN returns the view of STUN messages.
func (d *Demux) STUN() net.PacketConn { return d.stun }

// Responses returns the view of STUN responses (success and error), for
// a client that probes from the shared socket (nat.Probe): the STUN
// server has no use for them.
func (d *Demux) Responses() net.PacketConn { return d.resp }

// Punch returns the view of punch packets.
func (d *Demux) Punch() net.PacketConn { return d.punch }

// Close stops routing and closes both views; it does not close the socket,
// so the reader returns at the socket's next datagram, deadline or close.
func (d *Demux) Close() error {
	d.once.Do(func() {
		close(d.done)
		d.stun.Close()
		d.resp.Close()
		d.punch.Close()
		// Wake the reader; the socket's owner may set its own deadline
		// again afterwards.
		d.pc.SetReadDeadline(time.Now())
	})
	d.wg.Wait()
	return nil
}

func (d *Demux) run() {
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := d.pc.ReadFrom(buf)
		select {
		case <-d.done:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			d.stun.Close()
			d.resp.Close()
			d.punch.Close()
			return
		}
		b := buf[:n]
		switch {
		case IsSTUN(b) && isResponse(b):
			d.resp.deliver(b, addr)
		case IsSTUN(b):
			d.stun.deliver(b, addr)
		case IsPunch(b):
			d.punch.deliver(b, addr)
		}
	}
}

// datagram is one queued datagram of a view.
type datagram struct {
	b    []byte
	addr net.Addr
}

// demuxConn is one view of a Demux.
type demuxConn struct {
	d      *Demux
	queue  chan datagram
	closed chan struct{}
	once   sync.Once
	rdl    deadline.Deadline
}

func newDemuxConn(d *Demux) *demuxConn {
	return &demuxConn{d: d, queue: make(chan datagram, DemuxQueue), closed: make(chan struct{}), rdl: deadline.Make()}
}

// deliver queues a copy of b, dropping it when the queue is full or the
// view closed.
func (c *demuxConn) deliver(b []byte, addr net.Addr) {
	if deadline.IsClosed(c.closed) {
		return
	}
	select {
	case c.queue <- datagram{b: append([]byte(nil), b...), addr: addr}:
	default:
	}
}

func (c *demuxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, net.ErrClosed
	default:
	}
	select {
	case p := <-c.queue:
		return copy(b, p.b), p.addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.rdl.Wait():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

func (c *demuxConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if deadline.IsClosed(c.closed) {
		return 0, net.ErrClosed
	}
	return c.d.pc.WriteTo(b, addr)
}

func (c *demuxConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.rdl.Stop()
	})
	return nil
}

func (c *demuxConn) LocalAddr() net.Addr                { return c.d.pc.LocalAddr() }
func (c *demuxConn) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *demuxConn) SetReadDeadline(t time.Time) error  { c.rdl.Set(t); return nil }
func (c *demuxConn) SetWriteDeadline(t time.Time) error { return nil }
