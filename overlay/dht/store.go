package dht

import (
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/ratelimit"
)

// StoreLimits bound what peers can make a node hold. Zero fields take the
// defaults in brackets.
type StoreLimits struct {
	MaxRecords      int     // records in total [65536]
	MaxBytes        int     // encoded bytes in total [64 MiB]
	MaxPerOwner     int     // records of one owner [256]
	MaxPerKey       int     // owners under one type and key [16]
	StoresPerMinute float64 // STOREs accepted per source per minute [60]
	StoreBurst      int     // STOREs a source may send at once [30]
	MaxSources      int     // sources whose STORE rate is tracked [4096]
}

// slot names one record: a type, key and owner hold one record, the one
// with the highest Seq.
type slot struct {
	typ uint16
	key Key
}

// store holds verified records within StoreLimits. Expired records are
// skipped on read and dropped by purge.
type store struct {
	lim StoreLimits

	mu       sync.Mutex // guards the following
	recs     map[slot]map[keys.IdentityPublicKey]*Record
	perOwner map[keys.IdentityPublicKey]int
	count    int
	bytes    int
	sources  map[keys.NodeID]*source
}

// source is the STORE rate state of one peer.
type source struct {
	bucket ratelimit.Bucket
	last   time.Time // last STORE
}

func newStore(lim StoreLimits) *store {
	return &store{
		lim:      lim,
		recs:     make(map[slot]map[keys.IdentityPublicKey]*Record),
		perOwner: make(map[keys.IdentityPublicKey]int),
		sources:  make(map[keys.NodeID]*source),
	}
}

// allow takes a STORE token of source at now. When MaxSources sources are
// tracked it forgets those whose bucket has refilled, and refuses a new
// source if none has.
func (s *store) allow(from keys.NodeID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rate := s.lim.StoresPerMinute / 60
	b, ok := s.sources[from]
	if !ok {
		if len(s.sources) >= s.lim.MaxSources {
			full := time.Duration(float64(s.lim.StoreBurst) / rate * float64(time.Second))
			for id, o := range s.sources {
				if now.Sub(o.last) >= full {
					delete(s.sources, id)
				}
			}
			if len(s.sources) >= s.lim.MaxSources {
				return false
			}
		}
		b = new(source)
		s.sources[from] = b
	}
	b.last = now
	return b.bucket.Take(now, rate, s.lim.StoreBurst)
}

// put stores r, already verified, as putAt does for a type that is not
// Exclusive.
func (s *store) put(r *Record) Reason { return s.putAt(r, time.Time{}, false) }

// putAt stores r, already verified, at now. It keeps the record with the
// higher Seq for a type, key and owner, and refuses when a limit would be
// passed. When exclusive (the type's TypeSpec.Exclusive) it first drops
// the expired records under the key and refuses r with ReasonTaken if
// another owner's record remains.
func (s *store) putAt(r *Record, now time.Time, exclusive bool) Reason {
	sl := slot{r.Type, r.Key}
	s.mu.Lock()
	defer s.mu.Unlock()
	owners := s.recs[sl]
	if exclusive {
		for o, old := range owners {
			if !old.ExpiresAt().After(now) {
				delete(owners, o)
				s.dropLocked(old)
			}
		}
		for o := range owners {
			if o != r.Owner {
				return ReasonTaken
			}
		}
	}
	if old, ok := owners[r.Owner]; ok {
		if old.Seq >= r.Seq {
			if old.Seq == r.Seq && old.Signature == r.Signature {
				return Stored // a replica refreshing what we hold
			}
			return ReasonStale
		}
		if s.bytes-old.Size()+r.Size() > s.lim.MaxBytes {
			return ReasonFull
		}
		s.bytes += r.Size() - old.Size()
		owners[r.Owner] = r
		return Stored
	}
	if s.count >= s.lim.MaxRecords || s.bytes+r.Size() > s.lim.MaxBytes ||
		s.perOwner[r.Owner] >= s.lim.MaxPerOwner || len(owners) >= s.lim.MaxPerKey {
		return ReasonFull
	}
	if owners == nil {
		owners = make(map[keys.IdentityPublicKey]*Record)
		s.recs[sl] = owners
	}
	owners[r.Owner] = r
	s.perOwner[r.Owner]++
	s.count++
	s.bytes += r.Size()
	return Stored
}

// get returns the unexpired records under typ and key.
func (s *store) get(typ uint16, key Key, now time.Time) []*Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Record
	for _, r := range s.recs[slot{typ, key}] {
		if r.ExpiresAt().After(now) {
			out = append(out, r)
		}
	}
	return out
}

// all returns every unexpired record.
func (s *store) all(now time.Time) []*Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Record, 0, s.count)
	for _, owners := range s.recs {
		for _, r := range owners {
			if r.ExpiresAt().After(now) {
				out = append(out, r)
			}
		}
	}
	return out
}

// purge drops expired records and returns how many it dropped.
func (s *store) purge(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sl, owners := range s.recs {
		for o, r := range owners {
			if !r.ExpiresAt().After(now) {
				delete(owners, o)
				s.dropLocked(r)
				n++
			}
		}
		if len(owners) == 0 {
			delete(s.recs, sl)
		}
	}
	return n
}

func (s *store) dropLocked(r *Record) {
	s.count--
	s.bytes -= r.Size()
	if s.perOwner[r.Owner]--; s.perOwner[r.Owner] <= 0 {
		delete(s.perOwner, r.Owner)
	}
}

// usage returns the number of records and bytes held.
func (s *store) usage() (records, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.bytes
}
