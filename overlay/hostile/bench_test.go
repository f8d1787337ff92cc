package hostile

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// quantile returns the q-quantile of ds (0.5: the median).
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkTTFBUnderCreateFlood measures a legitimate client's time to
// first byte on a new circuit (build three hops, BEGIN, one echoed byte)
// before and during a full-speed CREATE flood from one peer at the client's
// guard, which every circuit of the client crosses. It reports the
// medians and 90th percentiles, and the CREATEs the attacker sent, the
// relay accepted and refused per second.
func BenchmarkTTFBUnderCreateFlood(b *testing.B) {
	n := newNet(b, "mem", netConfig{})
	const victim = 0 // the client's guard
	msgs := createMsgs(b, n.relays[victim], 2000)
	a := n.newPeer(b, "attacker", "14.0.20.1")
	rl, err := a.raw(n.relays[victim])
	if err != nil {
		b.Fatal(err)
	}
	sample := func(limit time.Duration) time.Duration {
		d := n.legit(b, limit)
		n.closeClientCircuits()
		return d
	}
	sample(10 * time.Second) // warm up: links, pools
	var idle, busy []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idle = append(idle, sample(10*time.Second))
	}
	f := startFlood([]*rawLink{rl}, msgs)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	a0, r0 := f.replies()
	s0 := f.sent.Load()
	for i := 0; i < b.N; i++ {
		busy = append(busy, sample(60*time.Second))
	}
	elapsed := time.Since(start).Seconds()
	a1, r1 := f.replies()
	s1 := f.sent.Load()
	f.end()
	b.StopTimer()
	b.ReportMetric(ms(quantile(idle, 0.5)), "idle-ttfb-ms")
	b.ReportMetric(ms(quantile(idle, 0.9)), "idle-ttfb-p90-ms")
	b.ReportMetric(ms(quantile(busy, 0.5)), "flood-ttfb-ms")
	b.ReportMetric(ms(quantile(busy, 0.9)), "flood-ttfb-p90-ms")
	b.ReportMetric(float64(s1-s0)/elapsed, "flood-CREATE/s")
	b.ReportMetric(float64(a1-a0)/elapsed, "accepted/s")
	b.ReportMetric(float64(r1-r0)/elapsed, "refused/s")
}

var benchCircuits = flag.Int("hostile.circuits", 1000, "circuits BenchmarkQueuedCircuitsMemory fills")

// BenchmarkQueuedCircuitsMemory: a relay holds -hostile.circuits circuits
// (default 1,000; the figure is 10,000, about 20 GiB of windows) to
// a next relay that stopped reading, and the attacker sends a full circuit
// window (512 cells, 2 MiB) of DROP cells on each, one circuit after the
// other. The relay's queues would hold every window; its memory budget
// (the default, 256 MiB) bounds them, and the out-of-memory handler
// destroys the circuits holding the oldest cells. It reports the heap the
// idle circuits take, the peak heap growth while the windows are queued
// next to the budget, and how many circuits the handler destroyed.
func BenchmarkQueuedCircuitsMemory(b *testing.B) {
	const victim, window, perLink, evilRelays = 1, 512, 1000, 8
	circuits := *benchCircuits
	for i := 0; i < b.N; i++ {
		n := newNet(b, "mem", netConfig{relay: func(i int, cfg *overlay.Config) {
			if i == victim {
				cfg.StallTimeout = time.Hour // the default budget, and no stall
			}
		}})
		// Next relays that stop reading: several, since one link alone
		// queues at most link.DefaultMaxQueue cells (64 MiB).
		var evils []*evilRelay
		for k := 0; k < evilRelays; k++ {
			evils = append(evils, n.addEvilRelay(b, fmt.Sprintf("16.0.0.%d", k+1)))
		}
		base := n.baseline(b, victim)
		// A link per 1,000 circuits, each from its own address: the
		// relay's CREATE rate is per link.
		var rls []*rawLink
		for k := 0; k*perLink < circuits; k++ {
			a := n.newPeer(b, "attacker", fmt.Sprintf("14.0.21.%d", k+1))
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				b.Fatal(err)
			}
			rls = append(rls, rl)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		rcs := make([]*rawCirc, circuits)
		var wg sync.WaitGroup
		var buildErr atomic.Pointer[error]
		sem := make(chan struct{}, 8)
		var ids atomic.Uint32
		for i := range rcs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var err error
				for try := 0; try < 200; try++ {
					// The relays' CREATE rate limits refuse some: wait
					// and build again on a new circuit ID.
					rc := rls[i/perLink].circuit(0x80000000 | ids.Add(1))
					if err = rc.create(ctx, n.relays[victim].Descriptor()); err == nil {
						if err = rc.extend(ctx, evils[i%len(evils)].Descriptor()); err == nil {
							rcs[i] = rc
							return
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
				buildErr.CompareAndSwap(nil, &err)
			}()
		}
		wg.Wait()
		cancel()
		if err := buildErr.Load(); err != nil {
			b.Fatalf("building %d circuits: %v", circuits, *err)
		}
		held := heap()
		for _, e := range evils {
			e.tr.pause()
		}
		var peak uint64
		var fill sync.WaitGroup
		for k, rl := range rls {
			fill.Add(1)
			go func() {
				defer fill.Done()
				for _, rc := range rcs[k*perLink : min(len(rcs), (k+1)*perLink)] {
					for j := 0; j < window && !rc.dead.Load(); j++ {
						if rc.sendTo(1, cell.RelayDrop, nil) != nil {
							return
						}
					}
				}
				rl.flushed(b)
			}()
		}
		done := make(chan struct{})
		go func() { fill.Wait(); close(done) }()
	sample:
		for {
			peak = max(peak, heap())
			select {
			case <-done:
				break sample
			case <-time.After(200 * time.Millisecond):
			}
		}
		peak = max(peak, heap())
		destroyed := 0
		for _, rc := range rcs {
			if rc.dead.Load() {
				destroyed++
			}
		}
		b.ReportMetric(mib(held-min(held, base.heap)), "circuits-MiB")
		b.ReportMetric(mib(peak-min(peak, held)), "queued-peak-MiB")
		b.ReportMetric(float64(link.DefaultBudget)*cell.Size/(1<<20), "budget-MiB")
		b.ReportMetric(float64(circuits)*window*cell.Size/(1<<20), "demand-MiB")
		b.ReportMetric(float64(destroyed), "circuits-destroyed")
		for _, rl := range rls {
			rl.Close()
		}
		for _, e := range evils {
			e.Close()
		}
		n.close()
	}
}
