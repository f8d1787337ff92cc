package quictr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/darkmatter/darkmatter/overlay/transport"
)

var (
	// ErrPortMismatch means Listen on a Transport from New named a port
	// other than 0 or its socket's.
	ErrPortMismatch = errors.New("quictr: listen port is not the shared socket's")
	// ErrListening means a Transport from New already has a listener.
	ErrListening = errors.New("quictr: the shared socket already has a listener")
	// ErrNoSocket means a socket operation on a Transport without a shared
	// socket (one not made by New).
	ErrNoSocket = errors.New("quictr: transport has no shared socket")
	// ErrPreamble means the dialer's stream did not start with the
	// preamble (spec/links-quic.md §3).
	ErrPreamble = errors.New("quictr: bad stream preamble")
)

// preamble is the byte a dialer writes first on its link stream, so the
// listener sees the stream (QUIC announces a stream only with data) and
// can hand the conn to Accept before the link layer speaks.
const preamble = 0x01

// Application error codes on CONNECTION_CLOSE and stream cancellation.
const (
	codeClosed  = 0 // the link closed normally
	codeRefused = 1 // backlog full, listener closed or bad preamble
)

// Transport is the transport.Transport over QUIC: each net.Conn is one
// bidirectional stream of its own QUIC connection.
//
// The zero value (with Config set or not) is ready to use: Listen binds
// its own UDP socket, and each Dial binds a fresh one, closed with the
// conn. A Transport from New instead runs everything on the caller's
// socket, so the same socket listens, dials, and serves non-QUIC packets
// (STUN, hole punching): see New. Do not copy a Transport after first use
// or change Config.
type Transport struct {
	// Config tunes the transport; zero fields take the defaults.
	Config Config

	once    sync.Once
	initErr error
	cfg     Config
	srvTLS  *tls.Config
	cliTLS  *tls.Config

	// Set by New only.
	qt   *quic.Transport
	pc   net.PacketConn
	sock *socket // tracks the conns, to close them with the Transport

	mu     sync.Mutex
	ln     *listener // the shared socket's listener, if any
	closed bool
}

var _ transport.Transport = (*Transport)(nil)

// New returns a Transport that runs on pc, a UDP socket the caller
// keeps owning: Close stops the Transport but does not close pc. From
// now on only the Transport may read pc; the caller reads the non-QUIC
// packets through ReadNonQUIC or PacketConn and writes through WriteTo.
//
// Dial and Listen share pc, so a peer behind a NAT can punch a hole with
// the socket and then dial or accept through the mapping it made.
func New(pc net.PacketConn, cfg Config) (*Transport, error) {
	t := &Transport{Config: cfg, pc: pc, sock: &socket{}}
	if err := t.init(); err != nil {
		return nil, err
	}
	t.qt = &quic.Transport{
		Conn:                pc,
		ConnContext:         t.connContext,
		VerifySourceAddress: t.verifySource,
	}
	// Start the socket reader and the non-QUIC queue now, so packets
	// arriving before the first ReadNonQUIC are kept (up to quic-go's 32),
	// and concurrent first reads do not race inside quic-go.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	t.qt.ReadNonQUICPacket(done, nil)
	return t, nil
}

func (t *Transport) init() error {
	t.once.Do(func() {
		t.cfg = t.Config.withDefaults()
		t.srvTLS, t.cliTLS, t.initErr = newTLS()
		if t.initErr != nil {
			t.initErr = fmt.Errorf("quictr: certificate: %w", t.initErr)
		}
	})
	return t.initErr
}

// Close stops a Transport from New: it closes its listener and all its
// conns (with CONNECTION_CLOSE, so peers learn at once; data still in
// flight is lost: close the conns first for a clean end). The caller's
// socket stays open. On a zero Transport
// Close does nothing. Close is idempotent.
func (t *Transport) Close() error {
	if t.qt == nil {
		return nil
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	ln := t.ln
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	t.sock.closeConns()
	return t.qt.Close()
}

// Dial opens a QUIC connection to addr ("host:port"), opens the link
// stream and writes the preamble. It returns when the QUIC handshake is
// done; ctx bounds it, as does Config.HandshakeTimeout.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := t.init(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("quictr: dial: %w", err)
	}
	raddr, err := resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	qt, sock, err := t.dialTransport(raddr)
	if err != nil {
		return nil, err
	}
	qc, err := qt.Dial(ctx, raddr, t.cliTLS, t.cfg.quicConfig(false))
	if err != nil {
		sock.release()
		return nil, fmt.Errorf("quictr: dial: %w", err)
	}
	st, err := qc.OpenStream()
	if err == nil {
		_, err = st.Write([]byte{preamble})
	}
	if err != nil {
		qc.CloseWithError(codeClosed, "")
		sock.release()
		return nil, fmt.Errorf("quictr: dial: %w", err)
	}
	local := localAddr(qc.LocalAddr(), raddr)
	return newConn(qc, st, true, local, t.cfg.Linger, sock), nil
}

// dialTransport returns the QUIC transport to dial raddr from: the shared
// one, or a new one on a fresh socket bound to the local address the
// system would route raddr from (so LocalAddr is concrete, as with TCP).
func (t *Transport) dialTransport(raddr *net.UDPAddr) (*quic.Transport, *socket, error) {
	if t.qt != nil {
		t.mu.Lock()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return nil, nil, fmt.Errorf("quictr: dial: %w", net.ErrClosed)
		}
		t.sock.acquire()
		return t.qt, t.sock, nil
	}
	bind := &net.UDPAddr{}
	if c, err := net.DialUDP("udp", nil, raddr); err == nil {
		bind.IP = c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
	}
	pc, err := net.ListenUDP("udp", bind)
	if err != nil {
		return nil, nil, fmt.Errorf("quictr: dial: %w", err)
	}
	qt := &quic.Transport{Conn: pc}
	return qt, newSocket(qt, pc), nil
}

// Listen listens on addr ("host:port").
//
// On a zero Transport it binds its own UDP socket there (port 0 picks a
// free one). Closing the listener stops accepting; the socket is closed
// once the listener and every conn it accepted are closed.
//
// On a Transport from New the socket is already bound: addr's host is
// ignored and its port must be 0 or the socket's, else ErrPortMismatch.
// There is at most one listener at a time (ErrListening); closing it
// leaves the socket and the Transport's conns running.
func (t *Transport) Listen(addr string) (net.Listener, error) {
	if err := t.init(); err != nil {
		return nil, err
	}
	if t.qt != nil {
		return t.listenShared(addr)
	}
	laddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quictr: listen: %w", err)
	}
	pc, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("quictr: listen: %w", err)
	}
	ln := newListener(t.cfg)
	qt := &quic.Transport{Conn: pc, ConnContext: ln.connContext, VerifySourceAddress: ln.verifySource}
	sock := newSocket(qt, pc)
	ql, err := qt.Listen(t.srvTLS, t.cfg.quicConfig(true))
	if err != nil {
		sock.release()
		return nil, fmt.Errorf("quictr: listen: %w", err)
	}
	ln.start(ql, pc.LocalAddr(), sock, nil)
	return ln, nil
}

func (t *Transport) listenShared(addr string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("quictr: listen: %w", err)
	}
	local := t.pc.LocalAddr()
	if port != "0" {
		ua, ok := local.(*net.UDPAddr)
		if !ok || port != strconv.Itoa(ua.Port) {
			return nil, ErrPortMismatch
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("quictr: listen: %w", net.ErrClosed)
	}
	if t.ln != nil {
		return nil, ErrListening
	}
	ql, err := t.qt.Listen(t.srvTLS, t.cfg.quicConfig(true))
	if err != nil {
		return nil, fmt.Errorf("quictr: listen: %w", err)
	}
	ln := newListener(t.cfg)
	t.sock.acquire()
	ln.start(ql, local, t.sock, func() {
		t.mu.Lock()
		if t.ln == ln {
			t.ln = nil
		}
		t.mu.Unlock()
	})
	t.ln = ln
	return ln, nil
}

// connContext and verifySource route the shared quic.Transport's
// admission hooks to the current listener.
func (t *Transport) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	t.mu.Lock()
	ln := t.ln
	t.mu.Unlock()
	if ln == nil {
		return nil, errRefused
	}
	return ln.connContext(ctx, info)
}

func (t *Transport) verifySource(a net.Addr) bool {
	t.mu.Lock()
	ln := t.ln
	t.mu.Unlock()
	return ln != nil && ln.verifySource(a)
}

// resolve resolves "host:port" to a UDP address.
func resolve(ctx context.Context, addr string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("quictr: dial: %w", err)
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return nil, fmt.Errorf("quictr: dial: %w", err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("quictr: dial: resolve: %w", err)
	}
	ip := ips[0]
	for _, a := range ips {
		if a.Is4() || a.Is4In6() {
			ip = a
			break
		}
	}
	return &net.UDPAddr{IP: ip.Unmap().AsSlice(), Port: p}, nil
}

// localAddr returns a, with its IP filled in from the route to remote if
// the socket is bound to the unspecified address.
func localAddr(a net.Addr, remote *net.UDPAddr) net.Addr {
	ua, ok := a.(*net.UDPAddr)
	if !ok || !ua.IP.IsUnspecified() {
		return a
	}
	c, err := net.DialUDP("udp", nil, remote)
	if err != nil {
		return a
	}
	defer c.Close()
	return &net.UDPAddr{IP: c.LocalAddr().(*net.UDPAddr).IP, Port: ua.Port}
}

// socket is a UDP socket and its quic.Transport owned by this package,
// closed when the last user releases it, and the conns on it. The zero
// socket owns nothing (a shared socket): it only tracks conns.
type socket struct {
	mu    sync.Mutex
	refs  int
	qt    *quic.Transport
	pc    net.PacketConn
	conns map[*conn]struct{}
}

func (s *socket) add(c *conn) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

// done forgets c and releases its reference.
func (s *socket) done(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.release()
}

// closeConns sends CONNECTION_CLOSE on every conn.
func (s *socket) closeConns() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.closed.Store(true)
		c.qc.CloseWithError(codeClosed, "")
	}
}

func newSocket(qt *quic.Transport, pc net.PacketConn) *socket {
	return &socket{refs: 1, qt: qt, pc: pc}
}

func (s *socket) acquire() {
	s.mu.Lock()
	s.refs++
	s.mu.Unlock()
}

func (s *socket) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs--; s.refs == 0 && s.qt != nil {
		s.qt.Close()
		s.pc.Close()
		s.qt = nil
	}
}
