package hostile

import (
	"fmt"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/link"
)

// Who may put descriptors into a relay's directory (spec/cells.md §2.4,
// spec/descriptor.md §4): not a peer pushing DIR_DESC cells nobody asked
// for, and not a HELLO descriptor naming an address the link does not
// come from. Before the fix both were stored, from anyone, without limit,
// so one client could fill a relay's directory (and with it every DIR_GET
// answer) with relays that do not exist, or make relays dial any address.
func TestDirectoryPoisoning(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim, pushed = 2, 200
			r := n.relays[victim]
			network := r.Descriptor().Network
			before := len(r.Relays())
			a := n.newPeer(t, "attacker", "14.0.12.1")
			rl, err := a.raw(r)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < pushed; i++ {
				_, d := fakeDescriptor(t, network, fmt.Sprintf("mem://17.0.%d.%d:7000", i/250, i%250+1))
				if err := rl.sendPaced(0, cell.CmdDirDesc, d); err != nil {
					t.Fatal(err)
				}
			}
			rl.sync(t)
			if got := len(r.Relays()) - before; got > 0 {
				t.Errorf("%d DIR_DESC cells nobody asked for added %d relays to the directory", pushed, got)
			}
			// HELLO descriptors naming an address the link does not
			// come from: a victim's, a private one, another host's.
			before = len(r.Relays())
			scheme := "tcp"
			if kind == "mem" {
				scheme = "mem"
			}
			for _, addr := range []string{"17.1.0.1:7000", "10.9.9.9:7000", memClientIP + ":80", "8.8.8.8:53"} {
				k, d := fakeDescriptor(t, network, scheme+"://"+addr)
				hl, err := a.rawTo(n.relayAddr(r), r.Descriptor().Link, &link.Config{Network: network, Static: k.Link, Hello: d})
				if err != nil {
					t.Fatalf("link with a HELLO descriptor at %s: %v", addr, err)
				}
				hl.sync(t)
				hl.Close()
			}
			if got := len(r.Relays()) - before; got > 0 {
				t.Errorf("HELLO descriptors at addresses the links did not come from added %d relays to the directory", got)
			}
			n.legit(t, 10*time.Second)
		})
	}
}
