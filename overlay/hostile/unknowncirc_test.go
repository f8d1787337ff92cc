package hostile

import (
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
)

// Cells for circuits that do not exist: the relay answers at most once per
// circuit ID, and at a limited rate per link, instead of reflecting a
// DESTROY for every cell (before the fix: one DESTROY per cell, an
// attacker-driven stream as fast as it could send).
func TestUnknownCircuitCells(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim = 1
			base := n.baseline(t, victim)
			a := n.newPeer(t, "attacker", "14.0.4.1")
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			// The same unknown circuit, over and over.
			const same = 2000
			for i := 0; i < same; i++ {
				if err := rl.sendPaced(0x80001234, cell.CmdRelay, nil); err != nil {
					t.Fatal(err)
				}
			}
			rl.sync(t)
			if got := rl.byCmd[cell.CmdDestroy].Load(); got > 1 {
				t.Errorf("%d cells for one unknown circuit drew %d DESTROYs; want at most 1", same, got)
			}
			// A different unknown circuit each time.
			const distinct = 10000
			before := rl.byCmd[cell.CmdDestroy].Load()
			for i := 0; i < distinct; i++ {
				if err := rl.sendPaced(0x80100000|uint32(i), cell.CmdRelay, nil); err != nil {
					t.Fatal(err)
				}
			}
			rl.sync(t)
			elapsed := time.Since(start)
			got := rl.byCmd[cell.CmdDestroy].Load() - before
			t.Logf("%d cells on distinct unknown circuits in %v drew %d DESTROYs", distinct, elapsed.Round(time.Millisecond), got)
			// The DESTROY token bucket per link, with slack.
			limit := int64(circuit.DefaultDestroyReplyBurst + circuit.DefaultDestroyReplyRate*elapsed.Seconds()*1.2 + 2)
			if got > limit {
				t.Errorf("%d cells on distinct unknown circuits drew %d DESTROYs in %v; want at most %d", distinct, got, elapsed.Round(time.Millisecond), limit)
			}
			if rl.isClosed() {
				t.Fatalf("the relay closed the link: %v", *rl.closedWith.Load())
			}
			during := n.usage(victim)
			if g := heapGrowth(base, during); g > 8<<20 {
				t.Errorf("heap grew by %.1f MiB", mib(g))
			}
			n.legit(t, 10*time.Second)
			rl.Close()
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
