package dht

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// Test types keyed by their value alone, so two owners can collide.
const (
	typeExclusive uint16 = 0x7e01
	typeShared    uint16 = 0x7e02
)

func valueKey(v []byte) Key { return Key(sha256.Sum256(append([]byte("dht test\x00"), v...))) }

func valueKeySpec(name string, exclusive bool) TypeSpec {
	return TypeSpec{Name: name, MaxValue: 64, MaxTTL: 24 * time.Hour, Exclusive: exclusive,
		Validate: func(r *Record) error {
			if valueKey(r.Value) != r.Key {
				return errors.New("key is not the value's")
			}
			return nil
		}}
}

// exclusiveNet is a test network whose nodes register both test types.
func exclusiveNet(t *testing.T, seed uint64, size int) *testNet {
	n := newTestNet(t, seed)
	n.tweak = func(c *Config) {
		g := DefaultRegistry()
		if err := g.Register(typeExclusive, valueKeySpec("excl", true)); err != nil {
			t.Fatal(err)
		}
		if err := g.Register(typeShared, valueKeySpec("shared", false)); err != nil {
			t.Fatal(err)
		}
		c.Registry = g
	}
	n.grow(size)
	return n
}

// claim returns owner i's record of typ for value v, with seq and a
// lifetime from the fake clock's now.
func (n *testNet) claim(typ uint16, i int, v string, seq uint64, life time.Duration) *Record {
	n.t.Helper()
	r := &Record{Type: typ, Key: valueKey([]byte(v)), Seq: seq, Expires: n.clock.Now().Add(life).Unix(), Value: []byte(v)}
	if err := r.Sign(testNetwork, testOwner(i)); err != nil {
		n.t.Fatal(err)
	}
	return r
}

// A node holding an Exclusive key refuses other owners until the holder's
// record expires, while the holder renews by Seq; a type that is not
// Exclusive keeps several owners under one key.
func TestExclusiveFirstComeFirstServed(t *testing.T) {
	n := exclusiveNet(t, 40, 2)
	a, b := n.liveNodes()[0], n.liveNodes()[1]
	steps := []struct {
		name string
		r    *Record
		want Reason
	}{
		{"first owner", n.claim(typeExclusive, 1, "alice", 1, time.Hour), Stored},
		{"second owner", n.claim(typeExclusive, 2, "alice", 1, 2*time.Hour), ReasonTaken},
		{"second owner, higher seq", n.claim(typeExclusive, 2, "alice", 9, 2*time.Hour), ReasonTaken},
		{"holder renews", n.claim(typeExclusive, 1, "alice", 2, 3*time.Hour), Stored},
		{"holder, stale seq", n.claim(typeExclusive, 1, "alice", 1, 3*time.Hour), ReasonStale},
		{"second owner, other key", n.claim(typeExclusive, 2, "bob", 1, time.Hour), Stored},
		{"shared type, owner 1", n.claim(typeShared, 1, "alice", 1, time.Hour), Stored},
		{"shared type, owner 2", n.claim(typeShared, 2, "alice", 1, time.Hour), Stored},
	}
	for _, s := range steps {
		if got := storeVia(t, a, b.Self(), s.r); got != s.want {
			t.Fatalf("%s: %v, want %v", s.name, got, s.want)
		}
	}
	if got := b.Stats().Refused[ReasonTaken]; got != 2 {
		t.Fatalf("%d refusals counted as taken, want 2", got)
	}
	if rs := b.store.get(typeShared, valueKey([]byte("alice")), n.clock.Now()); len(rs) != 2 {
		t.Fatalf("shared key holds %d owners, want 2", len(rs))
	}
	held := b.store.get(typeExclusive, valueKey([]byte("alice")), n.clock.Now())
	if len(held) != 1 || held[0].Owner != testOwner(1).Public() || held[0].Seq != 2 {
		t.Fatalf("exclusive key holds %v", held)
	}

	// The holder's renewal lasts 3 hours; one second before its end the
	// key is still taken, at its end another owner may register.
	n.clock.Advance(3*time.Hour - time.Second)
	if got := storeVia(t, a, b.Self(), n.claim(typeExclusive, 2, "alice", 1, time.Hour)); got != ReasonTaken {
		t.Fatalf("before expiry: %v, want taken", got)
	}
	n.clock.Advance(time.Second)
	if got := storeVia(t, a, b.Self(), n.claim(typeExclusive, 2, "alice", 1, time.Hour)); got != Stored {
		t.Fatalf("after expiry: %v, want stored", got)
	}
	if got := storeVia(t, a, b.Self(), n.claim(typeExclusive, 1, "alice", 3, time.Hour)); got != ReasonTaken {
		t.Fatalf("former holder: %v, want taken", got)
	}
	held = b.store.get(typeExclusive, valueKey([]byte("alice")), n.clock.Now())
	if len(held) != 1 || held[0].Owner != testOwner(2).Public() {
		t.Fatalf("exclusive key holds %v after expiry", held)
	}
	if recs, _ := b.store.usage(); recs != 4 {
		t.Fatalf("store holds %d records, want 4 (expired holder dropped)", recs)
	}
}

// Over a network, the first owner's Put is stored on the replicas; a
// second owner's Put of the same key is refused everywhere, and every Get
// still returns the first owner's record alone, renewals included.
func TestExclusiveOverNetwork(t *testing.T) {
	n := exclusiveNet(t, 41, 30)
	nodes := n.liveNodes()
	first := n.claim(typeExclusive, 1, "carol", 1, time.Hour)
	if _, err := nodes[0].Put(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Put(context.Background(), n.claim(typeExclusive, 2, "carol", 5, time.Hour)); err == nil {
		t.Fatal("a second owner's Put of a taken key was stored")
	}
	renewed := n.claim(typeExclusive, 1, "carol", 2, 2*time.Hour)
	if _, err := nodes[2].Put(context.Background(), renewed); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	for _, d := range []*DHT{nodes[3], nodes[10], nodes[29]} {
		rs, err := d.Get(context.Background(), typeExclusive, first.Key)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Owner != testOwner(1).Public() || rs[0].Seq != 2 {
			t.Fatalf("Get returned %d records (want the renewal alone)", len(rs))
		}
	}
	var taken uint64
	for _, d := range nodes {
		taken += d.Stats().Refused[ReasonTaken]
	}
	if taken == 0 {
		t.Fatal("no replica counted the refusal as taken")
	}
}

func TestReasonTakenName(t *testing.T) {
	if ReasonTaken.String() != "taken" || ReasonTaken != 12 {
		t.Fatalf("ReasonTaken = %d %q", uint8(ReasonTaken), ReasonTaken)
	}
}
