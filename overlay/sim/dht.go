package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// DHTResult is what the DHT experiment measured.
type DHTResult struct {
	// Records were Put; Replicas is, per Put, the nodes that stored it;
	// PutFailed the Puts no node stored.
	Records   int
	Replicas  Dist
	PutFailed int
	// Left and Joined are the relays replaced by churn; Live the nodes
	// the lookups ran on.
	Left, Joined, Live int
	// MaintainRequests are the requests of the one Maintain round every
	// live node ran after the churn (refresh, republish, replicate).
	MaintainRequests uint64
	// StoresRate counts STOREs refused for their source's rate, Refused
	// every other refusal (store and fetch), over all nodes and phases.
	StoresRate, Refused uint64
	// Lookups is the Gets run, Found those that returned the record.
	Lookups, Found int
	Success        float64 // Found / Lookups
	// Hops is the rounds of each Get's longest lookup path; Requests
	// and Bytes its requests and request+answer bytes.
	Hops, Requests, Bytes Dist
	// WallMs is each Get's in-process wall-clock time; ModelMs its
	// modelled latency, Hops × RTT: a path sends Alpha requests at once
	// and waits for them (one round trip) before the next round, and the
	// paths run in parallel, so a Get takes its longest path's rounds.
	WallMs, ModelMs Dist
	RTT             time.Duration
	// Table is the routing-table size of the live nodes at the end.
	Table Dist
	// Wall and CPU are the experiment's wall-clock and CPU time.
	Wall, CPU time.Duration
}

// far keeps the DHT's own tickers from ever firing: the simulation runs
// the periodic jobs itself (Maintain).
const far = 1000 * time.Hour

type dhtSim struct {
	cfg   Config
	rng   *rand.Rand
	rs    []*relay
	net   *dht.MemNetwork
	nodes []*dht.DHT // by relay number; nil before it joins
	addr  map[keys.NodeID]string
	now   atomic.Int64
}

func (s *dhtSim) clock() time.Time { return time.Unix(0, s.now.Load()) }

// resolve is the directory's view: every relay ever started, departed
// ones included (their descriptors stay fresh for a day).
func (s *dhtSim) resolve(id keys.NodeID) (string, bool) {
	a, ok := s.addr[id]
	return a, ok
}

func (s *dhtSim) contact(i int) dht.Contact { return dht.Contact{ID: s.rs[i].id, Addr: s.rs[i].addr} }

func (s *dhtSim) start(i int) error {
	d, err := s.net.NewDHT(dht.Config{
		Self: s.contact(i), Network: Network, Server: true, Now: s.clock, Resolve: s.resolve,
		RefreshInterval: far, RepublishInterval: far, ReplicateInterval: far, PurgeInterval: far,
	})
	if err != nil {
		return err
	}
	s.nodes[i] = d
	return nil
}

// seed gives each node in idx the contacts of relays in from, in an
// order of its own, as the Node's seedDHT gives it its directory; two
// workers, each node's order from the seed.
func (s *dhtSim) seed(idx, from []int) {
	var wg sync.WaitGroup
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(idx); k += workers {
				i := idx[k]
				rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)))
				order := append([]int(nil), from...)
				rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
				for _, j := range order {
					if j != i {
						s.nodes[i].AddContact(s.contact(j))
					}
				}
			}
		})
	}
	wg.Wait()
}

func runDHT(ctx context.Context, cfg Config) (*DHTResult, error) {
	start, cpu0 := time.Now(), cpuTime()
	n := cfg.Nodes
	churn := int(math.Round(cfg.Churn * float64(n)))
	rs, err := newRelays(cfg.Seed, 0, n+churn, t0, false)
	if err != nil {
		return nil, err
	}
	s := &dhtSim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0xd47)), rs: rs, net: dht.NewMemNetwork(),
		nodes: make([]*dht.DHT, n+churn), addr: make(map[keys.NodeID]string, n+churn)}
	s.now.Store(t0.Add(time.Minute).UnixNano())
	for _, r := range rs {
		s.addr[r.id] = r.addr
	}
	defer func() {
		for _, d := range s.nodes {
			if d != nil {
				d.Close()
			}
		}
	}()
	live := make([]int, n)
	for i := range n {
		live[i] = i
		if err := s.start(i); err != nil {
			return nil, err
		}
	}
	s.seed(live, live)
	cfg.Progress("  dht: %d nodes seeded (%.1fs)", n, time.Since(start).Seconds())

	res := &DHTResult{Records: cfg.Records, RTT: cfg.RTT}
	recs := make([]*dht.Record, cfg.Records)
	replicas := make([]float64, 0, cfg.Records)
	for m := range recs {
		i := live[s.rng.IntN(len(live))]
		r, err := dht.NewSigned(Network, rs[i].keys, fmt.Sprintf("sim-%d", m), []byte("a record of the simulation"), 1, s.clock().Add(24*time.Hour))
		if err != nil {
			return nil, err
		}
		recs[m] = r
		stored, err := s.nodes[i].Put(ctx, r)
		if err != nil {
			res.PutFailed++
		}
		replicas = append(replicas, float64(stored))
	}
	res.Replicas = distOf(replicas)
	cfg.Progress("  dht: %d records put (%.1fs)", cfg.Records, time.Since(start).Seconds())

	// Churn: relays leave, as many new ones join with the directory as
	// their contacts, and the others' directories learn the newcomers.
	s.rng.Shuffle(len(live), func(a, b int) { live[a], live[b] = live[b], live[a] })
	for _, i := range live[:churn] {
		s.net.Detach(rs[i].id)
		s.nodes[i].Close()
	}
	stay := live[churn:]
	var joined, everyone []int
	for i := range n + churn {
		everyone = append(everyone, i)
		if i >= n {
			joined = append(joined, i)
		}
	}
	for _, i := range joined {
		if err := s.start(i); err != nil {
			return nil, err
		}
	}
	s.seed(joined, everyone)
	s.seed(stay, joined)
	live = append(append([]int(nil), stay...), joined...)
	res.Left, res.Joined, res.Live = churn, churn, len(live)
	cfg.Progress("  dht: %d left, %d joined (%.1fs)", churn, churn, time.Since(start).Seconds())

	// One hour later (the republish and replicate interval), every live
	// node runs its periodic jobs once.
	s.now.Add(int64(time.Hour))
	m0, _ := s.net.Traffic()
	for _, k := range s.rng.Perm(len(live)) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.nodes[live[k]].Maintain(ctx)
	}
	m1, _ := s.net.Traffic()
	res.MaintainRequests = (m1 - m0) / 2
	cfg.Progress("  dht: maintenance round done (%.1fs)", time.Since(start).Seconds())

	var hops, reqs, bytes, wall, model []float64
	for range cfg.Lookups {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d := s.nodes[live[s.rng.IntN(len(live))]]
		r := recs[s.rng.IntN(len(recs))]
		h0 := d.Stats().Hops
		msgs0, b0 := s.net.Traffic()
		t := time.Now()
		got, err := d.Get(ctx, dht.TypeSigned, r.Key)
		el := time.Since(t)
		msgs1, b1 := s.net.Traffic()
		h := float64(d.Stats().Hops - h0)
		res.Lookups++
		if err == nil && holds(got, r) {
			res.Found++
		}
		hops = append(hops, h)
		reqs = append(reqs, float64(msgs1-msgs0)/2)
		bytes = append(bytes, float64(b1-b0))
		wall = append(wall, float64(el)/float64(time.Millisecond))
		model = append(model, h*float64(cfg.RTT)/float64(time.Millisecond))
	}
	if res.Lookups > 0 {
		res.Success = float64(res.Found) / float64(res.Lookups)
	}
	res.Hops, res.Requests, res.Bytes = distOf(hops), distOf(reqs), distOf(bytes)
	res.WallMs, res.ModelMs = distOf(wall), distOf(model)
	var table []float64
	for _, i := range live {
		table = append(table, float64(s.nodes[i].TableSize()))
	}
	res.Table = distOf(table)
	for _, d := range s.nodes {
		if d == nil {
			continue
		}
		st := d.Stats()
		for reason, c := range st.Refused {
			switch dht.Reason(reason) {
			case dht.Stored:
			case dht.ReasonRate:
				res.StoresRate += c
			default:
				res.Refused += c
			}
		}
	}
	res.Wall, res.CPU = time.Since(start), cpuTime()-cpu0
	cfg.Progress("  dht: %d lookups done (%.1fs)", res.Lookups, res.Wall.Seconds())
	return res, nil
}

// holds reports whether rs has r (same owner and Seq).
func holds(rs []*dht.Record, r *dht.Record) bool {
	for _, x := range rs {
		if x.Owner == r.Owner && x.Seq >= r.Seq {
			return true
		}
	}
	return false
}
