package dht

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// A client-only node answers nothing but can Put and Get; servers never
// add it to their tables.
func TestClientOnly(t *testing.T) {
	n := newTestNet(t, 40)
	n.grow(20)
	c := Contact{ID: keys.NodeID{0xc1}, Addr: "tcp://192.0.2.50:1"}
	cl, err := n.net.NewDHT(Config{Self: c, Network: testNetwork, Now: n.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n.net.Attach(c, cl) // even reachable, it answers nothing
	ping, _ := (&Message{Kind: KindPing}).Marshal()
	if cl.HandleRequest(context.Background(), n.liveNodes()[0].Self(), ping) != nil {
		t.Fatal("client answered a request")
	}
	if err := cl.Seed(context.Background(), []Contact{n.liveNodes()[0].Self()}); err != nil {
		t.Fatal(err)
	}
	r := n.signed(5, "from client")
	stored, err := cl.Put(context.Background(), r)
	if err != nil || stored == 0 {
		t.Fatalf("client Put: %d, %v", stored, err)
	}
	if !found(cl, r) || !found(n.liveNodes()[7], r) {
		t.Fatal("client's record not found")
	}
	for _, d := range n.liveNodes() {
		if len(d.table.closest(Key(c.ID), 1)) > 0 && d.table.closest(Key(c.ID), 1)[0].ID == c.ID {
			t.Fatal("a server added the client to its table")
		}
	}
}

// Ineligible nodes route but store nothing from Put.
func TestEligible(t *testing.T) {
	n := newTestNet(t, 41)
	young := map[keys.NodeID]bool{}
	n.tweak = func(c *Config) { c.Eligible = func(c Contact) bool { return !young[c.ID] } }
	n.grow(30)
	for i, d := range n.liveNodes() {
		if i%2 == 0 {
			young[d.Self().ID] = true
		}
	}
	r := n.signed(6, "aged only")
	if _, err := n.liveNodes()[1].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for i, d := range n.liveNodes() {
		if i%2 == 0 && d.Stats().RecordsStored != 0 {
			t.Fatalf("ineligible node %d stored a record", i)
		}
	}
	if !found(n.liveNodes()[4], r) {
		t.Fatal("record not found")
	}
}

// GetVia sends every request over the given transport.
func TestGetVia(t *testing.T) {
	n := newTestNet(t, 42)
	n.grow(20)
	r := n.signed(7, "via")
	if _, err := n.liveNodes()[0].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{inner: n.net.Transport(n.liveNodes()[3].Self())}
	rs, err := n.liveNodes()[3].GetVia(context.Background(), r.Type, r.Key, ct)
	if err != nil || len(rs) != 1 {
		t.Fatalf("GetVia: %v, %v", rs, err)
	}
	if ct.calls.Load() == 0 {
		t.Fatal("GetVia did not use its transport")
	}
}

type countingTransport struct {
	inner Transport
	calls atomic.Int64
}

func (c *countingTransport) Call(ctx context.Context, to Contact, req []byte) ([]byte, error) {
	c.calls.Add(1)
	return c.inner.Call(ctx, to, req)
}

// Close can be called twice; calls after it fail with ErrClosed.
func TestCloseTwice(t *testing.T) {
	n := newTestNet(t, 43)
	n.grow(2)
	d := n.liveNodes()[0]
	d.Close()
	d.Close()
	if _, err := d.Get(context.Background(), TypeSigned, Key{}); err != ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}
}
