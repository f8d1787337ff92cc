package hostile

import (
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/linkmgr"
)

// Many links from one address: the relay accepts at most its per-address
// limit of them at a time (before the fix it accepted all 1,000 an
// attacker opened, 18–21 KiB each), the legitimate client keeps working,
// and closing them frees everything.
func TestManyLinksOneAddress(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim, tries = 1, 400
			n.legit(t, 10*time.Second)
			base := n.baseline(t, victim)
			a := n.newPeer(t, "attacker", "14.0.5.1")
			var rls []*rawLink
			failed := 0
			for i := 0; i < tries; i++ {
				rl, err := a.raw(n.relays[victim])
				if err != nil {
					failed++
					continue
				}
				rls = append(rls, rl)
			}
			time.Sleep(200 * time.Millisecond) // links the relay refuses after the handshake close
			open := 0
			for _, rl := range rls {
				if !rl.isClosed() {
					open++
				}
			}
			during := n.usage(victim)
			t.Logf("baseline %v; %d links tried from one address: %d failed, %d still open; relay %v", base, tries, failed, open, during)
			const limit = linkmgr.DefaultMaxLinksPerIP
			if extra := during.links - base.links; extra > limit {
				t.Errorf("the relay holds %d links from one address; want at most %d", extra, limit)
			}
			if during.goroutines > base.goroutines+2*limit+8 {
				t.Errorf("relay goroutines %d → %d", base.goroutines, during.goroutines)
			}
			if g := heapGrowth(base, during); g > 4<<20 {
				t.Errorf("%d links from one address grew the heap by %.1f MiB; want at most 4 MiB", tries, mib(g))
			}
			n.legit(t, 10*time.Second)
			for _, rl := range rls {
				rl.Close()
			}
			rls = nil
			n.waitFreed(t, victim, base, 2, 2<<20)
		})
	}
}
