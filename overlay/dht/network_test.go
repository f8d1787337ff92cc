package dht

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Every record Put by one of 200 nodes is found by a Get from every other.
func TestPutGetEverywhere(t *testing.T) {
	n := newTestNet(t, 1)
	n.grow(200)
	n.refreshAll()
	nodes := n.liveNodes()
	var recs []*Record
	for i := range 3 {
		r := n.signed(i, fmt.Sprintf("everywhere-%d", i))
		stored, err := nodes[i*37].Put(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if stored < DefaultK/2 {
			t.Errorf("record %d stored on %d nodes, want at least %d", i, stored, DefaultK/2)
		}
		recs = append(recs, r)
	}
	for i, r := range recs {
		missing := 0
		for j, d := range nodes {
			if j == i*37 || (raceEnabled && j%8 != 0) { // -race: a sample
				continue
			}
			if false {
				continue
			}
			if !found(d, r) {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("record %d: %d of %d nodes did not find it", i, missing, len(nodes)-1)
		}
	}
	var s Stats
	for _, d := range nodes {
		st := d.Stats()
		s.Lookups += st.Lookups
		s.Hops += st.Hops
		s.MessagesSent += st.MessagesSent
	}
	t.Logf("lookups %d, mean hops %.2f, mean messages %.1f",
		s.Lookups, float64(s.Hops)/float64(s.Lookups), float64(s.MessagesSent)/float64(s.Lookups))
}

// With 30% of the nodes gone and as many new ones joined, after a round of
// replication and republishing, at least 99% of lookups succeed.
func TestChurn(t *testing.T) {
	n := newTestNet(t, 2)
	n.grow(200)
	n.refreshAll()
	nodes := n.liveNodes()
	var recs []*Record
	for i := range 20 {
		r := n.signed(i, fmt.Sprintf("churn-%d", i))
		if _, err := nodes[n.rng.IntN(len(nodes))].Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	// 60 nodes leave (none of them a publisher would matter: they may).
	for _, i := range n.rng.Perm(len(nodes))[:60] {
		n.leave(nodes[i])
	}
	n.grow(60)
	n.clock.Advance(DefaultReplicateInterval)
	for _, d := range n.liveNodes() {
		d.Maintain(context.Background())
	}
	live := n.liveNodes()
	tries, ok := 0, 0
	gets := 25
	if raceEnabled {
		recs, gets = recs[:8], 10
	}
	for _, r := range recs {
		for range gets {
			tries++
			if found(live[n.rng.IntN(len(live))], r) {
				ok++
			}
		}
	}
	rate := float64(ok) / float64(tries)
	t.Logf("churn: %d of %d lookups succeeded (%.2f%%)", ok, tries, 100*rate)
	if rate < 0.99 {
		t.Fatalf("lookup success %.3f under churn, want at least 0.99", rate)
	}
}

// Records expire: a Get after the expiry finds nothing, and purge frees
// the store.
func TestExpiry(t *testing.T) {
	n := newTestNet(t, 3)
	n.grow(30)
	nodes := n.liveNodes()
	r := n.signed(1, "short")
	if _, err := nodes[0].Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if !found(nodes[5], r) {
		t.Fatal("record not found before expiry")
	}
	n.clock.Advance(25 * time.Hour)
	if found(nodes[5], r) {
		t.Fatal("expired record returned")
	}
	for _, d := range nodes {
		d.purge()
		if s := d.Stats(); s.RecordsStored != 0 {
			t.Fatalf("node holds %d records after purge", s.RecordsStored)
		}
	}
}
