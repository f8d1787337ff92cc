package hostile

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// peer is a node written from spec/ alone, for attacking or probing:
// links it opens itself (link.Dial, a fresh key per link, like a client)
// and a circuit switch of its own, so it can build circuits through any
// path it likes, including hops that are no relays.
type peer struct {
	t       testing.TB
	n       *testNet
	name    string // goroutine label
	tr      transport.Transport
	network string
	sw      *circuit.Switch

	// mu guards the following.
	mu    sync.Mutex
	links map[keys.LinkPublicKey]*link.Link // the switch's links
	gates map[keys.LinkPublicKey]*gateConn  // their conns
	raws  []*rawLink
}

// newPeer returns a peer dialling from ip (memnet; over TCP from
// 127.0.0.1). It is closed when the test ends.
func (n *testNet) newPeer(t testing.TB, name, ip string) *peer {
	p := &peer{t: t, n: n, name: name, tr: n.host(ip), network: n.relays[0].Descriptor().Network,
		links: make(map[keys.LinkPublicKey]*link.Link), gates: make(map[keys.LinkPublicKey]*gateConn)}
	sw, err := circuit.NewSwitch(circuit.Config{Network: p.network, Linker: peerLinker{p}, ExtendTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.sw = sw
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.sw.Close()
	p.mu.Lock()
	var ls []*link.Link
	for _, l := range p.links {
		ls = append(ls, l)
	}
	for _, r := range p.raws {
		ls = append(ls, r.Link)
	}
	p.links, p.raws = nil, nil
	p.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// dialConn opens a transport connection to addr ("scheme://host:port").
func (p *peer) dialConn(ctx context.Context, addr string) (net.Conn, error) {
	a, err := transport.ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	return p.tr.Dial(ctx, a.HostPort)
}

// peerLinker gives the peer's switch its links.
type peerLinker struct{ p *peer }

func (k peerLinker) Channel(ctx context.Context, _ keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (circuit.Channel, error) {
	p := k.p
	p.mu.Lock()
	if l := p.links[lk]; l != nil {
		p.mu.Unlock()
		return l, nil
	}
	p.mu.Unlock()
	var l *link.Link
	var gate *gateConn
	err := labelled(p.name, func() error {
		var err error
		l, err = link.Connect(ctx, func(ctx context.Context) (net.Conn, error) {
			c, err := p.dialConn(ctx, addr)
			if err != nil {
				return nil, err
			}
			gate = newGate(c)
			return gate, nil
		}, &link.Config{Network: p.network}, lk, switchHandler{p})
		return err
	})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.links == nil { // closed meanwhile
		p.mu.Unlock()
		l.Close()
		return nil, circuit.ErrClosed
	}
	if old := p.links[lk]; old != nil {
		p.mu.Unlock()
		l.Close()
		return old, nil
	}
	p.links[lk] = l
	p.gates[lk] = gate
	p.mu.Unlock()
	return l, nil
}

// gate returns the conn of the switch's link to relay r.
func (p *peer) gate(r *overlay.Node) *gateConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gates[r.Descriptor().Link]
}

// switchHandler routes a switch link's cells to the peer's switch.
type switchHandler struct{ p *peer }

func (h switchHandler) HandleCell(l *link.Link, c *cell.Cell) { h.p.sw.HandleCell(l, c) }
func (h switchHandler) Closed(l *link.Link, _ error) {
	h.p.mu.Lock()
	if h.p.links[l.PeerStatic()] == l {
		delete(h.p.links, l.PeerStatic())
		delete(h.p.gates, l.PeerStatic())
	}
	h.p.mu.Unlock()
	h.p.sw.ChannelClosed(l)
}

// hop returns what a client needs to extend to relay r.
func hop(r *overlay.Node) circuit.Hop {
	d := r.Descriptor()
	return descHop(d, d.Addrs[0])
}

// descHop is the hop of d at addr (which may be none of d's).
func descHop(d *descriptor.Descriptor, addr string) circuit.Hop {
	return circuit.Hop{Identity: d.Identity, Link: d.Link, Addr: addr, Onion: d.Onion, KEM: &d.KEM, Protocols: d.Protocols}
}

// fakeHop is a hop with fresh keys at addr: no relay has them.
func fakeHop(t testing.TB, addr string) circuit.Hop {
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	return circuit.Hop{Identity: k.Identity.Public(), Link: k.Link.Public(), Addr: addr, Onion: k.Onion.Public(), KEM: k.KEM.Public()}
}

// build builds a circuit through path with the peer's switch.
func (p *peer) build(ctx context.Context, path ...circuit.Hop) (*circuit.ClientCirc, error) {
	var cc *circuit.ClientCirc
	err := labelled(p.name, func() error {
		var err error
		cc, err = p.sw.BuildCircuit(ctx, path)
		return err
	})
	return cc, err
}

// rawLink is a link on which the peer sends crafted cells and counts what
// comes back. Its conn can stop being read (pause).
type rawLink struct {
	*link.Link
	p    *peer
	gate *gateConn

	circMu sync.Mutex
	circs  map[uint32]*rawCirc // circuits built by hand (circuit)

	byCmd      [256]atomic.Int64 // cells received, by command
	destroys   [256]atomic.Int64 // DESTROY cells received, by reason
	closedWith atomic.Pointer[error]
}

// raw opens a raw link to relay r.
func (p *peer) raw(r *overlay.Node) (*rawLink, error) {
	return p.rawTo(p.n.relayAddr(r), r.Descriptor().Link, nil)
}

// rawTo opens a raw link to addr with cfg (nil: a client's).
func (p *peer) rawTo(addr string, lk keys.LinkPublicKey, cfg *link.Config) (*rawLink, error) {
	if cfg == nil {
		cfg = &link.Config{Network: p.network}
	}
	rl := &rawLink{p: p}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := labelled(p.name, func() error {
		conn, err := p.dialConn(ctx, addr)
		if err != nil {
			return err
		}
		rl.gate = newGate(conn)
		rl.Link, err = link.Dial(ctx, rl.gate, cfg, lk, rl)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if !rl.isClosed() { // else Closed ran already
		p.raws = append(p.raws, rl)
	}
	p.mu.Unlock()
	return rl, nil
}

func (rl *rawLink) HandleCell(_ *link.Link, c *cell.Cell) {
	if rl.deliver(c) {
		return
	}
	rl.byCmd[c.Cmd()].Add(1)
	if c.Cmd() == cell.CmdDestroy {
		rl.destroys[c.Body()[0]].Add(1)
	}
	c.Free()
}

// Closed records why the link closed and forgets it, so that the
// attacker's memory does not count as the relay's.
func (rl *rawLink) Closed(_ *link.Link, err error) {
	rl.closedWith.Store(&err)
	p := rl.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.raws {
		if r == rl {
			p.raws = append(p.raws[:i], p.raws[i+1:]...)
			break
		}
	}
}

// isClosed reports whether the link has shut down.
func (rl *rawLink) isClosed() bool {
	select {
	case <-rl.Done():
		return true
	default:
		return false
	}
}

// send sends a cell of cmd on circuit id with payload (nil: an empty body).
func (rl *rawLink) send(id uint32, cmd cell.Command, payload []byte) error {
	c := cell.New(id, cmd)
	if payload != nil {
		if err := c.SetPayload(payload); err != nil {
			c.Free()
			return err
		}
	}
	return rl.Send(c)
}

// sendPaced sends cells like send, waiting while the link's own queue is
// long so that the peer, not the attacker, is what the test measures.
func (rl *rawLink) sendPaced(id uint32, cmd cell.Command, payload []byte) error {
	for rl.QueueLen() > 256 { // below the link's bound for one circuit's queue
		if rl.isClosed() {
			return link.ErrClosed
		}
		time.Sleep(time.Millisecond)
	}
	return rl.send(id, cmd, payload)
}

// createMsgs returns n valid CREATE handshake messages for relay r, each
// a fresh handshake.
func createMsgs(t testing.TB, r *overlay.Node, n int) [][]byte {
	d := r.Descriptor()
	out := make([][]byte, n)
	for i := range out {
		_, msg, err := onionhs.ClientStart(nil, d.Network, onionhs.RelayKeys{Onion: d.Onion, KEM: &d.KEM})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = msg
	}
	return out
}

// gateConn is a conn whose reads can be stopped: a peer that does not read
// what the relay sends.
type gateConn struct {
	net.Conn
	mu     sync.Mutex
	open   chan struct{} // closed while reading is allowed
	closed chan struct{}
	once   sync.Once
}

func newGate(c net.Conn) *gateConn {
	g := &gateConn{Conn: c, open: make(chan struct{}), closed: make(chan struct{})}
	close(g.open)
	return g
}

// pause stops reading (a Read already waiting for data still returns it).
func (g *gateConn) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

// resume allows reading again.
func (g *gateConn) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gateConn) Read(b []byte) (int, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-g.closed:
		return 0, net.ErrClosed
	}
	return g.Conn.Read(b)
}

func (g *gateConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// sync waits until the relay has handled every cell sent before it: it
// sends DIR_GET and waits for the DIR_DONE that answers it (a link's cells
// are handled in order).
func (rl *rawLink) sync(t testing.TB) {
	t.Helper()
	before := rl.byCmd[cell.CmdDirDone].Load()
	if err := rl.send(0, cell.CmdDirGet, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	waitFor(t, 20*time.Second, "DIR_DONE", func() bool {
		return rl.byCmd[cell.CmdDirDone].Load() > before || rl.isClosed()
	})
	if rl.isClosed() {
		t.Fatalf("the relay closed the link: %v", *rl.closedWith.Load())
	}
}

// flushed waits until the link has written everything queued to its conn
// (over memnet the relay has then read all but the last 256 KiB), then a
// little longer for the relay to handle it.
func (rl *rawLink) flushed(t testing.TB) {
	t.Helper()
	waitFor(t, 20*time.Second, "the attacker's cells to leave", func() bool { return rl.QueueLen() == 0 || rl.isClosed() })
	time.Sleep(300 * time.Millisecond)
}
