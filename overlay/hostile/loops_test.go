package hostile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
)

// A circuit cannot loop: a relay refuses to extend back to the relay the
// circuit came from (before the fix a circuit could pass through one relay
// six times, R1 → R2 → R1 → R2 …, multiplying its cost to the relays).
func TestCircuitLoops(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			r1, r2 := n.relays[1].Descriptor(), n.relays[2].Descriptor()
			a := n.newPeer(t, "attacker", "14.0.14.1")
			rl, err := a.raw(n.relays[1])
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rc := rl.circuit(0x80000001)
			if err := rc.create(ctx, r1); err != nil {
				t.Fatal(err)
			}
			if err := rc.extend(ctx, r2); err != nil {
				t.Fatal(err)
			}
			refused := n.relays[2].Stats().Circuits.ExtendRefused
			err = rc.extend(ctx, r1)
			var de *circuit.DestroyedError
			if !errors.As(err, &de) {
				t.Fatalf("EXTEND back to the previous relay: %v, want DESTROY", err)
			}
			// R2 refuses (reason 9); R1 passes a DESTROY from beyond on as
			// the fixed reason 8 (spec/circuits.md §5.3).
			if de.Reason != cell.DestroyDestroyed {
				t.Errorf("EXTEND back to the previous relay: DESTROY reason %d, want %d", de.Reason, cell.DestroyDestroyed)
			}
			if got := n.relays[2].Stats().Circuits.ExtendRefused; got != refused+1 {
				t.Errorf("the second relay refused %d EXTENDs, want 1", got-refused)
			}
		})
	}
}
