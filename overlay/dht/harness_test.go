package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

const testNetwork = "dht-test"

// epoch is the start of the fake clock.
var epoch = time.Unix(1_750_000_000, 0)

type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(epoch.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testNet is a MemNetwork of DHT nodes sharing a fake clock.
type testNet struct {
	t     testing.TB
	net   *MemNetwork
	clock *fakeClock
	rng   *rand.Rand
	nodes []*DHT // live and departed, in creation order
	live  map[keys.NodeID]*DHT
	tweak func(*Config)
	next  int
}

func newTestNet(t testing.TB, seed uint64) *testNet {
	n := &testNet{t: t, net: NewMemNetwork(), clock: newClock(),
		rng: rand.New(rand.NewPCG(seed, 1)), live: make(map[keys.NodeID]*DHT)}
	t.Cleanup(func() {
		for _, d := range n.nodes {
			d.Close()
		}
	})
	return n
}

// addr returns the address of the i-th node: each in its own /16.
func nodeAddr(i int) string { return fmt.Sprintf("tcp://%d.%d.0.1:9001", 1+i/250, i%250) }

// randomID draws a NodeID from the test's generator.
func (n *testNet) randomID() keys.NodeID {
	var id keys.NodeID
	for i := range id {
		id[i] = byte(n.rng.Uint32())
	}
	return id
}

// add creates and attaches a server node (without joining).
func (n *testNet) add(c Contact) *DHT {
	n.t.Helper()
	cfg := Config{Self: c, Network: testNetwork, Server: true, Now: n.clock.Now}
	if n.tweak != nil {
		n.tweak(&cfg)
	}
	d, err := n.net.NewDHT(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.nodes = append(n.nodes, d)
	n.live[c.ID] = d
	return d
}

// grow adds count nodes, each joining through a random live node.
func (n *testNet) grow(count int) {
	n.t.Helper()
	for range count {
		var boot []Contact
		for _, d := range n.liveNodes() {
			boot = append(boot, d.Self())
			break
		}
		c := Contact{ID: n.randomID(), Addr: nodeAddr(n.next)}
		n.next++
		d := n.add(c)
		if len(boot) > 0 {
			if err := d.Seed(context.Background(), boot); err != nil {
				n.t.Fatalf("join: %v", err)
			}
		}
	}
}

// liveNodes returns the live nodes in creation order.
func (n *testNet) liveNodes() []*DHT {
	var out []*DHT
	for _, d := range n.nodes {
		if n.live[d.Self().ID] == d {
			out = append(out, d)
		}
	}
	return out
}

// leave detaches and closes d.
func (n *testNet) leave(d *DHT) {
	n.net.Detach(d.Self().ID)
	delete(n.live, d.Self().ID)
	d.Close()
}

// refreshAll runs a table refresh on every live node.
func (n *testNet) refreshAll() {
	for _, d := range n.liveNodes() {
		d.refresh(context.Background())
	}
}

// owner returns a deterministic identity key.
func testOwner(i int) *keys.IdentityPrivateKey {
	var seed [keys.SeedSize]byte
	seed[0], seed[1] = byte(i), byte(i>>8)
	seed[31] = 0x5a
	return keys.IdentityFromSeed(seed)
}

// signed returns a valid TypeSigned record of owner i called name,
// expiring in a day of the fake clock.
func (n *testNet) signed(i int, name string) *Record {
	n.t.Helper()
	r, err := NewSigned(testNetwork, testOwner(i), name, []byte("data of "+name), 1, n.clock.Now().Add(24*time.Hour))
	if err != nil {
		n.t.Fatal(err)
	}
	return r
}

// found reports whether d's Get of r returns r.
func found(d *DHT, r *Record) bool {
	rs, err := d.Get(context.Background(), r.Type, r.Key)
	if err != nil {
		return false
	}
	for _, x := range rs {
		if x.Owner == r.Owner && x.Seq == r.Seq && x.Signature == r.Signature {
			return true
		}
	}
	return false
}
