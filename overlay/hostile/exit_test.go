package hostile

import (
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/overlay"
)

// A target that stops reading: once its stream ends, the exit holds no
// goroutine for it (before the fix the exit's pump stayed blocked writing
// to the target for ever), and closing the exit returns promptly whatever
// its targets do (before the fix Close waited for those pumps).
func TestTargetStopsReading(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const exit, streams = 3, 8
			p := n.newPeer(t, "attacker", "14.0.9.1")
			ctx := ctxT(t)
			cc, err := p.build(ctx, hop(n.relays[1]), hop(n.relays[2]), hop(n.relays[exit]))
			if err != nil {
				t.Fatal(err)
			}
			base := goroutines()[relayLabel(exit)]
			open := func(k int) []*circuit.Stream {
				var sts []*circuit.Stream
				for i := 0; i < k; i++ {
					st, err := cc.OpenStream(ctx, n.target.addr)
					if err != nil {
						t.Fatal(err)
					}
					sts = append(sts, st)
					io.WriteString(st, "S\n")
					go func() {
						// Write until the window closes: the exit's write
						// to the target blocks.
						st.SetWriteDeadline(time.Now().Add(1500 * time.Millisecond))
						st.Write(make([]byte, 16<<20))
					}()
				}
				return sts
			}
			sinks := func() int {
				n.target.mu.Lock()
				defer n.target.mu.Unlock()
				return n.target.sinks
			}
			sts := open(streams)
			waitFor(t, 10*time.Second, "the target to stop reading", func() bool { return sinks() == streams })
			time.Sleep(1500 * time.Millisecond) // the exit's writes block
			held := goroutines()[relayLabel(exit)]
			for _, st := range sts {
				st.Close()
			}
			var after int
			deadline := time.Now().Add(5 * time.Second)
			for {
				after = goroutines()[relayLabel(exit)]
				if after <= base+2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("exit goroutines: %d before, %d with %d streams to targets that stopped reading, %d after the streams ended",
				base, held, streams, after)
			if after > base+2 {
				t.Errorf("%d streams to targets that stopped reading ended, and the exit still holds %d goroutines (%d before)", streams, after, base)
			}
			n.legit(t, 10*time.Second)

			// Streams still open when the exit closes.
			open(streams)
			waitFor(t, 10*time.Second, "the target to stop reading", func() bool { return sinks() == 2*streams })
			time.Sleep(300 * time.Millisecond)
			closed := make(chan struct{})
			start := time.Now()
			go func() {
				n.relays[exit].Close()
				close(closed)
			}()
			select {
			case <-closed:
				t.Logf("the exit closed in %v", time.Since(start).Round(time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Errorf("closing an exit whose targets stopped reading took more than 5 s")
				n.target.dropAll()
				<-closed
			}
			cc.Close()
		})
	}
}

// windowBytes is what an exit may send on one stream before the client
// acknowledges it: the stream window, full.
const windowBytes = circuit.StreamWindow * 3947

// A client that opens streams and never reads them, on a link it has
// stopped reading: the relay in front of it queues what the windows allow,
// but no more than its queue budget, and the legitimate client keeps
// working; it closes the link once its oldest cell waited StallTimeout,
// and frees everything. Before the fix a relay queued every window in full
// (16 circuits × 2 streams × 1 MiB here), was bounded only by 64 MiB per
// link, and kept the link for the 3-minute write timeout.
func TestStreamNeverReadsWindow(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			const victim, exit, circuits, perCircuit = 1, 3, 16, 2
			const stall = 2 * time.Second
			n := newNet(t, kind, netConfig{relay: func(i int, cfg *overlay.Config) {
				if i == victim {
					cfg.MemoryBudget = budgetCells
					cfg.StallTimeout = stall
				}
			}})
			a := n.newPeer(t, "attacker", "14.0.10.1")
			base := n.baseline(t, victim)
			ctx := ctxT(t)
			var ccs []*circuit.ClientCirc
			var sts []*circuit.Stream
			for i := 0; i < circuits; i++ {
				cc, err := a.build(ctx, hop(n.relays[victim]), hop(n.relays[exit]))
				if err != nil {
					t.Fatal(err)
				}
				ccs = append(ccs, cc)
				for j := 0; j < perCircuit; j++ {
					st, err := cc.OpenStream(ctx, n.target.addr)
					if err != nil {
						t.Fatal(err)
					}
					sts = append(sts, st)
				}
			}
			a.gate(n.relays[victim]).pause()
			paused := time.Now()
			for _, st := range sts {
				if _, err := io.WriteString(st, "D "+strconv.Itoa(windowBytes)+"\n"); err != nil {
					t.Fatal(err)
				}
			}
			// Wait until the queues stop growing.
			var during usage
			last := base.heap
			for i := 0; i < 50; i++ {
				time.Sleep(200 * time.Millisecond)
				during = n.usage(victim)
				if i > 3 && during.heap < last+(256<<10) {
					break
				}
				last = during.heap
			}
			dead := 0
			for _, cc := range ccs {
				select {
				case <-cc.Done():
					dead++
				default:
				}
			}
			t.Logf("baseline %v; %d unread streams on %d circuits: %v; %d circuits destroyed", base, len(sts), circuits, during, dead)
			// The exit's buffers (about 4 MiB here) plus the relay's queue
			// budget (8 MiB) and slack.
			if g := heapGrowth(base, during); g > 16<<20 {
				t.Errorf("%d unread streams grew the heap by %.1f MiB; want at most 16 MiB", len(sts), mib(g))
			}
			n.legit(t, 10*time.Second)
			// The relay closes the link that stopped reading, and with it
			// the attacker's circuits.
			n.closeClientCircuits()
			waitFor(t, stall+5*time.Second, "the relay to close the link that stopped reading", func() bool {
				return n.relays[victim].CircuitEnds() == 0
			})
			t.Logf("the relay closed the link %v after it stopped reading", time.Since(paused).Round(100*time.Millisecond))
			a.close()
			sts, ccs = nil, nil
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
