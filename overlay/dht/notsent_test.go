package dht

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// failingTransport fails every call with err.
type failingTransport struct{ err error }

func (f failingTransport) Call(context.Context, Contact, []byte) ([]byte, error) { return nil, f.err }

// A call its transport never sent (a client without a circuit) leaves the
// peer in the routing table, so the client looks up again once it has
// circuits; a call the peer failed drops it, as before.
func TestNotSentKeepsContacts(t *testing.T) {
	n := newTestNet(t, 44)
	n.grow(20)
	c := Contact{ID: keys.NodeID{0xc2}, Addr: "tcp://192.0.2.51:1"}
	cl, err := n.net.NewDHT(Config{Self: c, Network: testNetwork, Now: n.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, d := range n.liveNodes() {
		cl.AddContact(d.Self())
	}
	before := cl.TableSize()
	if before == 0 {
		t.Fatal("no contacts")
	}
	r := n.signed(8, "not sent")
	notSent := failingTransport{fmt.Errorf("%w: no circuit", ErrNotSent)}
	if _, err := cl.GetVia(context.Background(), r.Type, r.Key, notSent); err == nil {
		t.Fatal("GetVia over a transport that sends nothing succeeded")
	}
	if got := cl.TableSize(); got != before {
		t.Fatalf("calls never sent dropped contacts: %d left of %d", got, before)
	}
	// The client is usable again at once.
	if _, err := n.liveNodes()[0].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if rs, err := cl.Get(context.Background(), r.Type, r.Key); err != nil || len(rs) != 1 {
		t.Fatalf("Get after the failed calls: %v, %v", rs, err)
	}

	peerFailed := failingTransport{errors.New("no answer")}
	if _, err := cl.GetVia(context.Background(), r.Type, r.Key, peerFailed); err == nil {
		t.Fatal("GetVia over a failing transport succeeded")
	}
	if got := cl.TableSize(); got >= before {
		t.Fatalf("calls the peers failed dropped no contact: %d of %d left", got, before)
	}
}
