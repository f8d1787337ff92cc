package circuit

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// withBandwidth returns relays with bandwidth bw each.
func withBandwidth(rs []RelayInfo, bw uint32) []RelayInfo {
	for i := range rs {
		rs[i].Bandwidth = bw
	}
	return rs
}

func ptrsOf(rs []RelayInfo) []*RelayInfo {
	out := make([]*RelayInfo, len(rs))
	for i := range rs {
		out[i] = &rs[i]
	}
	return out
}

// countPicks draws n indexes from the weights of relays with a fixed seed.
func countPicks(relays []RelayInfo, n int) []int {
	cum := weights(ptrsOf(relays), nil)
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, len(relays))
	for range n {
		counts[pickWeighted(cum, r)]++
	}
	return counts
}

// A relay with ten times the bandwidth is chosen about ten times as often.
func TestWeightProportional(t *testing.T) {
	relays := withBandwidth(fakeRelays(20, 0), 100_000)
	relays[7].Bandwidth = 1_000_000
	counts := countPicks(relays, 200_000)
	others := 0
	for i, c := range counts {
		if i != 7 {
			others += c
		}
	}
	ratio := float64(counts[7]) / (float64(others) / 19)
	if ratio < 9 || ratio > 11 {
		t.Fatalf("a relay with 10x the bandwidth was chosen %.2fx as often", ratio)
	}
}

// A relay advertising far more than the others is capped at capFactor
// medians; a measurement caps what is advertised; a relay advertising
// nothing still gets the floor.
func TestWeightCapsAndFloor(t *testing.T) {
	relays := withBandwidth(fakeRelays(20, 0), 100_000)
	relays[3].Bandwidth = 4_000_000_000 // a liar
	relays[5].Bandwidth = 0
	relays[6].Measured = 10_000 // advertises 100 kB/s, measured at 10
	cum := weights(ptrsOf(relays), nil)
	w := func(i int) uint64 {
		if i == 0 {
			return cum[0]
		}
		return cum[i] - cum[i-1]
	}
	if got, want := w(3), uint64(capFactor*100_000); got != want {
		t.Fatalf("the liar's weight %d, want the cap %d", got, want)
	}
	if share := float64(w(3)) / float64(cum[len(cum)-1]); share > 0.4 {
		t.Fatalf("the liar gets %.0f%% of the weight", 100*share)
	}
	if w(5) != minWeight {
		t.Fatalf("a relay advertising 0 weighs %d, want the floor %d", w(5), minWeight)
	}
	if w(6) != 10_000 {
		t.Fatalf("a measured relay weighs %d, want its measurement 10000", w(6))
	}
	// A measurement above the advertised bandwidth does not raise it.
	relays[6].Measured = 1_000_000
	if cum := weights(ptrsOf(relays), nil); cum[6]-cum[5] != 100_000 {
		t.Fatalf("measured above advertised: weight %d, want 100000", cum[6]-cum[5])
	}
	if pickWeighted(nil, nil) != -1 {
		t.Fatal("pick from an empty table")
	}
}

// Through the Manager: exits are chosen by weight, and NoteMeasured caps a
// relay's weight.
func TestManagerWeightsExits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := withBandwidth(guardRelays(10, 10), 100_000)
		// Exits are not guard material here: a primary guard is never a
		// later hop, and the fast exit must stay free to end paths.
		for i := 10; i < 20; i++ {
			relays[i].Reliable = false
		}
		fast := &relays[15]
		fast.Bandwidth = 1_000_000
		// Two hops: guard and exit, so the exit's share is its weight's.
		m := newFakeManager(t, newFakeBuilder(), relays, ManagerConfig{PathLen: 2})
		m.SetGuard(relays[0].Hop)
		count := func() float64 {
			hits := 0
			const n = 4000
			for range n {
				p, _, err := m.choosePath(exitNeed{any: true})
				if err != nil {
					t.Fatal(err)
				}
				if p[1].Identity == fast.Hop.Identity {
					hits++
				}
			}
			return float64(hits) / n
		}
		// 10 exits, one with weight 10: 10/19 of the paths.
		if got := count(); got < 0.45 || got > 0.6 {
			t.Fatalf("the fast exit ends %.2f of the paths, want about 0.53", got)
		}
		m.NoteMeasured(fast.Hop.Identity, 100_000)
		if got := count(); got < 0.05 || got > 0.16 {
			t.Fatalf("after a measurement: the exit ends %.2f of the paths, want about 0.1", got)
		}
	})
}

// NoteMeasured remembers no more relays than are listed.
func TestNoteMeasuredBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(4, 2)
		m := newFakeManager(t, newFakeBuilder(), relays, ManagerConfig{})
		if _, _, err := m.choosePath(exitNeed{any: true}); err != nil {
			t.Fatal(err)
		}
		for i := range 1000 {
			var id keys.IdentityPublicKey
			id[0], id[1], id[2] = 0xee, byte(i), byte(i>>8)
			m.NoteMeasured(id, 5000)
		}
		m.NoteMeasured(relays[0].Hop.Identity, 5000) // a listed relay, after the flood
		m.mu.Lock()
		n := len(m.path.measured)
		m.mu.Unlock()
		if n > len(relays) {
			t.Fatalf("%d measurements kept for %d relays", n, len(relays))
		}
		m.choosePath(exitNeed{any: true}) // drops the unlisted ones
		m.mu.Lock()
		n = len(m.path.measured)
		m.mu.Unlock()
		if n != 0 {
			// The flood filled the map before the listed relay came: it was
			// refused, and the refresh dropped the flood.
			t.Logf("%d measurements kept", n)
		}
		m.NoteMeasured(relays[0].Hop.Identity, 5000)
		m.mu.Lock()
		_, ok := m.path.measured[relays[0].Hop.Identity]
		m.mu.Unlock()
		if !ok {
			t.Fatal("a listed relay's measurement was refused after the refresh")
		}
	})
}

// The links and accusations remembered are bounded; a legitimate failure
// is still handled once the bound is reached.
func TestBlameBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(4, 2)
		m := newFakeManager(t, newFakeBuilder(), relays, ManagerConfig{})
		m.mu.Lock()
		now := time.Now()
		for i := range 3 * maxBlameEntries {
			var a, b keys.IdentityPublicKey
			a[0], a[1], a[2] = 0xaa, byte(i), byte(i>>8)
			b[0], b[1], b[2] = 0xbb, byte(i), byte(i>>8)
			m.accuseLocked(a, b, now)
		}
		nl, na := len(m.path.links), len(m.path.accused)
		m.mu.Unlock()
		if nl > maxBlameEntries || na > maxBlameEntries {
			t.Fatalf("%d links, %d accusations remembered; bound %d", nl, na, maxBlameEntries)
		}
		time.Sleep(blameWindow + 2*maxDownTime)
		m.choosePath(exitNeed{any: true}) // forgets what expired
		m.mu.Lock()
		m.accuseLocked(relays[1].Hop.Identity, relays[4].Hop.Identity, time.Now())
		_, ok := m.path.links[linkKey{relays[1].Hop.Identity, relays[4].Hop.Identity}]
		m.mu.Unlock()
		if !ok {
			t.Fatal("a failure after the flood expired was not recorded")
		}
	})
}

// Relays that declare each other as family never share a path; a one-way
// declaration proves nothing.
func TestPathFamilyRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(4, 3)
		a, b, c := &relays[1], &relays[4], &relays[5] // a middle and two exits
		a.Family = []keys.NodeID{b.Hop.Identity.NodeID(), c.Hop.Identity.NodeID()}
		b.Family = []keys.NodeID{a.Hop.Identity.NodeID()}
		// c does not list a: a one-way claim.
		m := newFakeManager(t, newFakeBuilder(), relays, ManagerConfig{Guards: GuardParams{Primary: 1}})
		m.SetGuard(relays[0].Hop)
		withC := 0
		for range 500 {
			p, _, err := m.choosePath(exitNeed{any: true})
			if err != nil {
				t.Fatal(err)
			}
			if hasRelay(p, *a) && hasRelay(p, *b) {
				t.Fatal("two relays of one family share a path")
			}
			if hasRelay(p, *a) && hasRelay(p, *c) {
				withC++
			}
		}
		if withC == 0 {
			t.Fatal("a one-way family claim kept two relays apart")
		}
	})
}

func TestSameFamily(t *testing.T) {
	x, y := fakeRelay(1, nil), fakeRelay(2, exitpolicy.Default())
	if sameFamily(&x, &y) {
		t.Fatal("relays without families are family")
	}
	x.Family = []keys.NodeID{y.Hop.Identity.NodeID()}
	if sameFamily(&x, &y) || sameFamily(&y, &x) {
		t.Fatal("a one-way declaration made a family")
	}
	y.Family = []keys.NodeID{{1}, x.Hop.Identity.NodeID()}
	if !sameFamily(&x, &y) || !sameFamily(&y, &x) {
		t.Fatal("a mutual declaration is not a family")
	}
}

// BenchmarkChoosePath chooses paths among 5,000 relays, 1,000 of them
// exits, with a full guard sample.
func BenchmarkChoosePath(b *testing.B) {
	relays := make([]RelayInfo, 5000)
	for i := range relays {
		var id keys.IdentityPublicKey
		id[0], id[1], id[2] = 0xd4, byte(i), byte(i>>8)
		relays[i] = RelayInfo{
			Hop:       Hop{Identity: id, Addr: fmt.Sprintf("10.%d.%d.1:9001", i%250, i/250)},
			Bandwidth: uint32(50_000 + i*97%1_000_000),
			Reliable:  true,
			FirstSeen: time.Now().Add(-30 * 24 * time.Hour),
		}
		if i%5 == 0 {
			relays[i].Policy = exitpolicy.Default()
		}
	}
	m, err := NewManager(ManagerConfig{Builder: newFakeBuilder(), Relays: func() []RelayInfo { return relays }})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	need := exitNeed{port: 443}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.choosePath(need); err != nil {
			b.Fatal(err)
		}
	}
}
