package hostile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
)

// rawCirc is a circuit built by hand on a raw link, from spec/circuits.md
// alone: CREATE, EXTEND and layer sealing, so that the attacker can send
// any cell it likes on it (DROP cells for a later hop, as fast as the link
// takes them).
type rawCirc struct {
	rl      *rawLink
	id      uint32
	lc      *layer.Client
	replies chan *cell.Cell
	dead    atomic.Bool // a DESTROY came
}

// circuit registers a circuit ID on rl whose cells are delivered to the
// returned rawCirc instead of being counted and dropped.
func (rl *rawLink) circuit(id uint32) *rawCirc {
	lc, err := layer.NewClient()
	if err != nil {
		panic(err)
	}
	rc := &rawCirc{rl: rl, id: id, lc: lc, replies: make(chan *cell.Cell, 4)}
	rl.circMu.Lock()
	if rl.circs == nil {
		rl.circs = make(map[uint32]*rawCirc)
	}
	rl.circs[id] = rc
	rl.circMu.Unlock()
	return rc
}

// deliver hands c to the circuit it belongs to, if one was registered.
func (rl *rawLink) deliver(c *cell.Cell) bool {
	rl.circMu.Lock()
	rc := rl.circs[c.Circ()]
	rl.circMu.Unlock()
	if rc == nil {
		return false
	}
	if c.Cmd() == cell.CmdDestroy {
		rl.byCmd[cell.CmdDestroy].Add(1)
		rl.destroys[c.Body()[0]].Add(1)
		rc.dead.Store(true)
	}
	select {
	case rc.replies <- c:
	default:
		c.Free() // the attacker does not read its circuits after the build
	}
	return true
}

// reply waits for the next cell of the circuit.
func (rc *rawCirc) reply(ctx context.Context) (*cell.Cell, error) {
	select {
	case c := <-rc.replies:
		if c.Cmd() == cell.CmdDestroy {
			r := c.Body()[0]
			c.Free()
			return nil, &circuit.DestroyedError{Reason: r}
		}
		return c, nil
	case <-rc.rl.Done():
		return nil, errors.New("link closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// create runs CREATE with relay d (again after a refusal).
func (rc *rawCirc) create(ctx context.Context, d *descriptor.Descriptor) error {
	rc.dead.Store(false)
	st, msg, err := onionhs.ClientStart(nil, d.Network, onionhs.RelayKeys{Onion: d.Onion, KEM: &d.KEM})
	if err != nil {
		return err
	}
	if err := rc.rl.send(rc.id, cell.CmdCreate, msg); err != nil {
		return err
	}
	c, err := rc.reply(ctx)
	if err != nil {
		return err
	}
	defer c.Free()
	p, err := c.Payload()
	if c.Cmd() != cell.CmdCreated || err != nil {
		return fmt.Errorf("CREATE answered with %v", c.Cmd())
	}
	keys, err := st.Finish(p)
	if err != nil {
		return err
	}
	return rc.lc.AddHop(&keys)
}

// extend extends the circuit to relay d at its first address.
func (rc *rawCirc) extend(ctx context.Context, d *descriptor.Descriptor) error {
	st, msg, err := onionhs.ClientStart(nil, d.Network, onionhs.RelayKeys{Onion: d.Onion, KEM: &d.KEM})
	if err != nil {
		return err
	}
	reply, err := rc.extendRaw(ctx, extendBody(d.Identity, d.Link, d.Addrs[0], msg))
	if err != nil {
		return err
	}
	keys, err := st.Finish(reply)
	if err != nil {
		return err
	}
	return rc.lc.AddHop(&keys)
}

// extendBody encodes an EXTEND by hand (spec/cells.md §3.4), whatever the
// address: the attacker's encoder checks nothing.
func extendBody(identity, lk [32]byte, addr string, hs []byte) []byte {
	b := append(identity[:], lk[:]...)
	b = append(b, byte(len(addr)))
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(hs)))
	return append(b, hs...)
}

// extendRaw sends an EXTEND with body to the last hop and returns the
// EXTENDED payload, or the DESTROY as a *circuit.DestroyedError.
func (rc *rawCirc) extendRaw(ctx context.Context, body []byte) ([]byte, error) {
	if err := rc.sendTo(rc.lc.Hops()-1, cell.RelayExtend, body); err != nil {
		return nil, err
	}
	c, err := rc.reply(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Free()
	if c.Cmd() != cell.CmdRelay {
		return nil, fmt.Errorf("EXTEND answered with %v", c.Cmd())
	}
	if _, err := rc.lc.Open(c.Body()); err != nil {
		return nil, err
	}
	m, err := cell.ParseRelay(c.Body())
	if err != nil || m.Cmd != cell.RelayExtended {
		return nil, fmt.Errorf("EXTEND answered with %v (%v)", m.Cmd, err)
	}
	return append([]byte(nil), m.Data...), nil
}

// sendTo seals a relay message for hop and sends it.
func (rc *rawCirc) sendTo(hop int, cmd cell.RelayCmd, data []byte) error {
	c := cell.New(rc.id, cell.CmdRelay)
	if err := cell.PutRelay(c.Body(), cmd, 0, data); err != nil {
		c.Free()
		return err
	}
	if err := rc.lc.Seal(c.Body(), hop); err != nil {
		c.Free()
		return err
	}
	for rc.rl.QueueLen() > 256 && !rc.rl.isClosed() {
		time.Sleep(time.Millisecond)
	}
	return rc.rl.Send(c)
}

// evilRelay is a relay of the attacker's: a real overlay.Node, known to
// the others' directories, whose inbound links can stop being read.
type evilRelay struct {
	*overlay.Node
	tr *gatedTransport
}

// addEvilRelay starts the attacker's relay at ip (memnet; loopback over
// TCP) and waits until every relay of the network knows it.
func (n *testNet) addEvilRelay(t testing.TB, ip string) *evilRelay {
	t.Helper()
	var base transport.Transport = &transport.TCP{}
	listen := "127.0.0.1:0"
	scheme := transport.SchemeTCP
	if n.mem != nil {
		base = n.mem.Host(ip)
		listen = "mem://" + ip + ":7000"
		scheme = "mem"
	}
	tr := &gatedTransport{Transport: base}
	cfg := overlay.Config{
		Network:           n.relays[0].Descriptor().Network,
		Transports:        transport.Registry{scheme: tr},
		Listen:            []string{listen},
		Bootstrap:         []descriptor.Bootstrap{n.relays[0].Bootstrap()},
		AllowSameSubnet:   n.kind == "tcp",
		AllowPrivateAddrs: n.kind == "tcp",
	}
	var r *overlay.Node
	err := labelled("evil", func() error {
		var err error
		if r, err = overlay.New(cfg); err != nil {
			return err
		}
		return r.Start(ctxT(t))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	waitFor(t, 10*time.Second, "every relay knows the attacker's relay", func() bool {
		for _, x := range n.relays {
			known := false
			for _, d := range x.Relays() {
				known = known || d.Identity == r.Descriptor().Identity
			}
			if !known {
				return false
			}
		}
		return true
	})
	return &evilRelay{Node: r, tr: tr}
}

// gatedTransport is a transport whose conns stop being read on pause.
type gatedTransport struct {
	transport.Transport

	// mu guards the following.
	mu     sync.Mutex
	gates  []*gateConn
	paused bool
}

// Dial gates the conns the relay dials, too.
func (g *gatedTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := g.Transport.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return g.add(c), nil
}

// add wraps c in a gate, paused if the transport is.
func (g *gatedTransport) add(c net.Conn) *gateConn {
	gc := newGate(c)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		gc.pause()
	}
	g.gates = append(g.gates, gc)
	return gc
}

func (g *gatedTransport) Listen(addr string) (net.Listener, error) {
	ln, err := g.Transport.Listen(addr)
	if err != nil {
		return nil, err
	}
	return gatedListener{ln, g}, nil
}

// pause stops reading every conn, and those opened later.
func (g *gatedTransport) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused = true
	for _, c := range g.gates {
		c.pause()
	}
}

type gatedListener struct {
	net.Listener
	g *gatedTransport
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.g.add(c), nil
}

// fakeDescriptor signs a descriptor of a relay that does not exist, at
// addr, with fresh keys.
func fakeDescriptor(t testing.TB, network, addr string) (*keys.NodeKeys, []byte) {
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := &descriptor.Descriptor{
		Network:      network,
		Link:         k.Link.Public(),
		Onion:        k.Onion.Public(),
		OnionExpires: now.Add(24 * time.Hour),
		KEM:          *k.KEM.Public(),
		Addrs:        []string{addr},
		ExitPolicy:   "reject *:*",
		Published:    now,
	}
	d.Sign(k.Identity)
	return k, d.Marshal()
}

// rawRelay is a next hop of the attacker's, written from spec/ alone: it
// listens with its own keys, announces a signed descriptor naming its own
// address (a HELLO on a link it opens from that address), and answers
// CREATE as told.
type rawRelay struct {
	acceptor
	desc *descriptor.Descriptor
	keys *keys.NodeKeys
	// refuse, if not zero, answers every CREATE with DESTROY of this
	// reason; otherwise CREATE gets a real CREATED.
	refuse byte

	destroys [256]atomic.Int64 // DESTROY cells received, by reason
	creates  atomic.Int64
}

// acceptor accepts links on a listener, each handled by one Handler, and
// closes them with the listener.
type acceptor struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex // guards links
	links []*link.Link
}

// serve accepts links on ln with cfg until close, each handled by h.
func (a *acceptor) serve(ln net.Listener, cfg *link.Config, h link.Handler) {
	a.ln = ln
	a.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			a.wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				l, err := link.Accept(ctx, conn, cfg, h)
				if err != nil {
					return
				}
				a.mu.Lock()
				a.links = append(a.links, l)
				a.mu.Unlock()
			})
		}
	})
}

// close stops accepting and closes every link accepted.
func (a *acceptor) close() {
	a.ln.Close()
	a.wg.Wait()
	a.mu.Lock()
	ls := a.links
	a.links = nil
	a.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// announceFake makes relay r list the fake relay d: a link from ip (d's own
// address) with d in its HELLO (cfg), as a real relay announces itself.
func (n *testNet) announceFake(t testing.TB, ip string, r *overlay.Node, cfg *link.Config, d *descriptor.Descriptor) {
	t.Helper()
	p := n.newPeer(t, "fake-relay", ip)
	hl, err := p.rawTo(n.relayAddr(r), r.Descriptor().Link, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the relay to list the fake relay", func() bool { return listed(r, d) })
	hl.Close()
}

// addRawRelay starts the attacker's raw relay at ip (memnet; loopback
// over TCP) and announces it to relay r.
func (n *testNet) addRawRelay(t testing.TB, ip string, r *overlay.Node) *rawRelay {
	t.Helper()
	tr := n.host(ip)
	listen, scheme := "127.0.0.1:0", "tcp"
	if n.mem != nil {
		listen, scheme = ip+":7000", "mem"
	}
	ln, err := tr.Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	network := r.Descriptor().Network
	k, b := fakeDescriptor(t, network, scheme+"://"+ln.Addr().String())
	d, err := descriptor.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	rr := &rawRelay{desc: d, keys: k}
	cfg := &link.Config{Network: network, Static: k.Link, Hello: b}
	rr.serve(ln, cfg, rr)
	t.Cleanup(rr.close)
	n.announceFake(t, ip, r, cfg, d)
	return rr
}

func (rr *rawRelay) HandleCell(l *link.Link, c *cell.Cell) {
	defer c.Free()
	switch c.Cmd() {
	case cell.CmdDestroy:
		rr.destroys[c.Body()[0]].Add(1)
	case cell.CmdCreate:
		rr.creates.Add(1)
		if rr.refuse != 0 {
			d := cell.New(c.Circ(), cell.CmdDestroy)
			d.Body()[0] = rr.refuse
			l.Send(d)
			return
		}
		p, err := c.Payload()
		if err != nil {
			return
		}
		reply, _, err := onionhs.Respond(nil, rr.desc.Network, onionhs.RelayPrivate{Onion: rr.keys.Onion, KEM: rr.keys.KEM}, p)
		if err != nil {
			return
		}
		out := cell.New(c.Circ(), cell.CmdCreated)
		out.SetPayload(reply)
		l.Send(out)
	}
}

func (rr *rawRelay) Closed(*link.Link, error) {}
