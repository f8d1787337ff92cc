package dht

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// GetReplicas returns each answering replica's records apart: a record
// one replica alone holds shows in that replica's answer only, while Get
// merges it with the others'.
func TestGetReplicas(t *testing.T) {
	n := exclusiveNet(t, 44, 30)
	nodes := n.liveNodes()
	common := n.claim(typeShared, 1, "erin", 1, time.Hour)
	if _, err := nodes[0].Put(context.Background(), common); err != nil {
		t.Fatal(err)
	}
	var holders []*DHT
	for _, d := range nodes {
		if len(d.store.get(typeShared, common.Key, n.clock.Now())) > 0 {
			holders = append(holders, d)
		}
	}
	if len(holders) < 2 {
		t.Fatalf("%d holders", len(holders))
	}
	// One replica alone also holds a second owner's record.
	lone := n.claim(typeShared, 2, "erin", 1, time.Hour)
	if got := storeVia(t, nodes[0], holders[0].Self(), lone); got != Stored {
		t.Fatalf("lone store: %v", got)
	}
	asker := nodes[29]
	reps, err := asker.GetReplicas(context.Background(), typeShared, common.Key)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != len(holders) {
		t.Fatalf("%d replica answers, want %d", len(reps), len(holders))
	}
	withLone := 0
	for i, rep := range reps {
		owners := map[keys.IdentityPublicKey]bool{}
		for _, r := range rep {
			owners[r.Owner] = true
		}
		if !owners[common.Owner] {
			t.Fatalf("replica answer %d lacks the common record", i)
		}
		if owners[lone.Owner] {
			withLone++
		}
		if len(rep) != len(owners) {
			t.Fatalf("replica answer %d repeats an owner", i)
		}
	}
	if withLone != 1 {
		t.Fatalf("the lone record is in %d replica answers, want 1", withLone)
	}
	merged, err := asker.Get(context.Background(), typeShared, common.Key)
	if err != nil || len(merged) != 2 {
		t.Fatalf("Get merged %d records (%v), want 2", len(merged), err)
	}
}

// GetReplicas of a key nobody stored fails with ErrNotFound; after Close
// with ErrClosed. GetReplicasVia sends over its transport.
func TestGetReplicasNotFoundVia(t *testing.T) {
	n := newTestNet(t, 45)
	n.grow(12)
	d := n.liveNodes()[5]
	if _, err := d.GetReplicas(context.Background(), TypeSigned, Key{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
	r := n.signed(3, "rep")
	if _, err := n.liveNodes()[0].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{inner: n.net.Transport(d.Self())}
	reps, err := d.GetReplicasVia(context.Background(), r.Type, r.Key, ct)
	if err != nil || len(reps) == 0 {
		t.Fatalf("GetReplicasVia: %v, %v", reps, err)
	}
	if ct.calls.Load() == 0 {
		t.Fatal("GetReplicasVia did not use its transport")
	}
	d.Close()
	if _, err := d.GetReplicas(context.Background(), r.Type, r.Key); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
