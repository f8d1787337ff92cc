package dht

import (
	"slices"
	"sync"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// maxReplacements is how many candidates wait behind a full bucket.
const maxReplacements = 8

// table is the Kademlia routing table: 256 buckets indexed by the length of
// the prefix a contact shares with self. A bucket holds at most k contacts,
// least recently seen first, and at most perSubnet of one IPv4 /24 (IPv6
// /48). A full bucket keeps its old contacts (they have proved to stay up)
// and queues newcomers as replacements, which take the place of a contact
// that fails.
type table struct {
	self      keys.NodeID
	k         int
	perSubnet int // 0: no subnet cap

	mu      sync.Mutex // guards buckets
	buckets [KeySize*8 + 1]bucket
}

type bucket struct {
	entries      []Contact // least recently seen first
	replacements []Contact // most recent last
}

func newTable(self keys.NodeID, k, perSubnet int) *table {
	return &table{self: self, k: k, perSubnet: perSubnet}
}

func (t *table) bucketOf(id keys.NodeID) *bucket {
	return &t.buckets[commonPrefix(t.self, id)]
}

// add records that c was seen alive. It reports whether c is now in the
// table (rather than refused or queued as a replacement).
func (t *table) add(c Contact) bool {
	if c.ID == t.self {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucketOf(c.ID)
	if i := indexOf(b.entries, c.ID); i >= 0 {
		if b.entries[i].Addr != c.Addr && !t.subnetRoom(b.entries, c, i) {
			return true // keep the old address rather than break the cap
		}
		b.entries = append(slices.Delete(b.entries, i, i+1), c)
		return true
	}
	if !t.subnetRoom(b.entries, c, -1) {
		return false
	}
	if len(b.entries) < t.k {
		b.entries = append(b.entries, c)
		return true
	}
	if i := indexOf(b.replacements, c.ID); i >= 0 {
		b.replacements = slices.Delete(b.replacements, i, i+1)
	}
	b.replacements = append(b.replacements, c)
	if len(b.replacements) > maxReplacements {
		b.replacements = slices.Delete(b.replacements, 0, 1)
	}
	return false
}

// subnetRoom reports whether c fits the subnet cap among es, not counting
// entry skip.
func (t *table) subnetRoom(es []Contact, c Contact, skip int) bool {
	if t.perSubnet <= 0 {
		return true
	}
	s := subnetOf(c.Addr, bucketV4Bits, bucketV6Bits)
	n := 0
	for i, e := range es {
		if i != skip && subnetOf(e.Addr, bucketV4Bits, bucketV6Bits) == s {
			n++
		}
	}
	return n < t.perSubnet
}

// failed removes id after a failed call, promoting the newest replacement
// that fits the subnet cap.
func (t *table) failed(id keys.NodeID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucketOf(id)
	if i := indexOf(b.replacements, id); i >= 0 {
		b.replacements = slices.Delete(b.replacements, i, i+1)
	}
	i := indexOf(b.entries, id)
	if i < 0 {
		return
	}
	b.entries = slices.Delete(b.entries, i, i+1)
	for j := len(b.replacements) - 1; j >= 0; j-- {
		if r := b.replacements[j]; t.subnetRoom(b.entries, r, -1) {
			b.entries = append(b.entries, r)
			b.replacements = slices.Delete(b.replacements, j, j+1)
			return
		}
	}
}

// stale returns, for every full bucket with replacements waiting, its
// least recently seen contact, which maintenance pings.
func (t *table) stale() []Contact {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Contact
	for i := range t.buckets {
		b := &t.buckets[i]
		if len(b.entries) >= t.k && len(b.replacements) > 0 {
			out = append(out, b.entries[0])
		}
	}
	return out
}

// closest returns up to n contacts nearest target.
func (t *table) closest(target Key, n int) []Contact {
	t.mu.Lock()
	all := make([]Contact, 0, t.sizeLocked())
	for i := range t.buckets {
		all = append(all, t.buckets[i].entries...)
	}
	t.mu.Unlock()
	sortByDistance(all, target)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

func (t *table) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sizeLocked()
}

func (t *table) sizeLocked() int {
	n := 0
	for i := range t.buckets {
		n += len(t.buckets[i].entries)
	}
	return n
}

// nonEmpty returns the indexes of buckets holding contacts.
func (t *table) nonEmpty() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for i := range t.buckets {
		if len(t.buckets[i].entries) > 0 {
			out = append(out, i)
		}
	}
	return out
}

func indexOf(cs []Contact, id keys.NodeID) int {
	return slices.IndexFunc(cs, func(c Contact) bool { return c.ID == id })
}

func sortByDistance(cs []Contact, target Key) {
	slices.SortFunc(cs, func(a, b Contact) int {
		switch {
		case closer(target, a.ID, b.ID):
			return -1
		case closer(target, b.ID, a.ID):
			return 1
		}
		return 0
	})
}

// diverse returns up to n of cs (sorted nearest first) keeping at most
// perSubnet of each IPv4 /16 (IPv6 /32); perSubnet 0 keeps all.
func diverse(cs []Contact, n, perSubnet int) []Contact {
	out := make([]Contact, 0, min(n, len(cs)))
	count := make(map[subnet]int)
	for _, c := range cs {
		if len(out) == n {
			break
		}
		if perSubnet > 0 {
			s := subnetOf(c.Addr, replicaV4Bits, replicaV6Bits)
			if count[s] >= perSubnet {
				continue
			}
			count[s]++
		}
		out = append(out, c)
	}
	return out
}
