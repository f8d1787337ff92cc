package linkmgr

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// Link is one open link of the manager. It is the circuit.Channel the
// circuit layer sends on: Send counts the circuits that cross it. Its
// methods are safe for concurrent use.
type Link struct {
	m    *Manager
	addr atomic.Pointer[transport.Addr] // the address dialled, or the peer's as accepted; a move changes it

	// ll is the underlying link. It is set once, by whichever comes first:
	// Dial or Accept returning, or the link's first callback (which can
	// run before they return).
	ll atomic.Pointer[link.Link]

	// seq orders links by when they were recorded, for the newer-wins
	// rule; Manager.mu guards it.
	seq uint64

	// slot is an accepted link's place under the accept limits, given
	// back when it closes; nil for a link we dialled. Set before the
	// handshake starts.
	slot *slot

	// mu guards the following.
	mu      sync.Mutex
	desc    *descriptor.Descriptor // the peer's verified HELLO descriptor, or nil
	circs   map[uint32]struct{}    // circuits crossing the link: CREATE seen, DESTROY not yet
	retired bool                   // another link to the peer is preferred
	timer   *time.Timer            // closes a retired link after ReplaceGrace without circuits
}

var _ circuit.Channel = (*Link)(nil)

func (m *Manager) newLink(addr transport.Addr) *Link {
	l := &Link{m: m, circs: make(map[uint32]struct{})}
	l.addr.Store(&addr)
	return l
}

// opened sets the underlying link once Dial or Accept returned it, and
// verifies the peer's HELLO descriptor.
func (l *Link) opened(ll *link.Link) {
	l.set(ll)
	d := helloDescriptor(ll)
	l.mu.Lock()
	l.desc = d
	l.mu.Unlock()
	if d == nil && len(ll.PeerHello()) > 0 {
		l.m.logf.Printf("linkmgr: peer sent a bad HELLO descriptor")
	}
}

func (l *Link) set(ll *link.Link) {
	if l.ll.Load() == nil {
		l.ll.CompareAndSwap(nil, ll)
	}
}

// helloDescriptor returns the peer's HELLO descriptor if it verifies and
// names the link key the handshake authenticated, else nil (clients send
// none).
func helloDescriptor(ll *link.Link) *descriptor.Descriptor {
	if len(ll.PeerHello()) == 0 {
		return nil
	}
	d, err := descriptor.Parse(ll.PeerHello())
	if err != nil || d.Link != ll.PeerStatic() {
		return nil
	}
	return d
}

// Send queues c on the link and takes ownership of it (circuit.Channel).
func (l *Link) Send(c *cell.Cell) error {
	id, cmd := c.Circ(), c.Cmd()
	err := l.ll.Load().Send(c)
	if err == nil || cmd == cell.CmdDestroy {
		l.track(id, cmd)
	}
	return err
}

// CircuitQueueLen returns the cells queued on the link for circuit circ,
// so a relay can drop what it originates rather than overflow the queue.
func (l *Link) CircuitQueueLen(circ uint32) int { return l.ll.Load().CircuitQueueLen(circ) }

// Initiator reports whether this side dialled the link (circuit.Channel).
func (l *Link) Initiator() bool { return l.ll.Load().Initiator() }

// Done is closed once the link has shut down (circuit.Channel).
func (l *Link) Done() <-chan struct{} { return l.ll.Load().Done() }

// Err returns why the link closed (nil while open or after a local Close).
func (l *Link) Err() error { return l.ll.Load().Err() }

// Peer returns the peer's static link key, authenticated by the handshake.
func (l *Link) Peer() keys.LinkPublicKey { return l.ll.Load().PeerStatic() }

// Source is the key the per-address limits use for the peer's address (an
// IPv4 address or IPv6 /64): the circuit switch bounds circuits per source
// with it (circuit.Sourcer).
func (l *Link) Source() string {
	src := sourceOf(l.RemoteAddr())
	if src.ip.IsValid() {
		return src.ip.String()
	}
	return src.other
}

// PeerStatic is Peer under the name the circuit switch looks for: it refuses
// an EXTEND back to the relay a circuit came from.
func (l *Link) PeerStatic() keys.LinkPublicKey { return l.Peer() }

// PeerProtocols returns the subprotocols the peer's HELLO listed.
func (l *Link) PeerProtocols() protover.Set { return l.ll.Load().PeerProtocols() }

// Descriptor returns the peer's HELLO descriptor, verified once when the
// link came up (signature, and the link key the handshake authenticated),
// or nil for a client or a bad one. It is set before LinkUp.
func (l *Link) Descriptor() *descriptor.Descriptor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.desc
}

// Addr returns the address with its scheme: the one dialled, or the peer's
// as the listener saw it. Log it only through safelog.S.
func (l *Link) Addr() transport.Addr { return *l.addr.Load() }

// RemoteAddr returns the conn's remote address. Log it only through
// safelog.S.
func (l *Link) RemoteAddr() net.Addr { return l.ll.Load().RemoteAddr() }

// Stats returns the link's traffic counters.
func (l *Link) Stats() link.Stats { return l.ll.Load().Stats() }

// QueueLen returns how many cells wait to be written.
func (l *Link) QueueLen() int { return l.ll.Load().QueueLen() }

// LinkQueueLen returns how many of the link's own cells (circuit 0, such
// as directory answers) wait to be sent.
func (l *Link) LinkQueueLen() int { return l.ll.Load().CircuitQueueLen(0) }

// Circuits returns how many circuits cross the link, as counted from the
// CREATE and DESTROY cells it carried.
func (l *Link) Circuits() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.circs)
}

// Retired reports whether another link to the peer is preferred, so that
// this one closes once it carries no circuits.
func (l *Link) Retired() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.retired
}

// Close closes the link and waits until the manager has handled its
// closing. It must not be called from the manager's callbacks (Circuits,
// Handler) for the same link.
func (l *Link) Close() error { return l.ll.Load().Close() }

// track counts the circuits that cross the link: a CREATE in either
// direction adds one, a DESTROY in either direction ends it.
func (l *Link) track(id uint32, cmd cell.Command) {
	if id == 0 || cmd != cell.CmdCreate && cmd != cell.CmdDestroy {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cmd == cell.CmdCreate {
		l.circs[id] = struct{}{}
		return
	}
	delete(l.circs, id)
	if l.retired && len(l.circs) == 0 {
		l.retireLaterLocked()
	}
}

// handler is the link.Handler (and link.CircuitDropper) of a Link: its
// methods are plumbing, so they live on this unexported type rather than
// on Link.
type handler Link

var _ link.CircuitDropper = (*handler)(nil)

// HandleCell routes a cell: circuit cells to Config.Circuits, circuit 0 to
// Config.Handler.
func (h *handler) HandleCell(ll *link.Link, c *cell.Cell) {
	l := (*Link)(h)
	l.set(ll)
	id := c.Circ()
	if id != 0 {
		l.track(id, c.Cmd())
		l.m.cfg.Circuits.HandleCell(l, c)
		return
	}
	if hd := l.m.cfg.Handler; hd != nil {
		hd.LinkCell(l, c)
		return
	}
	c.Free()
}

// CircuitDropped tells the circuit layer that the link discarded the
// queued cells of circuit circ (link.CircuitDropper), so it destroys it.
func (h *handler) CircuitDropped(ll *link.Link, circ uint32) {
	l := (*Link)(h)
	l.set(ll)
	l.m.cfg.Circuits.DropCircuit(l, circ)
}

// Closed takes the link out of the table and tells the circuit layer and
// the Handler.
func (h *handler) Closed(ll *link.Link, err error) {
	l := (*Link)(h)
	l.set(ll)
	l.m.linkClosed(l)
}

var _ circuit.Sourcer = (*Link)(nil)

// MoveMagic opens a connection that continues an open link (spec/links.md
// §5.4): MoveMagic | version 0x01 | the link's move token (32).
var MoveMagic = [3]byte{'D', 'M', 'V'}

// moveHeaderLen is the move preamble's length.
const moveHeaderLen = 3 + 1 + link.MoveTokenLen

// Move continues the link on conn, a new connection to the same peer at
// addr (a punched QUIC path): it writes the move preamble with the link's
// token, then hands conn to the link (link.Link.Move), which sends MOVE on
// the old connection and carries every circuit on, none broken. The peer's
// link manager finds the link by its token. The link takes conn over.
func (l *Link) Move(conn net.Conn, addr transport.Addr) error {
	ll := l.ll.Load()
	if !ll.CanMove() {
		conn.Close()
		return link.ErrMoveUnsupported
	}
	tok := ll.MoveToken()
	b := append(append(append(make([]byte, 0, moveHeaderLen), MoveMagic[:]...), 1), tok[:]...)
	_ = conn.SetWriteDeadline(time.Now().Add(l.m.linkConfig().WithDefaults().HandshakeTimeout))
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return fmt.Errorf("linkmgr: move: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	if err := ll.Move(conn); err != nil {
		return err
	}
	l.addr.Store(&addr)
	return nil
}

// CanMove reports whether both ends can move the link (LinkMove).
func (l *Link) CanMove() bool { return l.ll.Load().CanMove() }

// Moved reports whether the link has moved to a second connection.
func (l *Link) Moved() bool { return l.ll.Load().Moved() }
