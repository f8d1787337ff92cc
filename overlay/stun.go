package overlay

import (
	"errors"
	"net"

	"github.com/darkmatter/darkmatter/nat"
	"github.com/darkmatter/darkmatter/overlay/transport"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// A relay answers STUN Binding requests on the UDP port of each of its
// link addresses (spec/nat.md §2), so that nodes behind NAT learn their
// mapped addresses and classify their NAT from several relays. On a QUIC
// listener the STUN server shares the link's socket; on a TCP listener it
// has a UDP socket of its own on the same host and port.

// startSTUN serves STUN on the UDP twin of each TCP listener in addrs,
// unless Config.DisableSTUN. A port that cannot be bound is logged and
// skipped: STUN helps others, the relay works without it.
func (n *Node) startSTUN(addrs []transport.Addr) {
	if n.cfg.DisableSTUN {
		return
	}
	quic := make(map[string]bool)
	for _, a := range addrs {
		if a.Scheme == quictr.Scheme {
			quic[a.HostPort] = true
		}
	}
	for _, a := range addrs {
		if a.Scheme != transport.SchemeTCP || quic[a.HostPort] {
			continue // a QUIC socket at the same address answers already
		}
		pc, err := net.ListenPacket("udp", a.HostPort)
		if err != nil {
			n.logf.Printf("overlay: no STUN on a link address's UDP port: %v", err)
			continue
		}
		n.serveSTUN(pc)
	}
}

// serveSTUN answers STUN on pc until the node closes, then closes pc.
func (n *Node) serveSTUN(pc net.PacketConn) {
	srv := nat.NewServer(nat.ServerConfig{})
	n.mu.Lock()
	n.stun = append(n.stun, pc)
	n.mu.Unlock()
	n.goFunc(func() {
		if err := srv.Serve(pc); err != nil && !errors.Is(err, net.ErrClosed) {
			n.logf.Printf("overlay: STUN server stopped: %v", err)
		}
	})
}

// closeSTUN closes the STUN sockets.
func (n *Node) closeSTUN() {
	n.mu.Lock()
	socks := n.stun
	n.stun = nil
	n.mu.Unlock()
	for _, pc := range socks {
		pc.Close()
	}
}

// STUNAddrs returns the UDP addresses the node answers STUN on.
func (n *Node) STUNAddrs() []net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]net.Addr, 0, len(n.stun))
	for _, pc := range n.stun {
		out = append(out, pc.LocalAddr())
	}
	return out
}
