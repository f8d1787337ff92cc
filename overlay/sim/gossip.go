package sim

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dir"
)

// GossipResult is what the gossip experiment measured.
type GossipResult struct {
	// Converged: every relay knew every relay after Rounds rounds.
	// Stalled: the experiment ended early, StallRounds rounds in a row
	// having taught less than 0.1% of the (relay, relay) pairs.
	Converged, Stalled bool
	Rounds             int
	// SimTime is Rounds × GossipInterval, the time the real network
	// would take; Wall and CPU are what the simulation took (the
	// process's CPU time, all threads).
	SimTime, Wall, CPU time.Duration
	// Coverage is, after each round, the fraction of (relay, relay)
	// pairs where the first knows the second; Complete the fraction of
	// relays that knew every relay.
	Coverage, Complete []float64
	// BytesSent and BytesRecv are, per relay, the GOSSIP cells it sent
	// and received (requests, answers and the descriptors it served or
	// learned) until the end of the experiment, cell.Size bytes each.
	BytesSent, BytesRecv Dist
	// HelloBytes is, per relay, the descriptor bytes its HELLOs carried
	// (one per link it made or took; not in BytesSent).
	HelloBytes Dist
	// Links is the links made, Syncs the Sync rounds run and SyncErrors
	// those that failed.
	Links, Syncs, SyncErrors int
	// Received is the descriptors received by Sync over all relays,
	// Refused those admission refused, SourceRefused those refused by the
	// per-source limit in particular (dir.AdmitStats.Source).
	Received, Refused, SourceRefused uint64
	// PerSource is the per-source limit that applied.
	PerSource int
	// HeapMiB is the Go heap in use when the experiment ended.
	HeapMiB float64
}

// gnode is one relay of the gossip experiment.
type gnode struct {
	idx   int
	r     *relay
	dir   *dir.Directory
	links map[int]*end  // by peer index: this relay's end of the link
	sent  atomic.Uint64 // GOSSIP bytes sent
	recv  atomic.Uint64 // GOSSIP bytes received
	hello atomic.Uint64 // HELLO descriptor bytes sent
}

// end is one relay's end of an in-memory link: what its directory calls
// Send on and sees as the Peer of the cells the other end sends. Send
// hands the cell to the other directory at once, on the caller's
// goroutine, so a Sync runs to completion inside the call.
type end struct {
	owner, peer *gnode
	other       *end
	src         string // the peer's IP: the link's Source
}

func (e *end) Send(c *cell.Cell) error {
	e.owner.sent.Add(cell.Size)
	e.peer.recv.Add(cell.Size)
	e.peer.dir.HandleCell(e.other, c)
	return nil
}

func (e *end) LinkQueueLen() int { return 0 }
func (e *end) Source() string    { return e.src }

type gossipSim struct {
	cfg   Config
	rng   *rand.Rand
	nodes []*gnode
	in    *interner
	byID  map[keys.NodeID]int
	now   atomic.Int64 // unix nanoseconds of the simulated clock

	linkMu sync.Mutex // guards links and every gnode.links
	links  int
}

// t0 is when the simulated relays publish their descriptors.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *gossipSim) clock() time.Time { return time.Unix(0, s.now.Load()) }

func runGossip(ctx context.Context, cfg Config) (*GossipResult, error) {
	start, cpu0 := time.Now(), cpuTime()
	rs, err := newRelays(cfg.Seed, 0, cfg.Nodes, t0, true)
	if err != nil {
		return nil, err
	}
	s := &gossipSim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6f55)), in: newInterner(rs)}
	s.now.Store(t0.Add(time.Minute).UnixNano())
	adm := dir.Admission{PerSource: cfg.PerSource}
	if cfg.PerSource < 0 {
		adm.PerSource = cfg.Nodes
	}
	res := &GossipResult{PerSource: adm.PerSource}
	if res.PerSource == 0 {
		res.PerSource = dir.DefaultPerSource
	}
	s.nodes = make([]*gnode, cfg.Nodes)
	s.byID = make(map[keys.NodeID]int, cfg.Nodes)
	for i, r := range rs {
		d := dir.New(dir.Config{
			Network:   Network,
			Admission: adm,
			// The real interval leaves 30 s between a relay's rounds, time
			// for the request bucket to refill (6 tokens; a round takes 1
			// to 4); the simulated rounds follow each other at once.
			Gossip: dir.GossipConfig{Interval: time.Nanosecond},
			Now:    s.clock,
			Parse:  s.in.parse,
		})
		d.Add(r.desc)
		s.byID[r.id] = i
		s.nodes[i] = &gnode{idx: i, r: r, dir: d, links: make(map[int]*end)}
	}
	defer func() {
		for _, n := range s.nodes {
			n.dir.Close()
		}
	}()
	// Every relay bootstraps from relay 0: it links to it (HELLOs both
	// ways), so its descriptor starts at itself and relay 0.
	for _, n := range s.nodes[1:] {
		s.link(n, s.nodes[0])
	}
	total := float64(cfg.Nodes) * float64(cfg.Nodes)
	prev, stall := s.known(), 0
	for round := 1; round <= cfg.MaxRounds && ctx.Err() == nil; round++ {
		s.now.Add(int64(GossipInterval))
		// Each relay picks its peers from what it knows when the round
		// starts; the syncs then run in a random order, on Workers
		// goroutines.
		order := s.rng.Perm(cfg.Nodes)
		picks := make([][]int, cfg.Nodes)
		for _, i := range order {
			picks[i] = s.pick(s.nodes[i])
		}
		var (
			next atomic.Int64
			wg   sync.WaitGroup
			mu   sync.Mutex
		)
		for range cfg.Workers {
			wg.Go(func() {
				var syncs, failed int
				var received, refused uint64
				for k := int(next.Add(1) - 1); k < len(order); k = int(next.Add(1) - 1) {
					n := s.nodes[order[k]]
					for _, j := range picks[n.idx] {
						r, err := n.dir.Sync(ctx, s.link(n, s.nodes[j]))
						syncs++
						if err != nil {
							failed++
						}
						received += uint64(r.Learned + r.Updated + r.Refused + r.Bad)
						refused += uint64(r.Refused)
					}
				}
				mu.Lock()
				res.Syncs += syncs
				res.SyncErrors += failed
				res.Received += received
				res.Refused += refused
				mu.Unlock()
			})
		}
		wg.Wait()
		known := s.known()
		complete := 0
		for _, n := range s.nodes {
			if n.dir.Len() == cfg.Nodes {
				complete++
			}
		}
		res.Rounds = round
		res.Coverage = append(res.Coverage, float64(known)/total)
		res.Complete = append(res.Complete, float64(complete)/float64(cfg.Nodes))
		cfg.Progress("  gossip round %d: %.2f%% of pairs known, %d/%d relays know all (%.1fs)",
			round, 100*float64(known)/total, complete, cfg.Nodes, time.Since(start).Seconds())
		if complete == cfg.Nodes {
			res.Converged = true
			break
		}
		// Stalled: a round that taught less than 0.1% of the pairs.
		if float64(known-prev) < total/1000 {
			if stall++; stall >= cfg.StallRounds {
				res.Stalled = true
				break
			}
		} else {
			stall = 0
		}
		prev = known
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.SimTime = time.Duration(res.Rounds) * GossipInterval
	res.Links = s.links
	sent := make([]float64, len(s.nodes))
	recv := make([]float64, len(s.nodes))
	hello := make([]float64, len(s.nodes))
	for i, n := range s.nodes {
		sent[i], recv[i], hello[i] = float64(n.sent.Load()), float64(n.recv.Load()), float64(n.hello.Load())
		res.SourceRefused += n.dir.Stats().Admit.Source
	}
	res.BytesSent, res.BytesRecv, res.HelloBytes = distOf(sent), distOf(recv), distOf(hello)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	res.Wall = time.Since(start)
	res.CPU = cpuTime() - cpu0
	return res, nil
}

// known returns how many (relay, relay) pairs the directories hold.
func (s *gossipSim) known() int {
	k := 0
	for _, n := range s.nodes {
		k += n.dir.Len()
	}
	return k
}

// link returns a's end of its link to b, making the link if there is
// none: each side then takes the other's HELLO descriptor as the Node's
// LinkUp does (AddFrom with the link's source, then Confirm).
func (s *gossipSim) link(a, b *gnode) *end {
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	if e := a.links[b.idx]; e != nil {
		return e
	}
	ea := &end{owner: a, peer: b, src: b.r.ip}
	eb := &end{owner: b, peer: a, src: a.r.ip}
	ea.other, eb.other = eb, ea
	a.links[b.idx], b.links[a.idx] = ea, eb
	s.links++
	hello(b, a)
	hello(a, b)
	return ea
}

// hello gives to the HELLO descriptor of from.
func hello(to, from *gnode) {
	from.hello.Add(uint64(len(from.r.raw)))
	if ok, _ := to.dir.AddFrom(from.r.desc, from.r.ip); ok || to.dir.Get(from.r.id) != nil {
		to.dir.Confirm(from.r.id)
	}
}

// pick returns up to Fanout random relays of n's directory other than n,
// as the Node's gossipRound picks them; uniform over what n knows, and
// reproducible for a seed (map order never decides).
func (s *gossipSim) pick(n *gnode) []int {
	want := s.cfg.Fanout
	if k := n.dir.Len(); k < len(s.nodes)/4 || k <= 4*want {
		return s.pickFromList(n, want)
	}
	var out []int
	for tries := 0; len(out) < want && tries < 64*want; tries++ {
		j := s.rng.IntN(len(s.nodes))
		if j == n.idx || slices.Contains(out, j) || n.dir.Get(s.nodes[j].r.id) == nil {
			continue
		}
		out = append(out, j)
	}
	if len(out) < want {
		return s.pickFromList(n, want)
	}
	return out
}

func (s *gossipSim) pickFromList(n *gnode, want int) []int {
	var idx []int
	for _, d := range n.dir.List() {
		if j, ok := s.byID[d.NodeID()]; ok && j != n.idx {
			idx = append(idx, j)
		}
	}
	slices.Sort(idx)
	for k := 0; k < want && k < len(idx); k++ {
		m := k + s.rng.IntN(len(idx)-k)
		idx[k], idx[m] = idx[m], idx[k]
	}
	return idx[:min(want, len(idx))]
}
