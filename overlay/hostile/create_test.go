package hostile

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
)

// createFloodTest floods relay 1 with CREATEs from links links, each from
// its own address, and checks that a legitimate client building through
// relay 1 still gets its circuits, that the relay admits only a bounded
// number of the attacker's circuits and runs a bounded number of
// goroutines, and that it frees everything once the links close.
func createFloodTest(t *testing.T, kind string, links, fresh int) {
	n := newNet(t, kind, netConfig{})
	const victim = 1
	path := []circuit.Hop{hop(n.relays[victim]), hop(n.relays[2]), hop(n.relays[3])}
	probe := n.newPeer(t, "probe", "13.0.0.2")
	idle := probeBuilds(t, probe, path, 2, 5*time.Second)
	n.legit(t, 10*time.Second)
	base := n.baseline(t, victim)
	msgs := createMsgs(t, n.relays[victim], fresh)
	var rls []*rawLink
	for i := 0; i < links; i++ {
		a := n.newPeer(t, "attacker", fmt.Sprintf("14.0.2.%d", i+1))
		rl, err := a.raw(n.relays[victim])
		if err != nil {
			t.Fatal(err)
		}
		rls = append(rls, rl)
	}
	baseG := runtime.NumGoroutine()
	sampler := samplePeak()
	start := time.Now()
	f := startFlood(rls, msgs)
	time.Sleep(200 * time.Millisecond) // the flood is in full swing
	busy := probeBuilds(t, probe, path, 2, 5*time.Second)
	legit := n.legit(t, 5*time.Second)
	f.end()
	elapsed := time.Since(start)
	peak := sampler.end()
	f.settle()
	during := n.usage(victim)
	accepted, refused := f.replies()
	t.Logf("%d links sent %d CREATEs (%d distinct) in %v: %d accepted, %d refused; goroutines %d → peak %d; relay %v",
		links, f.sent.Load(), fresh, elapsed.Round(time.Millisecond), accepted, refused, baseG, peak, during)
	t.Logf("legitimate build through the relay: %v idle, %v under the flood; client stream %v",
		idle.Round(time.Millisecond), busy.Round(time.Millisecond), legit.Round(time.Millisecond))
	// A relay admits a burst and then a steady rate per link; far fewer
	// than the attacker sent. Before the fix every CREATE that found a
	// place among 4,096 pending handshakes became a circuit.
	perLink := circuit.DefaultCreateBurst + circuit.DefaultCreateRate*elapsed.Seconds()
	if maxAccepted := int64(float64(links)*perLink*1.1) + 16; accepted > maxAccepted {
		t.Errorf("the relay accepted %d of %d CREATEs from %d links in %v; want at most %d",
			accepted, f.sent.Load(), links, elapsed.Round(time.Millisecond), maxAccepted)
	}
	// Pending handshakes wait in a queue, not on a goroutine each (before
	// the fix: one goroutine per pending CREATE, up to 4,096).
	if peak > baseG+64 {
		t.Errorf("the CREATE flood raised the process's goroutines from %d to %d", baseG, peak)
	}
	for _, rl := range rls {
		rl.Close()
	}
	n.waitFreed(t, victim, base, 2, 8<<20)
}

// A CREATE flood from one link: thousands of CREATEs per second with valid
// handshakes, most of them fresh.
func TestCreateFloodOneLink(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { createFloodTest(t, kind, 1, 800) })
	}
}

// A CREATE flood from many links, each from its own address.
func TestCreateFloodManyLinks(t *testing.T) {
	createFloodTest(t, "mem", 8, 800)
}

// One well-formed handshake message replayed on many circuit IDs makes at
// most one circuit (before the fix, every replay made one).
func TestCreateReplay(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim, replays = 1, 200
			base := n.baseline(t, victim)
			msg := createMsgs(t, n.relays[victim], 1)[0]
			a := n.newPeer(t, "attacker", "14.0.3.1")
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < replays; i++ {
				if err := rl.sendPaced(0x80000000|uint32(i+1), cell.CmdCreate, msg); err != nil {
					t.Fatal(err)
				}
				if i%20 == 19 {
					time.Sleep(50 * time.Millisecond) // stay under a CREATE rate limit
				}
			}
			f := &flood{links: []*rawLink{rl}}
			f.settle()
			accepted, refused := f.replies()
			t.Logf("%d replays of one CREATE: %d accepted, %d refused (reasons %v)", replays, accepted, refused, reasons(rl))
			if accepted > 1 {
				t.Errorf("one handshake message replayed %d times made %d circuits", replays, accepted)
			}
			n.legit(t, 10*time.Second)
			rl.Close()
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}
