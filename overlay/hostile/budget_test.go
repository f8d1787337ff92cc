package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay"
)

// budgetCells is the memory budget the suite gives an attacked relay, in
// cells: 8 MiB.
const budgetCells = 2048

// Forward cells that are no DATA (DROP cells for a later hop) towards a
// next relay that stopped reading: the relay in between queues at most its
// per-circuit bound for each circuit and its memory budget in all,
// destroying the circuits with the oldest cells beyond it. Before the fix
// it queued 16,384 cells (64 MiB) on the link, then destroyed whichever
// circuit's cell came next.
func TestForwardQueueBudget(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			const victim, circuits, drops = 1, 64, 600
			n := newNet(t, kind, netConfig{relay: func(i int, cfg *overlay.Config) {
				if i == victim {
					cfg.MemoryBudget = budgetCells
				}
			}})
			evil := n.addEvilRelay(t, "16.0.0.1")
			a := n.newPeer(t, "attacker", "14.0.11.1")
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				t.Fatal(err)
			}
			base := n.baseline(t, victim)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var rcs []*rawCirc
			for i := 0; i < circuits; i++ {
				rc := rl.circuit(0x80000000 | uint32(i+1))
				if err := rc.create(ctx, n.relays[victim].Descriptor()); err != nil {
					t.Fatalf("circuit %d: CREATE: %v", i, err)
				}
				if err := rc.extend(ctx, evil.Descriptor()); err != nil {
					t.Fatalf("circuit %d: EXTEND: %v", i, err)
				}
				rcs = append(rcs, rc)
			}
			evil.tr.pause()
			for k := 0; k < drops; k++ {
				for _, rc := range rcs {
					if err := rc.sendTo(1, cell.RelayDrop, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			rl.flushed(t)
			during := n.usage(victim)
			t.Logf("baseline %v; %d circuits × %d DROP cells to a relay that stopped reading: %v; DESTROYs %v",
				base, circuits, drops, during, reasons(rl))
			// The budget (8 MiB) and slack for the transport's buffers.
			if g := heapGrowth(base, during); g > 16<<20 {
				t.Errorf("forward cells queued for a relay that stopped reading grew the heap by %.1f MiB; want at most 16 MiB", mib(g))
			}
			if rl.byCmd[cell.CmdDestroy].Load() == 0 {
				t.Errorf("no circuit was destroyed: the queues did not reach the budget")
			}
			n.legit(t, 10*time.Second)
			rl.Close()
			evil.Close()
			rcs = nil
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
