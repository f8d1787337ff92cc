package hostile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
)

// A DESTROY reason chosen by one hop never reaches another: a relay passes
// on a DESTROY it received as the fixed reason DESTROYED, towards the
// client and towards the next hop, so colluding hops cannot signal each
// other through it (before the fix the reason byte went through
// unchanged, 256 values per cell).
func TestDestroyReasonIsFixed(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim = 1
			r := n.relays[victim]
			fake := n.addRawRelay(t, "18.0.0.1", r)
			a := n.newPeer(t, "attacker", "14.0.13.1")
			rl, err := a.raw(r)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// The next hop refuses CREATE with a reason of its choice.
			fake.refuse = 0x42
			rc := rl.circuit(0x80000001)
			if err := rc.create(ctx, r.Descriptor()); err != nil {
				t.Fatal(err)
			}
			err = rc.extend(ctx, fake.desc)
			var de *circuit.DestroyedError
			if !errors.As(err, &de) {
				t.Fatalf("EXTEND to a next hop that refuses: %v, want DESTROY", err)
			}
			if de.Reason != cell.DestroyDestroyed {
				t.Errorf("the next hop's DESTROY reason 0x42 reached the client as %#x; want %d (DESTROYED)", de.Reason, cell.DestroyDestroyed)
			}

			// The client destroys a circuit with a reason of its choice.
			fake.refuse = 0
			rc = rl.circuit(0x80000002)
			if err := rc.create(ctx, r.Descriptor()); err != nil {
				t.Fatal(err)
			}
			if err := rc.extend(ctx, fake.desc); err != nil {
				t.Fatalf("EXTEND to the attacker's relay: %v", err)
			}
			d := cell.New(rc.id, cell.CmdDestroy)
			d.Body()[0] = 0x55
			if err := rl.Send(d); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the DESTROY to reach the next hop", func() bool {
				total := int64(0)
				for i := range fake.destroys {
					total += fake.destroys[i].Load()
				}
				return total > 0
			})
			for reason := range fake.destroys {
				if got := fake.destroys[reason].Load(); got > 0 && byte(reason) != cell.DestroyDestroyed {
					t.Errorf("the client's DESTROY reached the next hop with reason %#x; want %d (DESTROYED)", reason, cell.DestroyDestroyed)
				}
			}
			n.legit(t, 10*time.Second)
		})
	}
}
