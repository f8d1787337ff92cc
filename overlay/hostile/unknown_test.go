package hostile

import (
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// Cells of commands the relay does not know, on circuit 0 and on circuits
// that do not exist, are dropped and counted (spec/cells.md §2): the link
// stays open, nothing is answered, nothing is held.
func TestUnknownCommands(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim = 1
			n.legit(t, 10*time.Second)
			base := n.baseline(t, victim)
			a := n.newPeer(t, "attacker", "14.0.0.1")
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				t.Fatal(err)
			}
			const cells = 20000
			for i := 0; i < cells; i++ {
				cmd := cell.Command(64 + i%192) // none defined: 10 and 11 are GOSSIP and DHT
				id := uint32(0)
				if i%2 == 1 {
					id = 0x80000000 | uint32(i)
				}
				if err := rl.sendPaced(id, cmd, nil); err != nil {
					t.Fatal(err)
				}
			}
			rl.sync(t)
			during := n.usage(victim)
			t.Logf("baseline %v; after %d unknown cells %v", base, cells, during)
			for c := range rl.byCmd {
				if got := rl.byCmd[c].Load(); got > 0 && cell.Command(c) != cell.CmdDirDesc && cell.Command(c) != cell.CmdDirDone {
					t.Errorf("the relay answered unknown commands with %d %v cells", got, cell.Command(c))
				}
			}
			if during.goroutines > base.goroutines+4 {
				t.Errorf("relay goroutines %d → %d", base.goroutines, during.goroutines)
			}
			if g := heapGrowth(base, during); g > 2<<20 {
				t.Errorf("heap grew by %.1f MiB", mib(g))
			}
			n.legit(t, 10*time.Second)
			rl.Close()
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
