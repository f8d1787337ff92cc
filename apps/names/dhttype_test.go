package names

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/dht"
)

func reasonOf(err error) dht.Reason {
	var re *dht.RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 255
}

// A registry with Spec accepts a registered name and renewals, and
// refuses every record that breaks the type's rule.
func TestSpecValidate(t *testing.T) {
	g := registry(t)
	now := epoch.Add(time.Minute)
	rec := newRec(t, "alice", 1, epoch, MaxTTL)
	d := signed(t, rec, 1, 1)
	if err := g.Verify(d, testNetwork, now); err != nil {
		t.Fatal(err)
	}
	got, err := FromDHT(d)
	if err != nil || got.Owner != owner(1).Public() || got.Name != "alice" {
		t.Fatalf("FromDHT: %+v, %v", got, err)
	}
	// A renewal keeps Registered and Nonce: no new work.
	renew := *rec
	renew.Expires = epoch.Add(40 * 24 * time.Hour)
	if err := g.Verify(signed(t, &renew, 1, 2), testNetwork, epoch.Add(20*24*time.Hour)); err != nil {
		t.Fatalf("renewal: %v", err)
	}

	// Another owner signing the same value: the work was the first owner's.
	stolen := signed(t, rec, 2, 1)
	// A record whose work is below the difficulty.
	weak := *rec
	for CheckPoW(weak.Name, owner(1).Public(), weak.Registered, weak.Nonce, testDifficulty) {
		weak.Nonce++
	}
	// The value under another name's key.
	otherKey := signed(t, rec, 1, 1)
	otherKey.Key = Key("bob")
	if err := otherKey.Sign(testNetwork, owner(1)); err != nil {
		t.Fatal(err)
	}
	// The envelope's expiry differs from the value's.
	otherExp := signed(t, rec, 1, 1)
	otherExp.Expires--
	if err := otherExp.Sign(testNetwork, owner(1)); err != nil {
		t.Fatal(err)
	}
	garbage := &dht.Record{Type: Type, Key: Key("alice"), Seq: 1, Expires: rec.Expires.Unix(), Value: []byte{1, 2, 3}}
	if err := garbage.Sign(testNetwork, owner(1)); err != nil {
		t.Fatal(err)
	}
	tooLong := newRec(t, "carol", 1, epoch, MaxTTL+time.Hour)
	for name, tc := range map[string]struct {
		r    *dht.Record
		want dht.Reason
	}{
		"other owner":   {stolen, dht.ReasonBadKey},
		"weak work":     {signed(t, &weak, 1, 1), dht.ReasonBadKey},
		"other key":     {otherKey, dht.ReasonBadKey},
		"other expiry":  {otherExp, dht.ReasonBadKey},
		"garbage value": {garbage, dht.ReasonBadKey},
		"beyond MaxTTL": {signed(t, tooLong, 1, 1), dht.ReasonTooLong},
	} {
		if err := g.Verify(tc.r, testNetwork, now); reasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := FromDHT(&dht.Record{Type: dht.TypeSigned}); err == nil {
		t.Error("FromDHT accepted another type")
	}
}

func TestRegister(t *testing.T) {
	g := dht.NewRegistry()
	for _, d := range []int{-1, MaxDifficulty + 1} {
		if Register(g, d) == nil {
			t.Errorf("difficulty %d registered", d)
		}
	}
	if err := Register(g, DefaultDifficulty); err != nil {
		t.Fatal(err)
	}
	if Register(g, DefaultDifficulty) == nil {
		t.Fatal("registered twice")
	}
	s, ok := g.Lookup(Type)
	if !ok || !s.Exclusive || s.MaxTTL != MaxTTL || s.MaxValue != MaxRecordSize || s.MaxValue > dht.MaxValueSize {
		t.Fatalf("spec %+v", s)
	}
	// The registry's difficulty is the one enforced.
	rec, err := NewRecord(context.Background(), "dave", owner(1).Public(), epoch, epoch.Add(time.Hour), 1)
	if err != nil {
		t.Fatal(err)
	}
	for CheckPoW(rec.Name, owner(1).Public(), rec.Registered, rec.Nonce, 2) {
		rec.Nonce++
		for !CheckPoW(rec.Name, owner(1).Public(), rec.Registered, rec.Nonce, 1) {
			rec.Nonce++
		}
	}
	low := dht.NewRegistry()
	if err := Register(low, 1); err != nil {
		t.Fatal(err)
	}
	d := signed(t, rec, 1, 1)
	if err := low.Verify(d, testNetwork, epoch); err != nil {
		t.Fatalf("difficulty 1: %v", err)
	}
	if err := g.Verify(d, testNetwork, epoch); reasonOf(err) != dht.ReasonBadKey {
		t.Fatalf("default difficulty accepted 1-bit work: %v", err)
	}
}

func TestNewRecordRefuses(t *testing.T) {
	ctx := context.Background()
	o := owner(1).Public()
	if _, err := NewRecord(ctx, "a..b", o, epoch, epoch.Add(time.Hour), 1); !errors.Is(err, ErrName) {
		t.Error(err)
	}
	if _, err := NewRecord(ctx, "a", o, epoch, epoch, 1); err == nil {
		t.Error("empty lifetime accepted")
	}
	if _, err := NewRecord(ctx, "a", o, epoch, epoch.Add(time.Hour), MaxDifficulty+1); err == nil {
		t.Error("difficulty accepted")
	}
	r, err := NewRecord(ctx, "Bob.dark", o, epoch, epoch.Add(time.Hour), 1)
	if err != nil || r.Name != "bob" {
		t.Fatalf("%+v %v", r, err)
	}
}
