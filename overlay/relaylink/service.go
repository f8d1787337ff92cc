package relaylink

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// Defaults of Config (spec/limits.md §5b).
const (
	DefaultMaxReservations      = 128
	DefaultMaxReservationsPerIP = 4
	DefaultLifetime             = time.Hour
	DefaultMaxPending           = 64
	DefaultMaxPendingPerTarget  = 4
	DefaultAcceptTimeout        = 10 * time.Second
	DefaultMaxSplices           = 256
	DefaultMaxSplicesPerTarget  = 16
	DefaultMaxSpliceBytes       = 1 << 30 // per direction
	DefaultMaxSpliceDuration    = 2 * time.Hour
	DefaultConnectRate          = 10 // CONNECTs per second per reservation
	DefaultConnectBurst         = 20
)

// Peer is the link a RESERVE came over: the relay tells the target of
// incoming connections on it. Send takes ownership of c (it frees it
// when it cannot send it), as linkmgr.Link.Send does.
type Peer interface {
	Send(c *cell.Cell) error
	Peer() keys.LinkPublicKey
	RemoteAddr() net.Addr
}

// Config configures a Service. Zero fields take the defaults above.
type Config struct {
	Network string // the network name; headers of another are refused

	MaxReservations      int           // reservations held at once
	MaxReservationsPerIP int           // per source (IPv4 address, IPv6 /64)
	Lifetime             time.Duration // of a reservation, renewed by RESERVE

	MaxPending          int           // CONNECTs waiting for their target, in all
	MaxPendingPerTarget int           // and per reservation
	AcceptTimeout       time.Duration // for the header, and for the target to connect back

	MaxSplices          int           // spliced pairs open at once
	MaxSplicesPerTarget int           // per reservation
	MaxSpliceBytes      int64         // bytes per direction before the relay closes a splice
	MaxSpliceDuration   time.Duration // lifetime of a splice

	ConnectRate  float64 // CONNECTs per second per reservation
	ConnectBurst int

	Logf safelog.Logf
}

func (c *Config) setDefaults() {
	defaults.Set(&c.MaxReservations, DefaultMaxReservations)
	defaults.Set(&c.MaxReservationsPerIP, DefaultMaxReservationsPerIP)
	defaults.Set(&c.Lifetime, DefaultLifetime)
	defaults.Set(&c.MaxPending, DefaultMaxPending)
	defaults.Set(&c.MaxPendingPerTarget, DefaultMaxPendingPerTarget)
	defaults.Set(&c.AcceptTimeout, DefaultAcceptTimeout)
	defaults.Set(&c.MaxSplices, DefaultMaxSplices)
	defaults.Set(&c.MaxSplicesPerTarget, DefaultMaxSplicesPerTarget)
	defaults.Set(&c.MaxSpliceBytes, DefaultMaxSpliceBytes)
	defaults.Set(&c.MaxSpliceDuration, DefaultMaxSpliceDuration)
	defaults.Set(&c.ConnectRate, DefaultConnectRate)
	defaults.Set(&c.ConnectBurst, DefaultConnectBurst)
	if c.Network == "" {
		c.Network = link.DefaultNetwork
	}
}

// Stats counts what a Service did and holds.
type Stats struct {
	Reservations int    // held now
	Splices      int    // open now
	Pending      int    // CONNECTs waiting for their target now
	Reserved     uint64 // RESERVEs granted (renewals included)
	Refused      uint64 // RESERVEs, CONNECTs and ACCEPTs refused
	Spliced      uint64 // splices made
	Bytes        uint64 // bytes relayed, both directions
}

// reservation is one target's place at the relay.
type reservation struct {
	peer    Peer
	src     netip.Prefix
	expires time.Time
	rate    ratelimit.Bucket
	pending int
	splices int
}

// pending is a CONNECT waiting for its target's ACCEPT.
type pending struct {
	target chan net.Conn // the ACCEPT connection; buffered 1
}

// Service is a relay's side of relayed links.
type Service struct {
	cfg  Config
	netw [link.NetworkIDLen]byte
	logf safelog.Logf

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	res     map[keys.LinkPublicKey]*reservation
	sources map[netip.Prefix]int
	pend    map[[TokenSize]byte]*pending
	npend   int
	splices int
	conns   map[net.Conn]struct{} // spliced connections, closed by Close
	stats   Stats
	bytes   atomic.Uint64
}

// NewService returns a Service with cfg's limits.
func NewService(cfg Config) *Service {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, netw: link.NetworkID(cfg.Network), logf: cfg.Logf,
		ctx: ctx, cancel: cancel,
		res: make(map[keys.LinkPublicKey]*reservation), sources: make(map[netip.Prefix]int),
		pend: make(map[[TokenSize]byte]*pending), conns: make(map[net.Conn]struct{})}
}

// sourceOf returns the source a limit counts: an IPv4 address or an IPv6
// /64; an address that is not IP counts as one source.
func sourceOf(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked()
	}
	return netip.Prefix{}
}

// HandleMsg handles a NAT message from a link to this relay: RESERVE is
// answered with a RESERVATION; other types are not for the Service.
func (s *Service) HandleMsg(p Peer, m Msg) {
	if m.Type != TypeReserve {
		return
	}
	status, life := s.reserve(p, time.Now())
	reply := Msg{Type: TypeReservation, Status: status, Lifetime: life}
	if c, err := reply.Cell(); err == nil {
		_ = p.Send(c) // Send owns c, sent or not
	}
}

func (s *Service) reserve(p Peer, now time.Time) (byte, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return StatusNoService, 0
	}
	s.expireLocked(now)
	key := p.Peer()
	src := sourceOf(p.RemoteAddr())
	if r := s.res[key]; r != nil {
		// A renewal, possibly over a newer link of the same node.
		if r.src != src {
			if s.sources[src] >= s.cfg.MaxReservationsPerIP {
				s.stats.Refused++
				return StatusResource, 0
			}
			s.dropSourceLocked(r.src)
			s.sources[src]++
			r.src = src
		}
		r.peer, r.expires = p, now.Add(s.cfg.Lifetime)
		s.stats.Reserved++
		return StatusOK, s.cfg.Lifetime
	}
	if len(s.res) >= s.cfg.MaxReservations || s.sources[src] >= s.cfg.MaxReservationsPerIP {
		s.stats.Refused++
		return StatusResource, 0
	}
	s.res[key] = &reservation{peer: p, src: src, expires: now.Add(s.cfg.Lifetime)}
	s.sources[src]++
	s.stats.Reserved++
	return StatusOK, s.cfg.Lifetime
}

func (s *Service) dropSourceLocked(src netip.Prefix) {
	if s.sources[src]--; s.sources[src] <= 0 {
		delete(s.sources, src)
	}
}

func (s *Service) expireLocked(now time.Time) {
	for k, r := range s.res {
		if !now.Before(r.expires) {
			s.deleteLocked(k, r)
		}
	}
}

func (s *Service) deleteLocked(k keys.LinkPublicKey, r *reservation) {
	delete(s.res, k)
	s.dropSourceLocked(r.src)
}

// Reserved reports whether the node with static link key k holds a
// reservation here.
func (s *Service) Reserved(k keys.LinkPublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res[k]
	return r != nil && time.Now().Before(r.expires)
}

// PeerClosed ends the reservation held over a link that closed. Splices
// already made go on.
func (s *Service) PeerClosed(p Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.res[p.Peer()]; r != nil && r.peer == p {
		s.deleteLocked(p.Peer(), r)
	}
}

// ServeConn serves a connection whose first bytes are a splice header
// (it starts with Magic). It returns when the connection is done with:
// refused, or its splice ended. It closes conn.
func (s *Service) ServeConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.cfg.AcceptTimeout))
	b := make([]byte, HeaderSize)
	if _, err := io.ReadFull(conn, b); err != nil {
		s.refuse(conn, StatusProtocol)
		return
	}
	h, err := ParseHeader(b)
	if err != nil || h.Network != s.netw {
		s.refuse(conn, StatusProtocol)
		return
	}
	// The header deadline is spent: a CONNECT waits up to AcceptTimeout
	// more for its target and must still be able to write its status, and
	// splice sets the splice's own deadline.
	_ = conn.SetDeadline(time.Time{})
	switch h.Kind {
	case KindConnect:
		s.connect(conn, h.Target)
	case KindAccept:
		s.accept(conn, h.Token)
	}
}

func (s *Service) refuse(conn net.Conn, status byte) {
	s.countRefused()
	_, _ = conn.Write([]byte{status})
}

// connect handles a CONNECT: it asks the target to connect back, waits,
// and splices.
func (s *Service) connect(conn net.Conn, target keys.LinkPublicKey) {
	other, r, status := s.await(s.ctx, target)
	if status != StatusOK {
		_, _ = conn.Write([]byte{status})
		return
	}
	s.mu.Lock()
	// Checked again: CONNECTs that were pending together all passed
	// await's check before any of them was spliced.
	if s.splices >= s.cfg.MaxSplices || r.splices >= s.cfg.MaxSplicesPerTarget || s.ctx.Err() != nil {
		s.stats.Refused++
		s.mu.Unlock()
		_, _ = conn.Write([]byte{StatusResource})
		_, _ = other.Write([]byte{StatusResource})
		other.Close()
		return
	}
	s.splices++
	r.splices++
	s.stats.Spliced++
	s.conns[conn] = struct{}{}
	s.conns[other] = struct{}{}
	s.mu.Unlock()
	s.splice(conn, other)
	s.mu.Lock()
	s.splices--
	r.splices--
	delete(s.conns, conn)
	delete(s.conns, other)
	s.mu.Unlock()
}

// DialTarget connects the relay itself to a target that holds a
// reservation here (a circuit this relay extends to it): it sends the
// INCOMING and returns the target's ACCEPT connection, told OK, for a
// link this relay initiates. Closing it ends the ACCEPT's ServeConn.
func (s *Service) DialTarget(ctx context.Context, target keys.LinkPublicKey) (net.Conn, error) {
	other, _, status := s.await(ctx, target)
	if status != StatusOK {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("relaylink: %w", ctx.Err())
		}
		return nil, statusError(status)
	}
	if _, err := other.Write([]byte{StatusOK}); err != nil {
		other.Close()
		return nil, fmt.Errorf("relaylink: %w", err)
	}
	_ = other.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		other.Close()
		return nil, fmt.Errorf("relaylink: %w", ctx.Err())
	}
	return other, nil
}

// await checks target's reservation and limits, sends it an INCOMING and
// waits for its ACCEPT connection, which it returns with the reservation,
// or a status other than StatusOK. It gives up when ctx ends (StatusTimeout).
func (s *Service) await(ctx context.Context, target keys.LinkPublicKey) (net.Conn, *reservation, byte) {
	now := time.Now()
	var token [TokenSize]byte
	_, _ = rand.Read(token[:])
	p := &pending{target: make(chan net.Conn, 1)}
	s.mu.Lock()
	s.expireLocked(now)
	r := s.res[target]
	status := byte(StatusOK)
	switch {
	case s.ctx.Err() != nil:
		status = StatusNoService
	case r == nil:
		status = StatusNoReservation
	case s.npend >= s.cfg.MaxPending || r.pending >= s.cfg.MaxPendingPerTarget ||
		s.splices >= s.cfg.MaxSplices || r.splices >= s.cfg.MaxSplicesPerTarget ||
		!r.rate.Take(now, s.cfg.ConnectRate, s.cfg.ConnectBurst):
		status = StatusResource
	}
	if status != StatusOK {
		s.stats.Refused++
		s.mu.Unlock()
		return nil, nil, status
	}
	r.pending++
	s.npend++
	s.pend[token] = p
	peer := r.peer
	s.mu.Unlock()

	// done gives up the wait; an ACCEPT that came in the meantime is
	// refused (accept sends under s.mu, so it is in p.target or never).
	done := func() {
		s.mu.Lock()
		delete(s.pend, token)
		r.pending--
		s.npend--
		var late net.Conn
		select {
		case late = <-p.target:
		default:
		}
		s.mu.Unlock()
		if late != nil {
			_, _ = late.Write([]byte{StatusTimeout})
			late.Close()
		}
	}
	in := Msg{Type: TypeIncoming, Token: token}
	c, err := in.Cell()
	if err == nil {
		err = peer.Send(c) // Send owns c, sent or not
	}
	if err != nil {
		done()
		s.countRefused()
		return nil, nil, StatusTimeout
	}
	t := time.NewTimer(s.cfg.AcceptTimeout)
	defer t.Stop()
	var other net.Conn
	select {
	case other = <-p.target:
	case <-t.C:
	case <-s.ctx.Done():
	case <-ctx.Done():
	}
	if other == nil {
		done()
		s.countRefused()
		return nil, nil, StatusTimeout
	}
	s.mu.Lock()
	r.pending--
	s.npend--
	s.mu.Unlock()
	return other, r, StatusOK
}

func (s *Service) countRefused() {
	s.mu.Lock()
	s.stats.Refused++
	s.mu.Unlock()
}

// accept hands an ACCEPT connection to its waiting CONNECT, and returns
// when the splice is over (the CONNECT side closes it).
func (s *Service) accept(conn net.Conn, token [TokenSize]byte) {
	sc := &spliceConn{Conn: conn, done: make(chan struct{})}
	s.mu.Lock()
	p := s.pend[token]
	if p != nil {
		delete(s.pend, token) // a token is good once
		p.target <- sc        // buffered 1; the only sender, as the token is gone
	}
	s.mu.Unlock()
	if p == nil {
		s.refuse(conn, StatusNoReservation)
		return
	}
	select {
	case <-sc.done:
	case <-s.ctx.Done():
	}
}

// spliceConn tells accept when the splice has closed it.
type spliceConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *spliceConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// splice tells both ends OK, then copies bytes both ways under the
// splice limits until either end closes, then closes both.
func (s *Service) splice(a, b net.Conn) {
	defer a.Close()
	defer b.Close()
	end := time.Now().Add(s.cfg.MaxSpliceDuration)
	_ = a.SetDeadline(end)
	_ = b.SetDeadline(end)
	ok := []byte{StatusOK}
	if _, err := a.Write(ok); err != nil {
		return
	}
	if _, err := b.Write(ok); err != nil {
		return
	}
	var wg sync.WaitGroup
	copyOne := func(dst, src net.Conn) {
		_, _ = io.Copy(countWriter{dst, &s.bytes}, io.LimitReader(src, s.cfg.MaxSpliceBytes))
		// Either direction ending ends the splice: the link above
		// cannot live on half a connection.
		a.Close()
		b.Close()
	}
	wg.Go(func() { copyOne(a, b) })
	copyOne(b, a)
	wg.Wait()
}

// Stats returns the counters and gauges.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	s.expireLocked(time.Now())
	st.Reservations, st.Splices, st.Pending = len(s.res), s.splices, s.npend
	st.Bytes = s.bytes.Load()
	return st
}

// Close refuses new work and closes every splice; ServeConn calls in
// progress return soon after.
func (s *Service) Close() error {
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	clear(s.res)
	clear(s.sources)
	s.mu.Unlock()
	return nil
}

// Dial sends a CONNECT for target on conn, a fresh connection to the
// relay, and waits for the relay's answer; on nil the link's bytes follow.
func Dial(ctx context.Context, conn net.Conn, network string, target keys.LinkPublicKey) error {
	return handshake(ctx, conn, Header{Network: link.NetworkID(network), Kind: KindConnect, Target: target})
}

// Accept sends an ACCEPT with token on conn, a fresh connection to the
// relay that sent the INCOMING, and waits for the relay's answer.
func Accept(ctx context.Context, conn net.Conn, network string, token [TokenSize]byte) error {
	return handshake(ctx, conn, Header{Network: link.NetworkID(network), Kind: KindAccept, Token: token})
}

func handshake(ctx context.Context, conn net.Conn, h Header) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(h.Marshal()); err != nil {
		return fmt.Errorf("relaylink: %w", ctxErr(ctx, err))
	}
	var st [1]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		if err := ctxErr(ctx, nil); err != nil {
			return fmt.Errorf("relaylink: %w", err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the relay closed the connection", ErrRefused)
		}
		return fmt.Errorf("relaylink: %w", err)
	}
	if st[0] != StatusOK {
		return statusError(st[0])
	}
	_ = conn.SetDeadline(time.Time{})
	return nil
}

// ctxErr returns ctx's error if ctx has ended or its deadline (which the
// connection's deadline copies, and which may pass a moment before ctx's
// own timer fires) has passed; otherwise err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(uint64(n))
	return n, err
}
