package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
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
	if n.udpSock == nil {
		n.udpSock = &udpSock{qt: qt, d: d}
	}
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

// udpSock is the socket a node punches from and dials its QUIC links from
// (spec/nat.md §8.4): its first QUIC listening socket, or, for a node
// without one, a socket opened for the first punch.
type udpSock struct {
	qt *quictr.Transport
	d  *nat.Demux
	mu sync.Mutex // one punch at a time: they share the punch view
}

// punchSocket returns the node's udpSock, opening a client socket (bound
// to an ephemeral port on every interface) if the node has none; QUIC
// links are dialled from it from then on, so that a punched mapping
// serves the link that follows.
func (n *Node) punchSocket() (*udpSock, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.udpSock != nil {
		return n.udpSock, nil
	}
	if n.closed {
		return nil, ErrClosed
	}
	u, ok := n.cfg.Transports[quictr.Scheme].(*udpTransport)
	if !ok {
		return nil, errors.New("overlay: no quic transport to punch with")
	}
	pc, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return nil, err
	}
	qt, err := quictr.New(pc, quictr.Config{})
	if err != nil {
		pc.Close()
		return nil, err
	}
	d := nat.NewDemux(qt.PacketConn())
	n.udp = append(n.udp, d, qt, pc)
	n.udpSock = &udpSock{qt: qt, d: d}
	if !u.shared.CompareAndSwap(nil, qt) {
		// A listener came first; this cannot happen under n.mu, as
		// listenQUIC sets udpSock, but keep the invariant visible.
		return nil, errors.New("overlay: quic socket changed")
	}
	return n.udpSock, nil
}

// hasQUICListener reports whether the node listens for QUIC links: the
// punched path ends at a QUIC listener.
func (n *Node) hasQUICListener() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range n.listening {
		if a.Scheme == quictr.Scheme {
			return true
		}
	}
	return false
}
