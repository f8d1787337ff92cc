package linkmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/relaylink"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// SpliceMagic opens a connection for Config.Splice (spec/nat.md §8.3),
// where a link's preamble opens with "DMK".
var SpliceMagic = relaylink.Magic

// Tuning constants.
const (
	// DefaultReplaceGrace is how long a retired link must carry no
	// circuits before it is closed, when Config.ReplaceGrace is zero. It
	// covers a CREATE the peer sent on the old link before it saw the new
	// one.
	DefaultReplaceGrace = 10 * time.Second
	// DefaultMaxLinksPerPeer bounds the links to one peer key when
	// Config.MaxLinksPerPeer is zero.
	DefaultMaxLinksPerPeer = 4
)

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("linkmgr: closed")
	// ErrTooManyLinks means a peer already has MaxLinksPerPeer links.
	ErrTooManyLinks = errors.New("linkmgr: too many links to one peer")
	// ErrWrongRelay means the relay reached did not present a descriptor
	// signed by the identity asked for.
	ErrWrongRelay = errors.New("linkmgr: the relay at that address is not the relay asked for")
)

// Circuits is the circuit layer as the manager sees it; *circuit.Switch
// implements it. Both methods are called from a link's reader goroutine.
type Circuits interface {
	// HandleCell takes a cell whose circuit ID is not 0, and ownership of
	// it.
	HandleCell(ch circuit.Channel, c *cell.Cell)
	// ChannelClosed is called once when a link closes.
	ChannelClosed(ch circuit.Channel)
	// DropCircuit destroys circuit id on ch: the link discarded its
	// queued cells to stay within the memory budget or a queue bound
	// (link.CircuitDropper), so it cannot continue. It is called from a
	// goroutine of the link's, before ChannelClosed.
	DropCircuit(ch circuit.Channel, id uint32)
}

// Handler is told about links and receives their link-level cells. The
// manager calls it with none of its locks held.
type Handler interface {
	// LinkUp is called once a link is open and in the table, before
	// Channel or Dial returns it. For a dialled link it runs on the
	// dialling goroutine, for an accepted one on the manager's.
	LinkUp(l *Link)
	// LinkCell receives a cell on circuit 0 (PADDING and HELLO excepted)
	// from the link's reader goroutine, and ownership of it. It may arrive
	// before LinkUp.
	LinkCell(l *Link, c *cell.Cell)
	// LinkClosed is called once for every link that LinkUp saw, after it
	// closed, left the table and the circuit layer was told.
	LinkClosed(l *Link)
}

// Descriptors looks up relays' verified descriptors; *dir.Directory
// implements it.
type Descriptors interface {
	Get(id keys.NodeID) *descriptor.Descriptor
}

// Config configures a Manager.
type Config struct {
	// Link is the template for every link: network name, static key,
	// HELLO payload, timers. A nil Link.Static makes every dialled link use
	// a fresh key (a client) and forbids Listen. Link.Logf defaults to
	// Logf.
	Link link.Config
	// Transports carries links by address scheme; nil means TCP only
	// ({"tcp": &transport.TCP{}}).
	Transports transport.Registry
	// Circuits receives circuit cells. Required.
	Circuits Circuits
	// Handler hears about links and receives link-level cells; nil drops
	// them.
	Handler Handler
	// Descriptors, if set, is where a dial looks up the relay's signed
	// descriptor: one that lists LinkAES gets link.Config.PeerPrefersAES,
	// so a "use ChaChaPoly" answer fails as a downgrade.
	Descriptors Descriptors
	// ReplaceGrace is how long a retired link must carry no circuits
	// before it is closed (default DefaultReplaceGrace).
	ReplaceGrace time.Duration
	// MaxLinksPerPeer bounds the open links to one peer key (default
	// DefaultMaxLinksPerPeer).
	MaxLinksPerPeer int
	// MaxLinks bounds the accepted links, open or in their handshake
	// (default DefaultMaxLinks). Outbound links are not counted: a node
	// dials only relays of its directory, one link each.
	MaxLinks int
	// MaxLinksPerIP bounds the accepted links, open or in their handshake,
	// from one IPv4 address or IPv6 /64 (default DefaultMaxLinksPerIP).
	MaxLinksPerIP int
	// MaxHandshakes bounds the inbound handshakes in flight (default
	// DefaultMaxHandshakes).
	MaxHandshakes int
	// MaxHandshakesPerIP bounds the inbound handshakes in flight from one
	// IPv4 address or IPv6 /64 (default DefaultMaxHandshakesPerIP).
	MaxHandshakesPerIP int
	// Splice, if set, takes accepted connections that open with
	// SpliceMagic instead of a link preamble: a relay's side of relayed
	// links (overlay/relaylink). It owns the connection until it returns;
	// the connection holds its accept slot until then.
	Splice func(conn net.Conn)
	// Logf receives debug logs; nil is silent.
	Logf safelog.Logf
}

// Manager owns a node's links. Create one with New; it is safe for
// concurrent use.
type Manager struct {
	cfg    Config
	ourKey *keys.LinkPublicKey // nil for a client
	logf   safelog.Logf
	ctx    context.Context // cancelled by Close: ends handshakes and dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops, handshakes, dials, retirements

	// mu guards the following.
	mu         sync.Mutex
	closed     bool
	listeners  []net.Listener
	peers      map[keys.LinkPublicKey]*peer
	all        map[*Link]struct{} // every link in peers
	dialing    map[dialKey]*pendingDial
	seq        uint64 // counts recorded links; Link.seq orders them
	inbound    int    // accepted links open or in their handshake
	handshakes int    // inbound handshakes in flight
	sources    map[source]*sourceCount
	stats      Stats // the counters; the gauges are computed by Stats
}

// dialKey identifies a dial that concurrent Channel calls share: the peer
// key and the address. Keying by the key alone would let a dial to a
// wrong address (a black hole that never answers) stall every other
// caller that wants the same peer at its real address.
type dialKey struct {
	peer keys.LinkPublicKey
	addr transport.Addr
}

// peer is the open links to one peer key.
type peer struct {
	links     []*Link
	preferred *Link
}

// pendingDial is a dial that concurrent Channel calls for one peer at one
// address share.
type pendingDial struct {
	done chan struct{}
	l    *Link // set before done is closed
	err  error
}

// New returns a Manager; it listens only when Listen is called.
// Config returns the manager's configuration with the defaults filled in,
// its links' included (link.Config.WithDefaults).
func (m *Manager) Config() Config {
	c := m.cfg
	c.Link = c.Link.WithDefaults()
	return c
}

func New(cfg Config) (*Manager, error) {
	if cfg.Circuits == nil {
		return nil, errors.New("linkmgr: Config.Circuits is required")
	}
	if cfg.Transports == nil {
		cfg.Transports = transport.Registry{transport.SchemeTCP: &transport.TCP{}}
	}
	defaults.Set(&cfg.ReplaceGrace, DefaultReplaceGrace)
	defaults.Set(&cfg.MaxLinksPerPeer, DefaultMaxLinksPerPeer)
	defaults.Set(&cfg.MaxLinks, DefaultMaxLinks)
	defaults.Set(&cfg.MaxLinksPerIP, DefaultMaxLinksPerIP)
	defaults.Set(&cfg.MaxHandshakes, DefaultMaxHandshakes)
	defaults.Set(&cfg.MaxHandshakesPerIP, DefaultMaxHandshakesPerIP)
	if cfg.Link.Logf == nil {
		cfg.Link.Logf = cfg.Logf
	}
	m := &Manager{
		cfg:     cfg,
		logf:    cfg.Logf,
		peers:   make(map[keys.LinkPublicKey]*peer),
		all:     make(map[*Link]struct{}),
		dialing: make(map[dialKey]*pendingDial),
		sources: make(map[source]*sourceCount),
	}
	if cfg.Link.Static != nil {
		k := cfg.Link.Static.Public()
		m.ourKey = &k
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Supports reports whether addr parses and a transport carries its scheme.
func (m *Manager) Supports(addr string) bool { return m.cfg.Transports.Supports(addr) }

// Listen listens on addr ("scheme://host:port" or a bare tcp "host:port")
// and accepts links there until Close (Serve). The listener's Addr is the
// transport's, without the scheme.
func (m *Manager) Listen(addr string) (net.Listener, error) {
	t, a, err := m.cfg.Transports.Lookup(addr)
	if err != nil {
		return nil, fmt.Errorf("linkmgr: listen: %w", err)
	}
	ln, err := t.Listen(a.HostPort)
	if err != nil {
		return nil, fmt.Errorf("linkmgr: listen: %w", safelog.Scrub(err))
	}
	if err := m.Serve(ln, a.Scheme); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve accepts links on ln, a listener of the transport registered for
// scheme, until Close, which closes ln. It needs Config.Link.Static. A
// caller that must know its listeners' addresses before links come up (a
// relay's descriptor names them) listens itself, calls SetHello, then
// Serve.
func (m *Manager) Serve(ln net.Listener, scheme string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.cfg.Link.Static == nil {
		return errors.New("linkmgr: a listener needs Config.Link.Static")
	}
	m.listeners = append(m.listeners, ln)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.acceptLoop(ln, scheme)
	}()
	return nil
}

// SetHello sets the HELLO payload (a relay's signed descriptor) of the
// links opened from now on; open links keep theirs. A relay calls it when
// its descriptor changes.
func (m *Manager) SetHello(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Link.Hello = b
}

// linkConfig returns the template for a new link.
func (m *Manager) linkConfig() *link.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cfg.Link
	return &c
}

// Accept errors other than a closed listener (too many open files, say)
// are retried after a pause that doubles from minAcceptRetry up to
// maxAcceptRetry, as net/http does, instead of ending the accept loop.
const (
	minAcceptRetry = 5 * time.Millisecond
	maxAcceptRetry = time.Second
)

func (m *Manager) acceptLoop(ln net.Listener, scheme string) {
	var pause time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || m.isClosed() {
				return
			}
			pause = min(max(2*pause, minAcceptRetry), maxAcceptRetry)
			m.logf.Printf("linkmgr: accept: %v; retrying in %v", safelog.Scrub(err), pause)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-m.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		pause = 0
		// The limits apply before any cryptography: a connection over
		// one is closed at once.
		s := m.admit(conn.RemoteAddr())
		if s == nil {
			conn.Close()
			continue
		}
		if !m.goFunc(func() { m.accept(conn, scheme, s) }) {
			m.release(s)
			conn.Close()
			return
		}
	}
}

// accept runs the responder side of a link on conn, which holds slot s,
// and records it.
func (m *Manager) accept(conn net.Conn, scheme string, s *slot) {
	conn, ok := m.peek(conn, scheme, s)
	if !ok {
		return
	}
	m.acceptLink(conn, transport.Addr{Scheme: scheme, HostPort: conn.RemoteAddr().String()}, s)
}

// peek reads the first bytes of an accepted connection: SpliceMagic hands
// it to Config.Splice (a hop relay), which holds slot s until it returns;
// MoveMagic continues an open link on it; anything else is given back as
// a connection that replays those bytes to the link handshake (true).
func (m *Manager) peek(conn net.Conn, scheme string, s *slot) (net.Conn, bool) {
	var magic [len(SpliceMagic)]byte
	_ = conn.SetReadDeadline(time.Now().Add(m.linkConfig().WithDefaults().HandshakeTimeout))
	n, err := io.ReadFull(conn, magic[:])
	if err == nil && magic != SpliceMagic && magic != MoveMagic {
		_ = conn.SetReadDeadline(time.Time{})
		return &prefixConn{Conn: conn, prefix: magic[:n]}, true
	}
	switch {
	case err != nil:
		m.failedHandshake() // as the handshake would have
	case magic == MoveMagic:
		m.acceptMove(conn, scheme)
	case m.cfg.Splice != nil:
		_ = conn.SetReadDeadline(time.Time{})
		m.handshakeDone(s)
		m.cfg.Splice(&prefixConn{Conn: conn, prefix: magic[:n]})
	}
	m.release(s)
	if err != nil || magic != MoveMagic {
		conn.Close()
	}
	return nil, false
}

// acceptMove reads the rest of a move preamble and hands conn to the
// link, accepted here, whose token it names; conn then belongs to that
// link (and counts under its accept slot, not its own). An unknown token
// closes conn.
func (m *Manager) acceptMove(conn net.Conn, scheme string) {
	var b [moveHeaderLen - len(MoveMagic)]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != 1 {
		m.failedHandshake()
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	tok := [link.MoveTokenLen]byte(b[1:])
	var found *Link
	m.mu.Lock()
	for l := range m.all {
		if ll := l.ll.Load(); ll != nil && !ll.Initiator() && ll.MoveToken() == tok {
			found = l
			break
		}
	}
	m.mu.Unlock()
	if found == nil {
		m.failedHandshake()
		conn.Close()
		return
	}
	if err := found.ll.Load().Move(conn); err != nil {
		m.logf.Printf("linkmgr: move: %v", safelog.Scrub(err))
		return
	}
	found.addr.Store(&transport.Addr{Scheme: scheme, HostPort: conn.RemoteAddr().String()})
}

// failedHandshake counts an accepted connection that did not become a
// link (or move one).
func (m *Manager) failedHandshake() {
	m.mu.Lock()
	m.stats.FailedHandshakes++
	m.mu.Unlock()
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// AcceptConn runs the responder side of a link on conn, a connection this
// node obtained itself (a relayed link that a relay spliced to it, with
// addr "relay://HOST:PORT" of that relay), and records the link. It takes
// no accept slot: the caller bounds such connections. It returns when the
// handshake is over.
func (m *Manager) AcceptConn(conn net.Conn, addr transport.Addr) {
	if !m.goFunc(func() { m.acceptLink(conn, addr, nil) }) {
		conn.Close()
	}
}

// acceptLink runs the responder side of a link on conn, which holds slot
// s (nil for AcceptConn), and records it.
func (m *Manager) acceptLink(conn net.Conn, addr transport.Addr, s *slot) {
	l := m.newLink(addr)
	l.slot = s
	ll, err := link.Accept(m.ctx, conn, m.linkConfig(), (*handler)(l))
	if err != nil {
		m.failedHandshake()
		m.release(s)
		m.logf.Printf("linkmgr: incoming link: %v", err)
		return
	}
	m.handshakeDone(s)
	l.opened(ll)
	if err := m.record(l); err != nil {
		m.logf.Printf("linkmgr: incoming link: %v", err)
		ll.Close()
	}
}

// goFunc runs f on a goroutine Close waits for; false after Close.
func (m *Manager) goFunc(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Links returns every open link.
func (m *Manager) Links() []*Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Link, 0, len(m.all))
	for l := range m.all {
		out = append(out, l)
	}
	return out
}

// Len returns the number of open links.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.all)
}

// Stats returns the manager's gauges and counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Links = len(m.all)
	st.Inbound = m.inbound
	st.Handshakes = m.handshakes
	st.Sources = len(m.sources)
	st.Dials = len(m.dialing)
	return st
}

// Preferred returns the link new circuits to peer use, or nil if there is
// none.
func (m *Manager) Preferred(peer keys.LinkPublicKey) *Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peers[peer]; p != nil {
		return p.preferred
	}
	return nil
}

// Close closes the listeners and every link, cancels dials and handshakes
// in progress and waits for the manager's goroutines. It can be called
// more than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	lns := m.listeners
	m.listeners = nil
	links := make([]*Link, 0, len(m.all))
	for l := range m.all {
		links = append(links, l)
	}
	m.mu.Unlock()
	m.cancel()
	for _, ln := range lns {
		ln.Close()
	}
	for _, l := range links {
		l.Close()
	}
	m.wg.Wait()
	return nil
}
