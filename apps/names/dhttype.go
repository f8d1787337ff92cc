package names

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// DHT constants of names (spec/dht.md §2.3, spec/names.md §4).
const (
	// Type is the DHT record type of name records.
	Type uint16 = 6
	// MaxTTL is the longest a registration lasts unless renewed.
	MaxTTL = 30 * 24 * time.Hour
)

// Spec is the DHT rule of Type at a network's difficulty: the value is a
// record whose name derives the key, whose expiry is the DHT record's and
// whose nonce is a proof of work of at least difficulty bits by the DHT
// record's owner. The type is Exclusive: first come, first served.
func Spec(difficulty int) dht.TypeSpec {
	return dht.TypeSpec{
		Name:      "name",
		MaxValue:  MaxRecordSize,
		MaxTTL:    MaxTTL,
		Exclusive: true,
		Validate: func(r *dht.Record) error {
			rec, err := FromDHT(r)
			if err != nil {
				return err
			}
			if !CheckPoW(rec.Name, r.Owner, rec.Registered, rec.Nonce, difficulty) {
				return errors.New("proof of work below the network's difficulty")
			}
			return nil
		},
	}
}

// Register adds Type at difficulty to reg. It refuses a difficulty
// outside 0..MaxDifficulty.
func Register(reg *dht.Registry, difficulty int) error {
	if difficulty < 0 || difficulty > MaxDifficulty {
		return fmt.Errorf("names: difficulty %d out of 0..%d", difficulty, MaxDifficulty)
	}
	if err := reg.Register(Type, Spec(difficulty)); err != nil {
		return fmt.Errorf("names: %w", err)
	}
	return nil
}

// FromDHT returns the name record r carries, with Owner set. It checks
// the type, the value, the key (Key of the record's name) and that the
// value's expiry is the record's; it checks neither the signature nor the
// proof of work (dht.Registry.Verify does, with Spec).
func FromDHT(r *dht.Record) (*Record, error) {
	if r.Type != Type {
		return nil, fmt.Errorf("names: record of type %d, want %d", r.Type, Type)
	}
	rec, err := Parse(r.Value)
	if err != nil {
		return nil, err
	}
	if Key(rec.Name) != r.Key {
		return nil, errors.New("names: key is not SHA-256(name context || name)")
	}
	if rec.Expires.Unix() != r.Expires {
		return nil, errors.New("names: value expiry is not the record's")
	}
	rec.Owner = r.Owner
	return rec, nil
}

// NewRecord returns a record of name (canonicalised) registered at
// registered, expiring at expires, with its proof of work for owner at
// difficulty. A renewal keeps Registered and Nonce and moves Expires.
func NewRecord(ctx context.Context, name string, owner keys.IdentityPublicKey, registered, expires time.Time, difficulty int, entries ...Entry) (*Record, error) {
	c, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	r := &Record{Name: c, Registered: time.Unix(registered.Unix(), 0), Expires: time.Unix(expires.Unix(), 0), Entries: entries, Owner: owner}
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.Nonce, err = Solve(ctx, c, owner, r.Registered, difficulty); err != nil {
		return nil, err
	}
	return r, nil
}

// DHTRecord returns r signed by owner for network as a DHT record of
// Type with sequence number seq (a renewal or update takes a higher one).
func (r *Record) DHTRecord(network string, owner *keys.IdentityPrivateKey, seq uint64) (*dht.Record, error) {
	v, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	d := &dht.Record{Type: Type, Key: Key(r.Name), Seq: seq, Expires: r.Expires.Unix(), Value: v}
	if err := d.Sign(network, owner); err != nil {
		return nil, err
	}
	return d, nil
}
