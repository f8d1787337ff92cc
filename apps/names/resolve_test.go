package names

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/dht"
)

// resolveAt resolves with a registry's full check at now.
func resolveAt(t *testing.T, name string, answers [][]*dht.Record, now time.Time) (*Record, error) {
	g := registry(t)
	return Resolve(name, answers, func(r *dht.Record) error { return g.Verify(r, testNetwork, now) })
}

func TestResolveMajority(t *testing.T) {
	now := epoch.Add(time.Hour)
	legit := signed(t, newRec(t, "alice", 1, epoch, MaxTTL), 1, 1)
	// The hostile owner claims an earlier registration, which wins ties only.
	hostile := signed(t, newRec(t, "alice", 2, epoch.Add(-24*time.Hour), MaxTTL), 2, 1)
	// 3 of 5 replicas hold the legit owner; 2 serve the hostile one,
	// one of them many times over.
	answers := [][]*dht.Record{{legit}, {legit}, {hostile, hostile, hostile, hostile}, {legit}, {hostile}}
	got, err := resolveAt(t, "Alice.dark", answers, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != owner(1).Public() {
		t.Fatal("a minority of replicas took the name over")
	}
	// With the replicas tied, the earlier registration wins.
	answers = [][]*dht.Record{{legit}, {hostile}}
	if got, _ := resolveAt(t, "alice", answers, now); got.Owner != owner(2).Public() {
		t.Fatal("tie not broken by registration time")
	}
}

func TestResolveTieByOwnerKey(t *testing.T) {
	a := signed(t, newRec(t, "bob", 1, epoch, time.Hour), 1, 1)
	b := signed(t, newRec(t, "bob", 2, epoch, time.Hour), 2, 1)
	want := a.Owner
	if bytes.Compare(b.Owner[:], a.Owner[:]) < 0 {
		want = b.Owner
	}
	for _, answers := range [][][]*dht.Record{{{a}, {b}}, {{b}, {a}}, {{a, b}}} {
		got, err := resolveAt(t, "bob", answers, epoch)
		if err != nil || got.Owner != want {
			t.Fatalf("got %v, %v; want the lower owner key", got, err)
		}
	}
}

// Expired, forged, foreign and other-name records count for nothing; of
// one owner the highest Seq is returned.
func TestResolveIgnoresInvalid(t *testing.T) {
	now := epoch.Add(2 * time.Hour)
	good := newRec(t, "carol", 1, epoch, 24*time.Hour)
	v1 := signed(t, good, 1, 1)
	renewed := *good
	renewed.Expires = good.Expires.Add(time.Hour)
	renewed.Entries = []Entry{TextEntry("v2")}
	v2 := signed(t, &renewed, 1, 2)
	expired := signed(t, newRec(t, "carol", 2, epoch, time.Hour), 2, 1)
	forged := signed(t, newRec(t, "carol", 3, epoch, 24*time.Hour), 3, 1)
	forged.Signature[0] ^= 1
	other := signed(t, newRec(t, "dave", 4, epoch, 24*time.Hour), 4, 1)
	foreign, err := (newRec(t, "carol", 5, epoch, 24*time.Hour)).DHTRecord("other-net", owner(5), 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]*dht.Record{{expired}, {expired}, {forged}, {forged}, {other}, {other}, {foreign}, {foreign}, {nil}}
	got, err := resolveAt(t, "carol", append(bad, []*dht.Record{v1}, []*dht.Record{v2}), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != owner(1).Public() || len(got.Entries) != 1 || string(got.Entries[0].Data) != "v2" {
		t.Fatalf("resolved %+v", got)
	}
	if _, err := resolveAt(t, "carol", bad, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("only invalid answers: %v", err)
	}
	if _, err := resolveAt(t, "carol", nil, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no answers: %v", err)
	}
	if _, err := resolveAt(t, "-x", nil, now); !errors.Is(err, ErrName) {
		t.Fatalf("invalid name: %v", err)
	}
}
