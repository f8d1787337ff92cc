package sim

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// A small network converges, every relay learning every relay, and the
// DHT finds the records after 30% churn.
func TestSmallNetwork(t *testing.T) {
	const n = 50
	r, err := Run(context.Background(), Config{Nodes: n, Records: 40, Lookups: 200, Seed: 7, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	g := &r.Gossip
	if !g.Converged || g.Stalled || g.Coverage[len(g.Coverage)-1] != 1 || g.Complete[len(g.Complete)-1] != 1 {
		t.Fatalf("not converged: %+v", g)
	}
	if g.Rounds < 1 || g.Rounds > 10 || g.SimTime != GossipInterval*timeOf(g.Rounds) {
		t.Errorf("%d rounds, %s simulated", g.Rounds, g.SimTime)
	}
	// Every relay but 0 started knowing itself and relay 0, so it
	// received at least the n-2 others, one cell each, plus the SUMMARY.
	if min := float64((n - 1) * cell.Size); g.BytesRecv.Max < g.BytesRecv.P50 || g.BytesRecv.P50 < min {
		t.Errorf("bytes received per relay %+v, want at least %v", g.BytesRecv, min)
	}
	if g.BytesSent.Mean != g.BytesRecv.Mean || g.SyncErrors != 0 || g.Refused != 0 {
		t.Errorf("sent %+v, received %+v, %d sync errors, %d refused", g.BytesSent, g.BytesRecv, g.SyncErrors, g.Refused)
	}
	d := &r.DHT
	if d.Left != 15 || d.Joined != 15 || d.Live != n || d.Lookups != 200 {
		t.Errorf("churn %d/%d, %d live, %d lookups", d.Left, d.Joined, d.Live, d.Lookups)
	}
	if d.Success < 0.99 || d.PutFailed != 0 || d.Replicas.P50 != 20 {
		t.Errorf("success %.3f, %d puts failed, replicas %+v", d.Success, d.PutFailed, d.Replicas)
	}
	if d.Hops.Mean < 1 || d.Hops.Max > 32 || d.Requests.Mean < d.Hops.Mean || d.MaintainRequests == 0 {
		t.Errorf("hops %+v, requests %+v, maintenance %d", d.Hops, d.Requests, d.MaintainRequests)
	}
	if want := d.Hops.Mean * 50; d.ModelMs.Mean < want-1e-6 || d.ModelMs.Mean > want+1e-6 {
		t.Errorf("modelled latency %v ms, want hops × 50 ms = %v", d.ModelMs.Mean, want)
	}
	var out strings.Builder
	WriteReport(&out, Config{Nodes: n}, r)
	for _, s := range []string{"N = 50 relays", "converged                      yes", "lookups found", "latency, model (hops × 50ms)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

func timeOf(rounds int) time.Duration { return time.Duration(rounds) }

// A network of more relays than one source may introduce unconfirmed (256)
// still converges when every relay bootstraps from one relay: round 1
// teaches each relay 256 of relay 0's list, and every later round with
// another relay confirms relays it lists (freeing relay 0's quota) and
// brings up to 256 new ones. Without the limit it converges at once.
func TestGossipConvergesPastSourceLimit(t *testing.T) {
	const n = 300
	limited, err := Run(context.Background(), Config{Nodes: n, Lookups: -1, MaxRounds: 12, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	g := &limited.Gossip
	if !g.Converged || g.PerSource != 256 || g.Rounds < 2 {
		t.Fatalf("limited: %+v", g)
	}
	if c := g.Coverage[0]; c < 258.0/n || c > 0.95 {
		t.Errorf("coverage after round 1: %.3f", c)
	}
	free, err := Run(context.Background(), Config{Nodes: n, Lookups: -1, PerSource: -1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !free.Gossip.Converged || free.Gossip.SourceRefused != 0 || free.Gossip.Rounds > g.Rounds {
		t.Errorf("without the limit: %+v", free.Gossip)
	}
}

// A fixed seed gives the same gossip run.
func TestDeterministic(t *testing.T) {
	cfg := Config{Nodes: 40, Lookups: -1, Seed: 11, Fanout: 3}
	a, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Gossip.Rounds != b.Gossip.Rounds || !slices.Equal(a.Gossip.Coverage, b.Gossip.Coverage) ||
		a.Gossip.BytesSent != b.Gossip.BytesSent || a.Gossip.Links != b.Gossip.Links || a.Gossip.Syncs != b.Gossip.Syncs {
		t.Errorf("two runs differ:\n%+v\n%+v", a.Gossip, b.Gossip)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Run(context.Background(), Config{Nodes: 1}); !errors.Is(err, ErrNodes) {
		t.Errorf("1 node: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Config{Nodes: 10}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestDist(t *testing.T) {
	xs := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	d := distOf(xs)
	if d != (Dist{Mean: 50.5, P50: 50, P99: 99, Max: 100}) {
		t.Errorf("%+v", d)
	}
	if distOf(nil) != (Dist{}) {
		t.Error("empty sample")
	}
}

// WriteGrowth prints a row per run and the ratio to the previous one.
func TestWriteGrowth(t *testing.T) {
	rs := []*Result{
		{Nodes: 100, Gossip: GossipResult{Rounds: 2, Coverage: []float64{1}, BytesRecv: Dist{Mean: 1e6}}, DHT: DHTResult{Hops: Dist{Mean: 2}}},
		{Nodes: 1000, Gossip: GossipResult{Rounds: 4, Coverage: []float64{1}, BytesRecv: Dist{Mean: 1e7}}, DHT: DHTResult{Hops: Dist{Mean: 3}}},
	}
	var out strings.Builder
	WriteGrowth(&out, rs)
	for _, s := range []string{"×10.0 N", "×2.00", "×10.00", "×1.50", "10.00 MB"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("growth lacks %q:\n%s", s, out.String())
		}
	}
}
