package names

import (
	"bytes"
	"errors"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// ErrNotFound is returned by Resolve when no answer holds a valid record.
var ErrNotFound = errors.New("names: no valid record for the name")

// candidate is what Resolve knows of one owner.
type candidate struct {
	best     *dht.Record
	rec      *Record
	replicas int
}

// Resolve chooses the record of name among the answers of a name's
// replicas (spec/names.md §5): answers[i] holds the records replica i
// returned. Records of another type or key, or that verify refuses, are
// ignored; verify must check the DHT record completely (typically
// dht.Registry.Verify at the network and time, with Spec registered), so
// expired, forged and unworked records count for nothing. Each owner
// counts once per replica; the owner held by most replicas wins, ties
// going to the earliest Registered, then to the lowest owner key. Of the
// winner's records, the highest Seq (then the latest expiry) is returned,
// with Owner set. A minority of hostile replicas thus cannot take a name
// over; the caller bounds the number of answers.
func Resolve(name string, answers [][]*dht.Record, verify func(*dht.Record) error) (*Record, error) {
	c, err := CanonicalName(name)
	if err != nil {
		return nil, err
	}
	key := Key(c)
	cands := make(map[keys.IdentityPublicKey]*candidate)
	for _, replica := range answers {
		seen := make(map[keys.IdentityPublicKey]bool, 1)
		for _, r := range replica {
			if r == nil || r.Type != Type || r.Key != key || verify(r) != nil {
				continue
			}
			rec, err := FromDHT(r)
			if err != nil || rec.Name != c {
				continue
			}
			cd := cands[r.Owner]
			if cd == nil {
				cd = &candidate{best: r, rec: rec}
				cands[r.Owner] = cd
			} else if r.Seq > cd.best.Seq || (r.Seq == cd.best.Seq && r.Expires > cd.best.Expires) {
				cd.best, cd.rec = r, rec
			}
			if !seen[r.Owner] {
				seen[r.Owner] = true
				cd.replicas++
			}
		}
	}
	var win *candidate
	for _, cd := range cands {
		if win == nil || better(cd, win) {
			win = cd
		}
	}
	if win == nil {
		return nil, ErrNotFound
	}
	return win.rec, nil
}

// better reports whether a wins over b: more replicas, then the earlier
// registration, then the lower owner key.
func better(a, b *candidate) bool {
	if a.replicas != b.replicas {
		return a.replicas > b.replicas
	}
	if !a.rec.Registered.Equal(b.rec.Registered) {
		return a.rec.Registered.Before(b.rec.Registered)
	}
	return bytes.Compare(a.best.Owner[:], b.best.Owner[:]) < 0
}
