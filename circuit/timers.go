package circuit

import (
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// idleTicks is how many ticks of the idle timer a circuit may stay idle:
// the timer ticks every CircuitIdleTimeout/idleTicks, so an idle circuit is
// destroyed between 1 and 1.25 times CircuitIdleTimeout after its last
// cell.
const idleTicks = 4

// idleLoop runs the idle timer of a relay's circuits until the switch
// closes.
func (s *Switch) idleLoop() {
	defer s.wg.Done()
	tk := time.NewTicker(s.cfg.CircuitIdleTimeout / idleTicks)
	defer tk.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tk.C:
			s.expireIdle()
		}
	}
}

// expireIdle counts one tick on every circuit peers opened at this relay
// and destroys (reason 5) those idle for more than idleTicks ticks: no cell
// passed either way (relayCirc.touch resets the count).
func (s *Switch) expireIdle() {
	var idle []*relayCirc
	s.mu.Lock()
	for _, t := range s.chans {
		for _, ep := range t.circs {
			if pe, ok := ep.(prevEnd); ok && pe.c.idle.Add(1) > idleTicks {
				idle = append(idle, pe.c)
			}
		}
	}
	s.mu.Unlock()
	for _, rc := range idle {
		s.counters.idleExpired.Add(1)
		rc.destroy(cell.DestroyResource, true, true)
	}
}
