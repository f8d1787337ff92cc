package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
)

func (n *Node) linkConfig() *link.Config {
	return &link.Config{
		Network:     n.cfg.Network,
		Static:      n.staticKey(),
		Hello:       n.hello,
		KeepAlive:   n.cfg.KeepAlive,
		IdleTimeout: n.cfg.IdleTimeout,
		Logf:        n.cfg.Logf,
	}
}

// staticKey is the relay's link key; a client uses a fresh key per link so
// its links cannot be linked to each other.
func (n *Node) staticKey() *keys.LinkPrivateKey {
	if n.cfg.Listen != "" {
		return n.keys.Link
	}
	return nil
}

// Channel implements circuit.Linker: it returns the link to the relay with
// link key lk, dialling addr if there is none, and checks that the relay's
// HELLO descriptor is signed by identity.
func (n *Node) Channel(ctx context.Context, identity keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (circuit.Channel, error) {
	l, err := n.linkTo(ctx, lk, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	d := n.all[l]
	n.mu.Unlock()
	if d == nil || d.Identity != identity || d.Link != lk {
		return nil, fmt.Errorf("overlay: relay at %v is not the relay asked for", safelog.S(addr))
	}
	return l, nil
}

func (n *Node) linkTo(ctx context.Context, lk keys.LinkPublicKey, addr string) (*link.Link, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if l := n.links[lk]; l != nil {
		n.mu.Unlock()
		return l, nil
	}
	if p := n.dialing[lk]; p != nil {
		n.mu.Unlock()
		select {
		case <-p.done:
			return p.l, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &pendingLink{done: make(chan struct{})}
	n.dialing[lk] = p
	n.mu.Unlock()

	p.l, p.err = n.dial(ctx, lk, addr)
	n.mu.Lock()
	delete(n.dialing, lk)
	n.mu.Unlock()
	close(p.done)
	return p.l, p.err
}

func (n *Node) dial(ctx context.Context, lk keys.LinkPublicKey, addr string) (*link.Link, error) {
	conn, err := n.cfg.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("overlay: dial %v: %w", safelog.S(addr), safelog.Scrub(err))
	}
	l, err := link.Dial(ctx, conn, n.linkConfig(), lk, n)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("overlay: link to %v: %w", safelog.S(addr), err)
	}
	if !n.addLink(l) {
		l.Close()
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("overlay: link to %v: %w", safelog.S(addr), err)
		}
		return nil, ErrClosed
	}
	return l, nil
}

// addLink verifies the peer's HELLO descriptor once, records the open link
// with it and adds the descriptor to the directory; false if the node or the
// link is closed.
func (n *Node) addLink(l *link.Link) bool {
	d := n.helloDescriptor(l)
	if !n.recordLink(l, d) {
		return false
	}
	if d != nil {
		n.dir.Add(d)
	}
	return true
}

func (n *Node) recordLink(l *link.Link, d *descriptor.Descriptor) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-l.Done():
		// It closed before we got here, and Closed may already have
		// run: recording it now would leave a dead link in the table.
		return false
	default:
	}
	if n.closed {
		return false
	}
	n.all[l] = d
	if _, dup := n.links[l.PeerStatic()]; !dup {
		n.links[l.PeerStatic()] = l
	}
	return true
}

// helloDescriptor returns the peer's HELLO descriptor if it is valid and
// names the link key the handshake authenticated, else nil (clients send
// none).
func (n *Node) helloDescriptor(l *link.Link) *descriptor.Descriptor {
	if len(l.PeerHello()) == 0 {
		return nil
	}
	d, err := descriptor.Parse(l.PeerHello())
	if err != nil || d.Link != l.PeerStatic() {
		n.logf.Printf("overlay: peer sent a bad HELLO descriptor: %v", err)
		return nil
	}
	return d
}

func (n *Node) acceptLoop(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !n.isClosed() {
				n.logf.Printf("overlay: accept: %v", safelog.Scrub(err))
			}
			return
		}
		n.goFunc(func() {
			ctx, cancel := context.WithCancel(n.ctx)
			defer cancel()
			l, err := link.Accept(ctx, conn, n.linkConfig(), n)
			if err != nil {
				conn.Close()
				n.logf.Printf("overlay: incoming link: %v", err)
				return
			}
			if !n.addLink(l) {
				l.Close()
			}
		})
	}
}

// HandleCell implements link.Handler.
func (n *Node) HandleCell(l *link.Link, c *cell.Cell) {
	if c.Circ() != 0 {
		n.sw.HandleCell(l, c)
		return
	}
	n.dir.HandleCell(l, c)
}

// Closed implements link.Handler.
func (n *Node) Closed(l *link.Link, err error) {
	n.mu.Lock()
	delete(n.all, l)
	if n.links[l.PeerStatic()] == l {
		delete(n.links, l.PeerStatic())
		for other := range n.all { // keep another link to the same peer
			if other.PeerStatic() == l.PeerStatic() {
				n.links[l.PeerStatic()] = other
				break
			}
		}
	}
	n.mu.Unlock()
	n.dir.PeerClosed(l)
	n.sw.ChannelClosed(l)
}
