package hostile

import (
	"fmt"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// A peer that sends DIR_GET and never reads the answer: the relay paces a
// directory answer by the link's queue instead of queueing the whole
// directory for every DIR_GET (before the fix, 4,000 DIR_GETs on one
// unread link queued 16,384 cells, 64 MiB, per link). The legitimate client
// keeps working, and closing the links frees everything.
func TestDirGetWithoutReading(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim, links, gets = 2, 2, 4000
			n.legit(t, 10*time.Second)
			base := n.baseline(t, victim)
			var rls []*rawLink
			for i := 0; i < links; i++ {
				a := n.newPeer(t, "attacker", fmt.Sprintf("14.0.1.%d", i+1))
				rl, err := a.raw(n.relays[victim])
				if err != nil {
					t.Fatal(err)
				}
				rl.gate.pause()
				rls = append(rls, rl)
			}
			for i := 0; i < gets; i++ {
				for _, rl := range rls {
					if err := rl.sendPaced(0, cell.CmdDirGet, nil); err != nil && !rl.isClosed() {
						t.Fatal(err)
					}
				}
			}
			for _, rl := range rls {
				rl.flushed(t)
			}
			during := n.usage(victim)
			t.Logf("baseline %v; %d unread links with %d DIR_GETs each: %v", base, links, gets, during)
			// 4 MiB for both links: an answer window queued each, and the
			// transport's buffers.
			if g := heapGrowth(base, during); g > 4<<20 {
				t.Errorf("unread DIR_GETs grew the heap by %.1f MiB (%d links); want at most 4 MiB", mib(g), links)
			}
			if during.goroutines > base.goroutines+2*links+8 {
				t.Errorf("relay goroutines %d → %d", base.goroutines, during.goroutines)
			}
			n.legit(t, 10*time.Second)
			for _, rl := range rls {
				rl.Close()
			}
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
