package dht

import (
	"context"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// A STORE flood from one source is cut by the per-source rate, while
// another source's STORE and a legitimate Put still work.
func TestStoreFloodRate(t *testing.T) {
	n := newTestNet(t, 30)
	n.grow(30)
	nodes := n.liveNodes()
	victim, flooder := nodes[0], nodes[1]
	accepted := 0
	for i := range 500 {
		if storeVia(t, flooder, victim.Self(), n.signed(1000+i, fmt.Sprint("flood", i))) == Stored {
			accepted++
		}
	}
	burst := victim.cfg.Limits.StoreBurst
	if accepted != burst {
		t.Fatalf("flooder got %d STOREs accepted, want the burst %d", accepted, burst)
	}
	if got := victim.Stats().Refused[ReasonRate]; got != uint64(500-burst) {
		t.Fatalf("%d rate refusals counted, want %d", got, 500-burst)
	}
	if st := storeVia(t, nodes[2], victim.Self(), n.signed(1, "legit")); st != Stored {
		t.Fatalf("legitimate source refused: %v", st)
	}
	r := n.signed(2, "legit put")
	if _, err := nodes[3].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if !found(nodes[4], r) {
		t.Fatal("legitimate record not found during the flood")
	}
}

// Many sources together cannot make a node hold more than MaxRecords or
// MaxBytes, nor track more than MaxSources rate buckets; a legitimate Put
// still lands on the other replicas and is found.
func TestStoreFloodCapacity(t *testing.T) {
	n := newTestNet(t, 31)
	n.tweak = func(c *Config) { c.Limits = StoreLimits{MaxRecords: 40, MaxBytes: 8000, MaxSources: 16} }
	n.grow(30)
	nodes := n.liveNodes()
	victim := nodes[0]
	for i := range 200 {
		from := Contact{ID: keys.NodeID{byte(i), 0xf1}, Addr: nodeAddr(1000 + i)}
		m := &Message{Kind: KindStore, Records: []*Record{n.signed(2000+i, fmt.Sprint("cap", i))}, ID: uint64(i)}
		req, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		victim.HandleRequest(context.Background(), from, req)
	}
	s := victim.Stats()
	if s.RecordsStored > 40 || s.BytesStored > 8000 {
		t.Fatalf("victim holds %d records, %d bytes; limits 40, 8000", s.RecordsStored, s.BytesStored)
	}
	if s.Refused[ReasonFull]+s.Refused[ReasonRate] == 0 {
		t.Fatal("no refusal counted")
	}
	victim.store.mu.Lock()
	sources := len(victim.store.sources)
	victim.store.mu.Unlock()
	if sources > 16 {
		t.Fatalf("%d sources tracked, limit 16", sources)
	}
	r := n.signed(3, "legit")
	if _, err := nodes[5].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if !found(nodes[6], r) {
		t.Fatal("legitimate record not found")
	}
}

// One owner cannot hold more than MaxPerOwner records on a node.
func TestStorePerOwner(t *testing.T) {
	s := newStore(StoreLimits{MaxRecords: 100, MaxBytes: 1 << 20, MaxPerOwner: 3, MaxPerKey: 4})
	n := newTestNet(t, 32)
	for i := range 5 {
		r, err := NewSigned(testNetwork, testOwner(1), fmt.Sprint("o", i), nil, 1, n.clock.Now().Add(3600e9))
		if err != nil {
			t.Fatal(err)
		}
		want := Stored
		if i >= 3 {
			want = ReasonFull
		}
		if got := s.put(r); got != want {
			t.Fatalf("record %d: %v, want %v", i, got, want)
		}
	}
}
