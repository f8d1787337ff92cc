package overlay

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/darkmatter/darkmatter/nat"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// udpTransport carries links over QUIC (spec/links-quic.md) under the
// scheme "quic". Until the node listens on a quic address it dials each
// link from a socket of its own; once it listens, it dials from its
// listening socket, so that peers see one address for it, STUN tells
// what that address looks like from outside, and a mapping punched
// through a NAT serves links in both directions.
type udpTransport struct {
	zero   quictr.Transport
	shared atomic.Pointer[quictr.Transport]
}

func (u *udpTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if t := u.shared.Load(); t != nil {
		return t.Dial(ctx, addr)
	}
	return u.zero.Dial(ctx, addr)
}

func (u *udpTransport) Listen(addr string) (net.Listener, error) { return u.zero.Listen(addr) }

// listenQUIC binds a UDP socket at hostport and listens for QUIC links on
// it; the node's STUN server shares the socket through a nat.Demux
// (spec/nat.md §2), and the first such socket is the one the node dials
// QUIC links from.
func (n *Node) listenQUIC(u *udpTransport, hostport string) (net.Listener, error) {
	pc, err := net.ListenPacket("udp", hostport)
	if err != nil {
		return nil, err
	}
	qt, err := quictr.New(pc, quictr.Config{})
	if err != nil {
		pc.Close()
		return nil, err
	}
	ln, err := qt.Listen(pc.LocalAddr().String())
	if err != nil {
		qt.Close()
		pc.Close()
		return nil, fmt.Errorf("overlay: quic: %w", err)
	}
	// The socket's datagrams that are not QUIC go to the STUN server or,
	// for punch packets, to the punch view, kept for hole punching.
	d := nat.NewDemux(qt.PacketConn())
	n.mu.Lock()
	n.udp = append(n.udp, d, qt, pc)
	n.mu.Unlock()
	u.shared.CompareAndSwap(nil, qt)
	if !n.cfg.DisableSTUN {
		n.serveSTUN(d.STUN())
	}
	return ln, nil
}

// closeUDP closes the demultiplexers, the QUIC transports, then their
// sockets.
func (n *Node) closeUDP() {
	n.mu.Lock()
	cs := n.udp
	n.udp = nil
	n.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}
