package names

import (
	"context"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

const (
	testNetwork    = "names-test"
	testDifficulty = 8
)

var epoch = time.Unix(1_767_225_600, 0)

func owner(i int) *keys.IdentityPrivateKey {
	var seed [keys.SeedSize]byte
	seed[0], seed[1], seed[31] = byte(i), byte(i>>8), 0x6e
	return keys.IdentityFromSeed(seed)
}

func service(i int) keys.ServicePublicKey {
	var seed [keys.SeedSize]byte
	seed[0], seed[31] = byte(i), 0x73
	return keys.ServiceFromSeed(seed).Public()
}

// registry returns a registry holding Type at testDifficulty.
func registry(t testing.TB) *dht.Registry {
	g := dht.NewRegistry()
	if err := Register(g, testDifficulty); err != nil {
		t.Fatal(err)
	}
	return g
}

// newRec returns owner i's record of name registered at reg for life.
func newRec(t testing.TB, name string, i int, reg time.Time, life time.Duration) *Record {
	t.Helper()
	r, err := NewRecord(context.Background(), name, owner(i).Public(), reg, reg.Add(life), testDifficulty,
		AddressEntry(service(i)), TextEntry("hello"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signed returns r as owner i's DHT record with seq.
func signed(t testing.TB, r *Record, i int, seq uint64) *dht.Record {
	t.Helper()
	d, err := r.DHTRecord(testNetwork, owner(i), seq)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
