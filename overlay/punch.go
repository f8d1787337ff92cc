package overlay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/nat"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/linkmgr"
	"github.com/darkmatter/darkmatter/overlay/relaylink"
	"github.com/darkmatter/darkmatter/overlay/transport"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// Bounds of hole punching (spec/limits.md §5b).
const (
	// maxPunchSessions bounds the punch sessions a node runs at once.
	maxPunchSessions = 8
	// maxPunchesPerLink bounds the sessions one link may start in its
	// life: a peer cannot make a node spray punch packets on demand.
	maxPunchesPerLink = 3
	// punchQueue bounds the coordination messages a session holds unread.
	punchQueue = 4
	// mappedTTL is how long the socket's STUN-mapped address is trusted.
	mappedTTL = 10 * time.Minute
	// punchProbeTimeout bounds the STUN probe a punch makes when it has no
	// fresh mapped address.
	punchProbeTimeout = 2 * time.Second
)

// punchDelay holds an initiator's punch back, so that tests can move a
// link with streams in flight; zero outside tests.
var punchDelay time.Duration

// punchState is the node's punch sessions and what they achieved.
type punchState struct {
	sessions map[*linkmgr.Link]*punchSession
	started  map[*linkmgr.Link]int // sessions started per open link
	mapped   netip.AddrPort        // the punch socket's address seen by STUN
	mappedAt time.Time

	stats PunchStats
}

// PunchStats counts the node's hole punching.
type PunchStats struct {
	Attempts uint64        // sessions run (as either end)
	Direct   uint64        // sessions that reached a direct QUIC link (initiator) or a punched path (responder)
	Failed   uint64        // sessions that ended without one
	Last     time.Duration // time from the relayed link to the direct one, last success as initiator
}

// punchSession is one coordination on one link.
type punchSession struct {
	in chan []byte
}

// PunchStats returns the node's punch counters.
func (n *Node) PunchStats() PunchStats {
	n.relay.mu.Lock()
	defer n.relay.mu.Unlock()
	return n.relay.punch.stats
}

// linkSignal is nat.Signal over a link's NAT cells.
type linkSignal struct {
	n  *Node
	l  *linkmgr.Link
	in chan []byte
}

func (s linkSignal) Send(ctx context.Context, msg []byte) error {
	return s.n.sendNAT(s.l, relaylink.Msg{Type: relaylink.TypePunch, Punch: msg})
}

func (s linkSignal) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-s.in:
		return m, nil
	case <-s.l.Done():
		return nil, errors.New("overlay: punch: the link closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// punchable reports whether the node punches at all.
func (n *Node) punchable() bool {
	if n.cfg.DisablePunch {
		return false
	}
	_, ok := n.cfg.Transports[quictr.Scheme].(*udpTransport)
	return ok
}

// maybePunch starts a punch on a relayed link this node opened, when the
// other end says it takes PUNCH (it listens for QUIC): the two ends are
// adjacent hops, and a direct path between them is better than the
// relay's.
func (n *Node) maybePunch(l *linkmgr.Link) {
	if l.Addr().Scheme != SchemeRelay || !l.Initiator() || !n.punchable() {
		return
	}
	d := l.Descriptor()
	if d == nil || !d.Protocols.Supports(protover.Punch, 1) {
		return
	}
	sess := n.newPunchSession(l)
	if sess == nil {
		return
	}
	if !n.goFunc(func() { n.runPunch(l, d, sess, true) }) {
		n.endPunch(l, false, 0)
	}
}

// punchMsg hands a PUNCH message to the link's session, or starts the
// responder's session for a first CONNECT.
func (n *Node) punchMsg(l *linkmgr.Link, msg []byte) {
	s := &n.relay
	s.mu.Lock()
	sess := s.punch.sessions[l]
	s.mu.Unlock()
	if sess == nil {
		// Only the end a relay spliced a link to answers: a peer with a
		// direct link has a path already, and could otherwise make this
		// node spray punch packets at addresses of its choosing.
		if l.Addr().Scheme != SchemeRelay || l.Initiator() || !n.punchable() || !n.hasQUICListener() {
			n.natRefused.Add(1)
			return
		}
		if sess = n.newPunchSession(l); sess == nil {
			n.natRefused.Add(1)
			return
		}
		if !n.goFunc(func() { n.runPunch(l, nil, sess, false) }) {
			n.endPunch(l, false, 0)
			return
		}
	}
	select {
	case sess.in <- msg:
	default:
		n.natRefused.Add(1)
	}
}

// newPunchSession registers a session on l, or returns nil over a bound.
func (n *Node) newPunchSession(l *linkmgr.Link) *punchSession {
	s := &n.relay
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.punch
	if p.sessions[l] != nil || len(p.sessions) >= maxPunchSessions || p.started[l] >= maxPunchesPerLink {
		return nil
	}
	sess := &punchSession{in: make(chan []byte, punchQueue)}
	p.sessions[l] = sess
	p.started[l]++
	p.stats.Attempts++
	return sess
}

// endPunch ends l's session and counts its outcome.
func (n *Node) endPunch(l *linkmgr.Link, ok bool, took time.Duration) {
	s := &n.relay
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.punch.sessions, l)
	if ok {
		s.punch.stats.Direct++
		if took > 0 {
			s.punch.stats.Last = took
		}
	} else {
		s.punch.stats.Failed++
	}
}

// punchClosed forgets a closed link.
func (n *Node) punchClosed(l *linkmgr.Link) {
	n.relay.mu.Lock()
	delete(n.relay.punch.started, l)
	n.relay.mu.Unlock()
}

// runPunch coordinates with the other end of l (spec/nat.md §6), punches
// from the node's QUIC socket and, as the initiator, moves l onto a QUIC
// connection on the punched path (spec/links.md §5.4), with every circuit
// on it; a peer that cannot move a link gets a second link there instead.
func (n *Node) runPunch(l *linkmgr.Link, d *descriptor.Descriptor, sess *punchSession, initiator bool) {
	start := time.Now()
	ok := false
	defer func() {
		var took time.Duration
		if ok && initiator {
			took = time.Since(start)
		}
		n.endPunch(l, ok, took)
	}()
	ctx, cancel := context.WithTimeout(n.ctx, nat.DefaultCoordinateTimeout+nat.DefaultPunchTimeout+reserveTimeout)
	defer cancel()
	go func() {
		select {
		case <-l.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if initiator && punchDelay > 0 {
		select {
		case <-time.After(punchDelay):
		case <-ctx.Done():
			return
		}
	}
	sock, err := n.punchSocket()
	if err != nil {
		n.logf.Printf("overlay: punch: %v", safelog.Scrub(err))
		return
	}
	local := nat.Candidates{Addrs: n.punchCandidates(ctx, sock)}
	peer, at, err := nat.Coordinate(ctx, linkSignal{n, l, sess.in}, local, initiator)
	if err != nil {
		n.logf.Printf("overlay: punch: %v", safelog.Scrub(err))
		return
	}
	sock.mu.Lock()
	addr, err := nat.Punch(ctx, sock.d.Punch(), peer, nat.PunchOptions{Start: at})
	sock.mu.Unlock()
	if err != nil {
		n.logf.Printf("overlay: punch: %v", safelog.Scrub(err))
		return
	}
	if !initiator {
		ok = true // the initiator dials our QUIC listener on the path
		return
	}
	direct := transport.Addr{Scheme: quictr.Scheme, HostPort: addr.String()}
	if l.CanMove() {
		// The link itself moves: every circuit on it goes on over
		// the punched path (spec/links.md §5.4).
		conn, err := n.cfg.Transports[quictr.Scheme].Dial(ctx, direct.HostPort)
		if err != nil {
			n.logf.Printf("overlay: punch: direct connection: %v", safelog.Scrub(err))
			return
		}
		if err := l.Move(conn, direct); err != nil {
			n.logf.Printf("overlay: punch: moving the link: %v", safelog.Scrub(err))
			return
		}
		ok = true
		return
	}
	// A peer that cannot move a link gets a second one: new circuits
	// take it, the relayed one closes once its circuits end.
	if _, err := n.links.Dial(ctx, d.Identity, d.Link, direct.String()); err != nil {
		n.logf.Printf("overlay: punch: direct link: %v", safelog.Scrub(err))
		return
	}
	ok = true
}

// punchCandidates returns the addresses a peer may reach the punch socket
// at: its STUN-mapped address (fresh, or probed now from the socket), then
// its local addresses (peers on the same network), at most
// nat.MaxCandidates.
func (n *Node) punchCandidates(ctx context.Context, sock *udpSock) []netip.AddrPort {
	var out []netip.AddrPort
	if m := n.socketMapped(ctx, sock); m.IsValid() {
		out = append(out, m)
	}
	local, ok := nat.AddrPortOf(sock.qt.PacketConn().LocalAddr())
	if !ok {
		return out
	}
	var ips []netip.Addr
	if !local.Addr().IsUnspecified() {
		ips = []netip.Addr{local.Addr()}
	} else if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ips = append(ips, p.Addr().Unmap())
			}
		}
	}
	for _, ip := range ips {
		if len(out) >= nat.MaxCandidates {
			break
		}
		if (ip.IsLoopback() || ip.IsLinkLocalUnicast()) && !n.cfg.AllowPrivateAddrs {
			continue
		}
		if local.Addr().Is4() != ip.Is4() && !local.Addr().IsUnspecified() {
			continue
		}
		if ap := netip.AddrPortFrom(ip, local.Port()); !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	return out
}

// socketMapped returns the punch socket's STUN-mapped address, probing
// the directory's relays from the socket when the last answer is older
// than mappedTTL.
func (n *Node) socketMapped(ctx context.Context, sock *udpSock) netip.AddrPort {
	s := &n.relay
	s.mu.Lock()
	m, at := s.punch.mapped, s.punch.mappedAt
	s.mu.Unlock()
	if m.IsValid() && time.Since(at) < mappedTTL {
		return m
	}
	servers := n.stunServers()
	if len(servers) == 0 {
		return netip.AddrPort{}
	}
	sock.mu.Lock()
	r, err := nat.Probe(ctx, sock.d.Responses(), servers, nat.ProbeOptions{Timeout: punchProbeTimeout})
	sock.mu.Unlock()
	if err != nil {
		return netip.AddrPort{}
	}
	for _, a := range r.Mapped {
		if a.IsValid() {
			n.noteMapped(a)
			return a
		}
	}
	return netip.AddrPort{}
}

// noteMapped records the punch socket's mapped address.
func (n *Node) noteMapped(a netip.AddrPort) {
	n.relay.mu.Lock()
	n.relay.punch.mapped, n.relay.punch.mappedAt = a, time.Now()
	n.relay.mu.Unlock()
}

// ConnectReport is what Connect saw.
type ConnectReport struct {
	Addr   string        // the address the link was opened to
	Linked time.Duration // time to the link (handshake and HELLO)
	// Direct is the punched QUIC address the link moved to, "" if none;
	// DirectAfter is the time from the start of Connect to that link.
	Direct      string
	DirectAfter time.Duration
	// Punched is true when a punch ran on the link (Direct tells whether
	// it succeeded).
	Punched bool
}

// Connect opens a link to the relay b names, as a circuit's first hop
// would, and, when that link is relayed and a punch starts on it, waits
// up to wait for the punch's outcome. It is the diagnostic behind
// "darkmatter nat connect".
func (n *Node) Connect(ctx context.Context, b descriptor.Bootstrap, wait time.Duration) (ConnectReport, error) {
	start := time.Now()
	l, err := n.links.Channel(ctx, b.Identity, b.Link, b.Addr)
	if err != nil {
		return ConnectReport{}, err
	}
	r := ConnectReport{Addr: l.Addr().String(), Linked: time.Since(start)}
	if d := l.Descriptor(); l.Addr().Scheme != SchemeRelay || !n.punchable() || d == nil || !d.Protocols.Supports(protover.Punch, 1) {
		return r, nil // no punch will run on this link
	}
	end := time.Now().Add(wait)
	for time.Now().Before(end) && ctx.Err() == nil {
		if p := n.links.Preferred(b.Link); p != nil && p.Addr().Scheme == quictr.Scheme {
			r.Punched, r.Direct, r.DirectAfter = true, p.Addr().String(), time.Since(start)
			return r, nil
		}
		n.relay.mu.Lock()
		started := n.relay.punch.started[l]
		running := n.relay.punch.sessions[l] != nil
		n.relay.mu.Unlock()
		if started > 0 {
			r.Punched = true
			if !running {
				// Ended without a direct link (the dial, if any, records
				// the link before the session ends).
				if p := n.links.Preferred(b.Link); p != nil && p.Addr().Scheme == quictr.Scheme {
					r.Direct, r.DirectAfter = p.Addr().String(), time.Since(start)
				}
				return r, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, nil
}
