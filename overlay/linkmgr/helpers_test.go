package linkmgr

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/link"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

const testNetwork = "linkmgr-test"

// recorder is a fake circuit layer and Handler: it keeps what it receives.
type recorder struct {
	mu      sync.Mutex
	circ    []uint32 // circuit IDs of circuit cells
	link    []cell.Command
	up      []*Link
	down    []*Link
	chClose []circuit.Channel
	dropped []uint32 // circuits DropCircuit was called for
}

func (r *recorder) HandleCell(ch circuit.Channel, c *cell.Cell) {
	r.mu.Lock()
	r.circ = append(r.circ, c.Circ())
	r.mu.Unlock()
	c.Free()
}

func (r *recorder) DropCircuit(ch circuit.Channel, id uint32) {
	r.mu.Lock()
	r.dropped = append(r.dropped, id)
	r.mu.Unlock()
}

func (r *recorder) ChannelClosed(ch circuit.Channel) {
	r.mu.Lock()
	r.chClose = append(r.chClose, ch)
	r.mu.Unlock()
}

func (r *recorder) LinkUp(l *Link) {
	r.mu.Lock()
	r.up = append(r.up, l)
	r.mu.Unlock()
}

func (r *recorder) LinkCell(l *Link, c *cell.Cell) {
	r.mu.Lock()
	r.link = append(r.link, c.Cmd())
	r.mu.Unlock()
	c.Free()
}

func (r *recorder) LinkClosed(l *Link) {
	r.mu.Lock()
	r.down = append(r.down, l)
	r.mu.Unlock()
}

func (r *recorder) counts() (circ, link, up, down, chClose int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.circ), len(r.link), len(r.up), len(r.down), len(r.chClose)
}

// testNode is one manager on a memnet host, a relay (listening on
// mem://IP:7000, with a descriptor) or a client.
type testNode struct {
	m    *Manager
	rec  *recorder
	keys *keys.NodeKeys
	addr string // "mem://ip:7000" for a relay
}

type nodeOpt func(*Config)

func newNode(t *testing.T, net *memnet.Network, ip string, relay bool, opts ...nodeOpt) *testNode {
	t.Helper()
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg := Config{
		Link:         link.Config{Network: testNetwork},
		Transports:   transport.Registry{memnet.Scheme: net.Host(ip)},
		Circuits:     rec,
		Handler:      rec,
		ReplaceGrace: 30 * time.Millisecond,
	}
	n := &testNode{rec: rec, keys: k}
	if relay {
		n.addr = memnet.Scheme + "://" + ip + ":7000"
		now := time.Now()
		d := &descriptor.Descriptor{
			Network:      testNetwork,
			Link:         k.Link.Public(),
			Onion:        k.Onion.Public(),
			OnionExpires: now.Add(time.Hour),
			KEM:          *k.KEM.Public(),
			Addrs:        []string{ip + ":7000"},
			ExitPolicy:   "reject *:*",
			Published:    now,
		}
		d.Sign(k.Identity)
		cfg.Link.Static, cfg.Link.Hello = k.Link, d.Marshal()
	}
	for _, o := range opts {
		o(&cfg)
	}
	if n.m, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.m.Close() })
	if relay {
		if _, err := n.m.Listen(n.addr); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// channel opens (or reuses) a link from n to relay r.
func (n *testNode) channel(t *testing.T, r *testNode) *Link {
	t.Helper()
	l, err := n.m.Channel(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), r.addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dial opens a new link from n to relay r.
func (n *testNode) dial(t *testing.T, r *testNode) (*Link, error) {
	return n.m.Dial(ctxT(t), r.keys.Identity.Public(), r.keys.Link.Public(), r.addr)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for range 2000 {
		if f() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// sameConn reports whether a and b are the two ends of one connection.
func sameConn(a, b *Link) bool {
	return a.RemoteAddr().String() == b.ll.Load().LocalAddr().String() &&
		b.RemoteAddr().String() == a.ll.Load().LocalAddr().String()
}

// peerLink returns n's link whose far end is l.
func (n *testNode) peerLink(l *Link) *Link {
	for _, x := range n.m.Links() {
		if sameConn(x, l) {
			return x
		}
	}
	return nil
}
