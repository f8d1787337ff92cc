package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/relaylink"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// SchemeRelay is the address scheme of a relayed link: "relay://HOST:PORT"
// names a public relay, reached over Config.RelayVia, that splices
// connections to the node whose descriptor lists the address
// (spec/nat.md §8, spec/descriptor.md §2).
const SchemeRelay = "relay"

// Bounds of the reserving side (spec/limits.md §5b).
const (
	// maxIncoming bounds the INCOMING messages a node answers at once.
	maxIncoming = 32
	// reserveTimeout bounds a RESERVE's wait for its RESERVATION, and an
	// ACCEPT's for the relay's answer.
	reserveTimeout = 10 * time.Second
	// reserveCheck is how often a node that reserves checks its
	// reservations.
	reserveCheck = 30 * time.Second
)

// relayState is the node's part in relayed links: the Hop service of a
// public relay, the reservations of a node behind NAT, and punching.
type relayState struct {
	hop *relaylink.Service // nil unless the node relays links

	mu       sync.Mutex
	held     map[*linkmgr.Link]*reservation // ours, by the link to the relay
	waiting  map[*linkmgr.Link]chan relaylink.Msg
	incoming int
	kick     chan struct{} // wakes the reserve loop
	punch    punchState
}

// reservation is one of this node's reservations at a relay.
type reservation struct {
	relay    keys.NodeID
	hostport string // the relay's address over Config.RelayVia
	expires  time.Time
}

// relayVia is the scheme relayed links reach their relay over.
func (n *Node) relayVia() string {
	if n.cfg.RelayVia != "" {
		return n.cfg.RelayVia
	}
	return transport.SchemeTCP
}

// relayTransport dials "relay://HOST:PORT" addresses: a connection to the
// relay at HOST:PORT over Config.RelayVia, with a CONNECT header naming
// the peer. It listens nowhere: a node is reached through a relay by
// reserving there (Config.Reserve).
type relayTransport struct{ n *Node }

func (relayTransport) Dial(context.Context, string) (net.Conn, error) {
	return nil, errors.New("overlay: a relayed link needs the peer's link key")
}

func (relayTransport) Listen(string) (net.Listener, error) {
	return nil, errors.New("overlay: relayed links are reserved, not listened for")
}

// DialPeer connects to peer through the relay at hostport. When this node
// is that relay (it extends a circuit to a node that reserved here), it
// asks the peer to connect back instead.
func (r relayTransport) DialPeer(ctx context.Context, hostport string, peer keys.LinkPublicKey) (net.Conn, error) {
	n := r.n
	if h := n.relay.hop; h != nil && n.isOwnAddr(descriptor.JoinAddr(n.relayVia(), hostport)) {
		return h.DialTarget(ctx, peer)
	}
	inner, ok := n.cfg.Transports[n.relayVia()]
	if !ok {
		return nil, fmt.Errorf("overlay: no %q transport for relayed links", n.relayVia())
	}
	conn, err := inner.Dial(ctx, hostport)
	if err != nil {
		return nil, err
	}
	if err := relaylink.Dial(ctx, conn, n.cfg.Network, peer); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// newHop returns the node's Hop service, with Config.Hop's limits.
func (n *Node) newHop() *relaylink.Service {
	c := n.cfg.Hop
	c.Network = n.cfg.Network
	c.Logf = n.logf
	return relaylink.NewService(c)
}

// natCell handles a NAT cell (circuit 0) from link l. It owns c.
func (n *Node) natCell(l *linkmgr.Link, c *cell.Cell) {
	m, err := relaylink.ParseMsg(c.Body())
	if err == nil && m.Type == relaylink.TypePunch {
		m.Punch = slices.Clone(m.Punch) // c goes back to the pool
	}
	c.Free()
	if err != nil {
		n.natMalformed.Add(1)
		return
	}
	switch m.Type {
	case relaylink.TypeReserve:
		if h := n.relay.hop; h != nil {
			h.HandleMsg(l, m)
			return
		}
		n.sendNAT(l, relaylink.Msg{Type: relaylink.TypeReservation, Status: relaylink.StatusNoService})
	case relaylink.TypeReservation:
		n.relay.mu.Lock()
		ch := n.relay.waiting[l]
		n.relay.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	case relaylink.TypeIncoming:
		n.answerIncoming(l, m.Token)
	case relaylink.TypePunch:
		n.punchMsg(l, m.Punch)
	}
}

// sendNAT sends m on l, dropping it if the link is gone.
func (n *Node) sendNAT(l *linkmgr.Link, m relaylink.Msg) error {
	c, err := m.Cell()
	if err != nil {
		return err
	}
	return l.Send(c) // Send owns c, sent or not
}

// natLinkClosed forgets what l held: a reservation at this relay, one of
// ours through it, a punch session on it.
func (n *Node) natLinkClosed(l *linkmgr.Link) {
	if h := n.relay.hop; h != nil {
		h.PeerClosed(l)
	}
	n.relay.mu.Lock()
	_, ours := n.relay.held[l]
	delete(n.relay.held, l)
	n.relay.mu.Unlock()
	n.punchClosed(l)
	if ours {
		n.kickReserve()
	}
}

// answerIncoming connects back to the relay that sent an INCOMING over
// l, where this node holds a reservation, and runs the responder side of
// the link the relay splices to it.
func (n *Node) answerIncoming(l *linkmgr.Link, token [relaylink.TokenSize]byte) {
	s := &n.relay
	s.mu.Lock()
	r := s.held[l]
	if r == nil || s.incoming >= maxIncoming {
		s.mu.Unlock()
		n.natRefused.Add(1)
		return
	}
	s.incoming++
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		s.incoming--
		s.mu.Unlock()
	}
	if !n.goFunc(func() {
		defer done()
		ctx, cancel := context.WithTimeout(n.ctx, reserveTimeout)
		defer cancel()
		inner, ok := n.cfg.Transports[n.relayVia()]
		if !ok {
			return
		}
		conn, err := inner.Dial(ctx, r.hostport)
		if err != nil {
			n.logf.Printf("overlay: relayed link: connecting back: %v", safelog.Scrub(err))
			return
		}
		if err := relaylink.Accept(ctx, conn, n.cfg.Network, token); err != nil {
			conn.Close()
			n.logf.Printf("overlay: relayed link: %v", safelog.Scrub(err))
			return
		}
		n.links.AcceptConn(conn, transport.Addr{Scheme: SchemeRelay, HostPort: r.hostport})
	}) {
		done()
	}
}

// kickReserve wakes the reserve loop.
func (n *Node) kickReserve() {
	select {
	case n.relay.kick <- struct{}{}:
	default:
	}
}

// reserveLoop keeps Config.Reserve reservations at relays that offer Hop,
// renews them at half their lifetime, and republishes the descriptor when
// the set of relay addresses changes.
func (n *Node) reserveLoop() {
	for {
		changed := n.reserveOnce(n.ctx)
		if changed {
			if err := n.republish(); err != nil {
				n.logf.Printf("overlay: republish after a reservation change: %v", safelog.Scrub(err))
			}
		}
		t := time.NewTimer(reserveCheck)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-n.relay.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// reserveOnce renews reservations past half their life and makes new
// ones up to Config.Reserve; it reports whether the relayed addresses
// changed.
func (n *Node) reserveOnce(ctx context.Context) bool {
	before := n.relayedAddrs()
	now := time.Now()
	n.relay.mu.Lock()
	var renew []*linkmgr.Link
	have := map[keys.NodeID]bool{}
	for l, r := range n.relay.held {
		have[r.relay] = true
		if now.After(r.expires.Add(-DefaultReservationRenew)) {
			renew = append(renew, l)
		}
	}
	n.relay.mu.Unlock()
	for _, l := range renew {
		if _, err := n.reserveOn(ctx, l); err != nil {
			n.relay.mu.Lock()
			delete(n.relay.held, l)
			n.relay.mu.Unlock()
		}
	}
	for _, d := range n.hopRelays() {
		if len(n.relayedAddrs()) >= n.cfg.Reserve || ctx.Err() != nil {
			break
		}
		if have[d.NodeID()] {
			continue
		}
		addr := n.hopAddr(d)
		if addr == "" {
			continue
		}
		l, err := n.links.Channel(ctx, d.Identity, d.Link, addr)
		if err != nil {
			continue
		}
		_, hostport, _ := descriptor.SplitAddr(addr)
		r, err := n.reserveOn(ctx, l)
		if err != nil {
			n.logf.Printf("overlay: reserve: %v", safelog.Scrub(err))
			continue
		}
		r.relay, r.hostport = d.NodeID(), hostport
		have[r.relay] = true
		n.relay.mu.Lock()
		n.relay.held[l] = r
		n.relay.mu.Unlock()
	}
	return !slices.Equal(before, n.relayedAddrs())
}

// DefaultReservationRenew is how long before its end a reservation is
// renewed.
const DefaultReservationRenew = 20 * time.Minute

// reserveOn sends a RESERVE on l and waits for the answer. A renewal
// updates the held reservation; a new one is returned for the caller to
// fill.
func (n *Node) reserveOn(ctx context.Context, l *linkmgr.Link) (*reservation, error) {
	ch := make(chan relaylink.Msg, 1)
	n.relay.mu.Lock()
	n.relay.waiting[l] = ch
	n.relay.mu.Unlock()
	defer func() {
		n.relay.mu.Lock()
		delete(n.relay.waiting, l)
		n.relay.mu.Unlock()
	}()
	if err := n.sendNAT(l, relaylink.Msg{Type: relaylink.TypeReserve}); err != nil {
		return nil, err
	}
	t := time.NewTimer(reserveTimeout)
	defer t.Stop()
	select {
	case m := <-ch:
		if m.Status != relaylink.StatusOK {
			return nil, fmt.Errorf("overlay: reservation refused (status %d)", m.Status)
		}
		n.relay.mu.Lock()
		defer n.relay.mu.Unlock()
		exp := time.Now().Add(m.Lifetime)
		if r := n.relay.held[l]; r != nil {
			r.expires = exp
			return r, nil
		}
		return &reservation{expires: exp}, nil
	case <-l.Done():
		return nil, errors.New("overlay: reserve: the link closed")
	case <-t.C:
		return nil, errors.New("overlay: reserve: no answer")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hopRelays returns the directory's relays that offer Hop and say they
// are publicly reachable, in random order.
func (n *Node) hopRelays() []*descriptor.Descriptor {
	self := n.NodeID()
	var out []*descriptor.Descriptor
	for _, d := range n.dir.List() {
		if d.NodeID() == self || !d.Protocols.Supports(protover.Hop, 1) {
			continue
		}
		if r, ok := d.Reach(); ok && r.Status != descriptor.ReachPublic {
			continue
		}
		out = append(out, d)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// hopAddr returns the relay's first address over Config.RelayVia whose
// host is an IP address, or "".
func (n *Node) hopAddr(d *descriptor.Descriptor) string {
	for _, a := range d.Addrs {
		scheme, hp, err := descriptor.SplitAddr(a)
		if err != nil || scheme != n.relayVia() {
			continue
		}
		if ap, err := netip.ParseAddrPort(hp); err == nil && !ap.Addr().IsUnspecified() {
			return a
		}
	}
	return ""
}

// relayedAddrs returns "relay://HOST:PORT" for every reservation held,
// sorted.
func (n *Node) relayedAddrs() []string {
	n.relay.mu.Lock()
	defer n.relay.mu.Unlock()
	var out []string
	for _, r := range n.relay.held {
		if r.hostport != "" {
			out = append(out, descriptor.JoinAddr(SchemeRelay, r.hostport))
		}
	}
	slices.Sort(out)
	return out
}

// RelayedAddrs returns the "relay://HOST:PORT" addresses this node can be
// reached at through the relays it holds reservations with.
func (n *Node) RelayedAddrs() []string { return n.relayedAddrs() }

// HopStats returns the counters of the node's Hop service (zero when it
// relays no links).
func (n *Node) HopStats() relaylink.Stats {
	if h := n.relay.hop; h != nil {
		return h.Stats()
	}
	return relaylink.Stats{}
}

// reservedHere reports whether d, a HELLO descriptor on link l, is that of
// a node behind NAT that holds a reservation at this relay and lists this
// relay's address among its relayed ones: this relay vouches for it as
// announcedFrom vouches for a node at its own address.
func (n *Node) reservedHere(d *descriptor.Descriptor, l *linkmgr.Link) bool {
	h := n.relay.hop
	if h == nil || !h.Reserved(l.Peer()) || d.Link != l.Peer() {
		return false
	}
	for _, a := range d.Addrs {
		scheme, hp, err := descriptor.SplitAddr(a)
		if err == nil && scheme == SchemeRelay && n.isOwnAddr(descriptor.JoinAddr(n.relayVia(), hp)) {
			return true
		}
	}
	return false
}

// relayedAtKnownHops reports whether every address of d is relayed
// ("relay://HOST:PORT") through a relay of this node's directory that
// offers Hop and lists HOST:PORT over Config.RelayVia. Such a descriptor
// makes this node dial only relays it knows, which refuse a CONNECT for a
// node without a reservation: it cannot point anyone at someone else's
// address (the concern announcedFrom answers for direct addresses).
func (n *Node) relayedAtKnownHops(d *descriptor.Descriptor) bool {
	if len(d.Addrs) == 0 {
		return false
	}
	hops := map[string]bool{}
	for _, r := range n.dir.List() {
		if r.Protocols.Supports(protover.Hop, 1) {
			for _, a := range r.Addrs {
				hops[a] = true
			}
		}
	}
	for _, a := range d.Addrs {
		scheme, hp, err := descriptor.SplitAddr(a)
		if err != nil || scheme != SchemeRelay || !hops[descriptor.JoinAddr(n.relayVia(), hp)] {
			return false
		}
	}
	return true
}
