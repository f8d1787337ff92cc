package dht

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// maxRounds bounds the rounds of one lookup path, so peers that answer
// with endless fresh contacts cannot keep a lookup going.
const maxRounds = 32

// ErrNoContacts is returned by a lookup when the routing table is empty.
var ErrNoContacts = errors.New("dht: no contacts to start a lookup")

// ErrNotFound is returned by Get when no node returned a valid record.
var ErrNotFound = errors.New("dht: no record found")

// lookup is one iterative S/Kademlia lookup over d disjoint paths. Each
// path keeps its own candidate list and queries the closest candidates
// it has not queried, α at a time, until every candidate in its
// termination set (the k closest it knows, at most MaxPerSubnetInReplicas
// per /16) has answered or failed. A node is queried by at most one path:
// a path skips a candidate another path has claimed. Answers from one
// path never feed another, so an adversary on one path cannot steer the
// others.
type lookup struct {
	d      *DHT
	tr     Transport
	target Key
	value  bool   // FIND_VALUE rather than FIND_NODE
	typ    uint16 // record type of a FIND_VALUE

	mu         sync.Mutex // guards the following
	claimed    map[keys.NodeID]bool
	responders []Contact
	records    map[keys.IdentityPublicKey]*Record
	byReplica  bool        // also keep each responder's records apart
	replicas   [][]*Record // the verified records of each responder
}

type candState uint8

const (
	fresh   candState = iota
	queried           // answered
	failed            // no valid answer
	skipped           // claimed by another path
)

type cand struct {
	c  Contact
	st candState
}

type path struct {
	l     *lookup
	cands []*cand // nearest first
	seen  map[keys.NodeID]bool
}

func (d *DHT) newLookup(tr Transport, target Key, value bool, typ uint16) *lookup {
	return &lookup{
		d: d, tr: tr, target: target, value: value, typ: typ,
		claimed: map[keys.NodeID]bool{d.cfg.Self.ID: true},
		records: make(map[keys.IdentityPublicKey]*Record),
	}
}

// run runs the lookup and returns the nodes that answered, nearest first.
func (l *lookup) run(ctx context.Context) ([]Contact, error) {
	d := l.d
	d.stats.lookups.Add(1)
	seeds := d.table.closest(l.target, d.cfg.K)
	if len(seeds) == 0 {
		return nil, ErrNoContacts
	}
	paths := make([]*path, min(d.cfg.Disjoint, len(seeds)))
	for i := range paths {
		paths[i] = &path{l: l, seen: make(map[keys.NodeID]bool)}
	}
	for i, c := range seeds {
		paths[i%len(paths)].addCandidate(c)
	}
	hops := make([]int, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { hops[i] = p.run(ctx) })
	}
	wg.Wait()
	d.stats.hops.Add(uint64(slices.Max(hops)))
	l.mu.Lock()
	out := slices.Clone(l.responders)
	l.mu.Unlock()
	sortByDistance(out, l.target)
	if err := ctx.Err(); err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

func (p *path) addCandidate(c Contact) {
	if p.seen[c.ID] || c.ID == p.l.d.cfg.Self.ID {
		return
	}
	if resolve := p.l.d.cfg.Resolve; resolve != nil {
		addr, ok := resolve(c.ID)
		if !ok {
			return
		}
		c.Addr = addr
	}
	p.seen[c.ID] = true
	x := &cand{c: c}
	i, _ := slices.BinarySearchFunc(p.cands, x, func(a, b *cand) int {
		if closer(p.l.target, a.c.ID, b.c.ID) {
			return -1
		}
		return 1
	})
	p.cands = slices.Insert(p.cands, i, x)
}

// view returns the termination set: the k nearest candidates that have
// not failed or been skipped, with the replica subnet cap.
func (p *path) view() []*cand {
	d := p.l.d
	out := make([]*cand, 0, d.cfg.K)
	count := make(map[subnet]int)
	for _, c := range p.cands {
		if len(out) == d.cfg.K {
			break
		}
		if c.st == failed || c.st == skipped {
			continue
		}
		if n := d.cfg.MaxPerSubnetInReplicas; n > 0 {
			s := subnetOf(c.c.Addr, replicaV4Bits, replicaV6Bits)
			if count[s] >= n {
				continue
			}
			count[s]++
		}
		out = append(out, c)
	}
	return out
}

// run queries until the termination set is done and returns the rounds.
func (p *path) run(ctx context.Context) int {
	l := p.l
	rounds := 0
	for rounds < maxRounds && ctx.Err() == nil {
		var batch []*cand
		changed := false
		for _, c := range p.view() {
			if c.st != fresh || len(batch) == l.d.cfg.Alpha {
				continue
			}
			if l.claim(c.c.ID) {
				batch = append(batch, c)
			} else {
				c.st = skipped
				changed = true
			}
		}
		if len(batch) == 0 {
			if changed {
				continue
			}
			break
		}
		rounds++
		answers := make([]*Message, len(batch))
		var wg sync.WaitGroup
		for i, c := range batch {
			wg.Go(func() { answers[i] = l.query(ctx, c.c) })
		}
		wg.Wait()
		for i, c := range batch {
			a := answers[i]
			if a == nil {
				c.st = failed
				continue
			}
			c.st = queried
			for _, nc := range a.Contacts {
				p.addCandidate(nc)
			}
		}
	}
	return rounds
}

func (l *lookup) claim(id keys.NodeID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claimed[id] {
		return false
	}
	l.claimed[id] = true
	return true
}

// query asks c and records its answer; nil means it failed.
func (l *lookup) query(ctx context.Context, c Contact) *Message {
	d := l.d
	m := &Message{Kind: KindFindNode, Target: l.target}
	want := KindNodes
	if l.value {
		m.Kind, m.Type, want = KindFindValue, l.typ, KindValue
	}
	a, err := d.call(ctx, l.tr, c, m, want)
	if err != nil {
		return nil
	}
	now := d.cfg.Now()
	var good []*Record
	for _, r := range a.Records {
		if r.Type != l.typ || r.Key != l.target {
			d.stats.refuse(ReasonBadKey)
			continue
		}
		if err := d.verify(r, now); err != nil {
			d.stats.refuse(reasonOf(err))
			continue
		}
		good = append(good, r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.responders = append(l.responders, c)
	for _, r := range good {
		l.keep(r)
	}
	if l.byReplica && len(good) > 0 {
		l.replicas = append(l.replicas, good)
	}
	return a
}

// keep holds r if it is the best record of its owner so far. l.mu is held.
func (l *lookup) keep(r *Record) {
	if old, ok := l.records[r.Owner]; !ok || r.Seq > old.Seq {
		l.records[r.Owner] = r
	}
}
