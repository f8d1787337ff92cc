package quictr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// ReadNonQUIC reads the next packet on the shared socket that is not QUIC
// (its first two bits are 00, as in STUN; RFC 9443 §2), blocking until one
// arrives, ctx ends, or the Transport closes (net.ErrClosed). quic-go
// queues at most 32 such packets and drops the rest, so read promptly.
// Only on a Transport from New (else ErrNoSocket).
func (t *Transport) ReadNonQUIC(ctx context.Context, b []byte) (int, net.Addr, error) {
	if t.qt == nil {
		return 0, nil, ErrNoSocket
	}
	n, addr, err := t.qt.ReadNonQUICPacket(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, err
		}
		return 0, nil, fmt.Errorf("quictr: read: %w", net.ErrClosed)
	}
	return n, addr, nil
}

// WriteTo writes one raw packet from the shared socket (a STUN message, a
// hole-punching probe). Only on a Transport from New (else ErrNoSocket).
func (t *Transport) WriteTo(b []byte, addr net.Addr) (int, error) {
	if t.qt == nil {
		return 0, ErrNoSocket
	}
	return t.qt.WriteTo(b, addr)
}

// PacketConn presents the shared socket's non-QUIC packets as a
// net.PacketConn: ReadFrom returns the next one (ReadNonQUIC), WriteTo
// writes raw. So a STUN server or a hole puncher written against
// net.PacketConn runs on the link socket. Its Close ends its own reads
// only; the socket and the Transport stay up. Read deadlines work; write
// deadlines are accepted and ignored (a UDP write does not block). Returns
// nil on a Transport not made by New.
func (t *Transport) PacketConn() net.PacketConn {
	if t.qt == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &packetConn{t: t, ctx: ctx, cancel: cancel}
	p.kick, p.kickCancel = context.WithCancel(context.Background())
	return p
}

type packetConn struct {
	t      *Transport
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu         sync.Mutex
	deadline   time.Time
	kick       context.Context // cancelled when the deadline changes
	kickCancel context.CancelFunc
}

func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		p.mu.Lock()
		dl, kick := p.deadline, p.kick
		p.mu.Unlock()
		if p.ctx.Err() != nil {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: net.ErrClosed}
		}
		ctx, cancel := context.WithCancel(p.ctx)
		if !dl.IsZero() {
			ctx, cancel = context.WithDeadline(p.ctx, dl)
		}
		stop := context.AfterFunc(kick, cancel)
		n, addr, err := p.t.ReadNonQUIC(ctx, b)
		stop()
		cancel()
		switch {
		case err == nil:
			return n, addr, nil
		case p.ctx.Err() != nil || errors.Is(err, net.ErrClosed):
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: net.ErrClosed}
		case errors.Is(err, context.DeadlineExceeded):
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}
		case kick.Err() != nil:
			continue // deadline changed: read again with the new one
		default:
			return 0, nil, err
		}
	}
}

func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if p.ctx.Err() != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Err: net.ErrClosed}
	}
	return p.t.WriteTo(b, addr)
}

func (p *packetConn) Close() error {
	p.cancel()
	return nil
}

func (p *packetConn) LocalAddr() net.Addr { return p.t.pc.LocalAddr() }

func (p *packetConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *packetConn) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.kickCancel()
	p.kick, p.kickCancel = context.WithCancel(context.Background())
	p.mu.Unlock()
	return nil
}

func (p *packetConn) SetWriteDeadline(time.Time) error { return nil }
