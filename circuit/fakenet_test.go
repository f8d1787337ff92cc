package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// fakeNet connects Switches with in-process channels: no link crypto, no
// sockets, so these tests exercise circuit logic alone. Nodes have names
// (for tests) and IP-literal link addresses (for EXTEND, which takes IP
// literals only), each in its own /16.
type fakeNet struct {
	mu     sync.Mutex
	nodes  map[string]*fakeNode    // by name
	byAddr map[string]*fakeNode    // by link address
	chans  map[[2]string]*fakeChan // (from, to) names → from's end
	raws   int                     // raw channels opened
	closed bool
}

type fakeNode struct {
	// protocols is what hop() advertises: empty, like an old relay
	// without a descriptor set, unless a test sets it.
	protocols protover.Set
	name      string
	addr      string
	keys      *keys.NodeKeys
	sw        *Switch
	net       *fakeNet
	// refuse, if set, is this node's extend rule: a non-nil error
	// refuses an EXTEND to addr before any dial.
	refuse func(addr string) error
}

// fakeChan is one end of a channel; cells sent on it are handled by the
// other end's switch, in order, on one goroutine per end (like a link reader).
type fakeChan struct {
	owner, peer *fakeNode
	other       *fakeChan
	initiator   bool
	q           chan *cell.Cell
	done        chan struct{}
	once        sync.Once
	wg          sync.WaitGroup
	// source is what Source reports (the peer's address key), "" for none.
	source string
	// raw, if set, receives the cells arriving at this end instead of a
	// switch: a hand-written peer.
	raw func(*cell.Cell)
	// failNext makes the next Send fail as if the link's queue were full.
	failNext atomic.Bool
	// circQueue is what CircuitQueueLen reports for every circuit.
	circQueue atomic.Int32
	// hold, while set, stops this end from handling cells (a node that
	// does not read): run waits until the channel is closed.
	hold atomic.Pointer[chan struct{}]
	// destroys logs the reasons of the DESTROYs that arrived at this end.
	mu       sync.Mutex
	destroys []byte
}

// destroysSeen returns the reasons of the DESTROYs node to received from
// node from, oldest first.
func (n *fakeNet) destroysSeen(from, to string) []byte {
	n.mu.Lock()
	c := n.chans[[2]string{to, from}]
	n.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.destroys...)
}

func (c *fakeChan) Send(x *cell.Cell) error {
	if c.failNext.CompareAndSwap(true, false) {
		x.Free()
		return errors.New("fakenet: queue full")
	}
	select {
	case <-c.done:
		x.Free()
		return io.ErrClosedPipe
	default:
	}
	select {
	case c.other.q <- x:
		return nil
	case <-c.done:
		x.Free()
		return io.ErrClosedPipe
	}
}
func (c *fakeChan) Initiator() bool       { return c.initiator }
func (c *fakeChan) Done() <-chan struct{} { return c.done }

// CircuitQueueLen reports circQueue, like *link.Link's queue length.
func (c *fakeChan) CircuitQueueLen(uint32) int { return int(c.circQueue.Load()) }

// Source implements Sourcer when a test gave the channel a source.
func (c *fakeChan) Source() string { return c.source }

// PeerStatic returns the peer's static link key, like *link.Link.
func (c *fakeChan) PeerStatic() keys.LinkPublicKey {
	if c.peer == nil {
		return keys.LinkPublicKey{}
	}
	return c.peer.keys.Link.Public()
}

func (c *fakeChan) run() {
	defer c.wg.Done()
	for {
		select {
		case x := <-c.q:
			if h := c.hold.Load(); h != nil {
				select {
				case <-*h:
				case <-c.done:
					x.Free()
					continue
				}
			}
			if x.Cmd() == cell.CmdDestroy {
				c.mu.Lock()
				c.destroys = append(c.destroys, x.Body()[0])
				c.mu.Unlock()
			}
			if c.raw != nil {
				c.raw(x)
				continue
			}
			c.owner.sw.HandleCell(c, x)
		case <-c.done:
			if c.raw == nil {
				c.owner.sw.ChannelClosed(c)
			}
			return
		}
	}
}

// close closes both ends.
func (c *fakeChan) close() {
	for _, e := range []*fakeChan{c, c.other} {
		e.once.Do(func() { close(e.done) })
	}
}

func newFakeNet() *fakeNet {
	return &fakeNet{nodes: map[string]*fakeNode{}, byAddr: map[string]*fakeNode{}, chans: map[[2]string]*fakeChan{}}
}

func (n *fakeNet) addNode(t testing.TB, name string, exit *ExitConfig) *fakeNode {
	return n.addNodeWith(t, name, exit, nil)
}

// addNodeWith adds a node whose switch config tune may change.
func (n *fakeNet) addNodeWith(t testing.TB, name string, exit *ExitConfig, tune func(*Config)) *fakeNode {
	t.Helper()
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	addr := fmt.Sprintf("10.%d.0.1:1", len(n.nodes)+1)
	n.mu.Unlock()
	fn := &fakeNode{name: name, addr: addr, keys: k, net: n}
	cfg := Config{Network: "test", Onion: k.Onion, KEM: k.KEM, Identity: k.Identity.Public(),
		Linker: fn, Extender: fakeExtender{fn}, Exit: exit,
		Handlers: map[StreamKind]StreamHandler{KindDir: StreamHandlerFunc(serveTestDir)}}
	if tune != nil {
		tune(&cfg)
	}
	sw, err := NewSwitch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fn.sw = sw
	n.mu.Lock()
	n.nodes[name] = fn
	n.byAddr[addr] = fn
	n.mu.Unlock()
	return fn
}

func (fn *fakeNode) hop() Hop {
	kem := fn.keys.KEM.Public()
	return Hop{Identity: fn.keys.Identity.Public(), Link: fn.keys.Link.Public(), Addr: fn.addr,
		Onion: fn.keys.Onion.Public(), KEM: kem, Protocols: fn.protocols}
}

// fakeExtender is a node's Extender: its refuse rule, then its Linker.
type fakeExtender struct{ fn *fakeNode }

func (x fakeExtender) Channel(ctx context.Context, id keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (Channel, error) {
	if x.fn.refuse != nil {
		if err := x.fn.refuse(addr); err != nil {
			return nil, err
		}
	}
	return x.fn.Channel(ctx, id, lk, addr)
}

// Channel implements Linker.
func (fn *fakeNode) Channel(ctx context.Context, id keys.IdentityPublicKey, lk keys.LinkPublicKey, addr string) (Channel, error) {
	n := fn.net
	n.mu.Lock()
	defer n.mu.Unlock()
	peer := n.byAddr[addr]
	if peer == nil || n.closed || peer.keys.Link.Public() != lk {
		return nil, fmt.Errorf("fakenet: no node at %s", addr)
	}
	if c := n.chans[[2]string{fn.name, peer.name}]; c != nil && !isDone(c.done) {
		return c, nil
	}
	a := &fakeChan{owner: fn, peer: peer, initiator: true, q: make(chan *cell.Cell, 4096), done: make(chan struct{})}
	b := &fakeChan{owner: peer, peer: fn, q: make(chan *cell.Cell, 4096), done: make(chan struct{})}
	a.other, b.other = b, a
	a.wg.Add(1)
	b.wg.Add(1)
	go a.run()
	go b.run()
	n.chans[[2]string{fn.name, peer.name}] = a
	n.chans[[2]string{peer.name, fn.name}] = b
	return a, nil
}

// rawChannel opens a channel to node to whose other end is written by hand:
// the test sends cells on the returned end (as the link initiator) and
// handle receives what the node sends back, on the channel's reader.
func (n *fakeNet) rawChannel(to *fakeNode, handle func(*cell.Cell)) *fakeChan {
	return n.rawChannelFrom(to, "", handle)
}

// rawChannelFrom is rawChannel whose peer connects from source (Sourcer).
func (n *fakeNet) rawChannelFrom(to *fakeNode, source string, handle func(*cell.Cell)) *fakeChan {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.raws++
	a := &fakeChan{initiator: true, q: make(chan *cell.Cell, 1<<16), done: make(chan struct{}), raw: handle}
	b := &fakeChan{owner: to, q: make(chan *cell.Cell, 1<<16), done: make(chan struct{}), source: source}
	a.other, b.other = b, a
	a.wg.Add(1)
	b.wg.Add(1)
	go a.run()
	go b.run()
	n.chans[[2]string{fmt.Sprintf("raw#%d", n.raws), to.name}] = a
	return a
}

// kill closes every channel of the node called name and its switch, as if
// it crashed.
func (n *fakeNet) kill(name string) {
	n.mu.Lock()
	var cs []*fakeChan
	for k, c := range n.chans {
		if k[0] == name || k[1] == name {
			cs = append(cs, c)
		}
	}
	node := n.nodes[name]
	delete(n.nodes, name)
	delete(n.byAddr, node.addr)
	n.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
	for _, c := range cs {
		c.wg.Wait()
	}
	node.sw.Close()
}

func (n *fakeNet) close() {
	n.mu.Lock()
	n.closed = true
	var cs []*fakeChan
	for _, c := range n.chans {
		cs = append(cs, c)
	}
	nodes := n.nodes
	n.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
	for _, c := range cs {
		c.wg.Wait()
	}
	for _, fn := range nodes {
		fn.sw.Close()
	}
}

// echoServer accepts on loopback and echoes, for exit tests.
func echoServer(t testing.TB) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }
}

func loopbackExit() *ExitConfig {
	return &ExitConfig{Policy: exitpolicy.AcceptAll(), Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host == "echo.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, fmt.Errorf("no such host %q", host)
	}}
}

// threeHops builds client, guard, middle, exit.
func threeHops(t testing.TB) (*fakeNet, *fakeNode, []*fakeNode) {
	n := newFakeNet()
	client := n.addNode(t, "client:1", nil)
	g := n.addNode(t, "guard:1", nil)
	m := n.addNode(t, "middle:1", nil)
	e := n.addNode(t, "exit:1", loopbackExit())
	return n, client, []*fakeNode{g, m, e}
}

func path(nodes []*fakeNode) []Hop {
	var p []Hop
	for _, fn := range nodes {
		p = append(p, fn.hop())
	}
	return p
}

// serveTestDir is the fake network's directory handler: two records, then
// END.
func serveTestDir(ctx context.Context, req *StreamRequest) {
	st, err := req.Accept()
	if err != nil {
		return
	}
	for _, rec := range []string{"relay-one", "relay-two"} {
		st.Write(append([]byte{0, byte(len(rec))}, rec...))
	}
	st.CloseWrite()
	io.Copy(io.Discard, st)
	st.Close()
}

// fullProtocols is what this implementation's relays advertise.
var fullProtocols = protover.New(map[protover.ID]string{
	protover.Relay: "1-2", protover.Exit: "1", protover.Dir: "1-2", protover.Joint: "1"})
