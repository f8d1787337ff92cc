package hostile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
)

// EXTEND to addresses that are no relay's, sent by a client written from
// spec/ alone with its own encoder: loopback, private and link-local
// addresses, the relay's own host and its own key, a relay's key at a
// loopback port, and host forms the relay must refuse (":PORT",
// "0.0.0.0:PORT"). The relay dials none of them (before the fix it
// connected to every one and sent its link preamble, and DESTROY's timing
// told a closed port from an open and silent one), and refuses each at
// once.
func TestExtendToNonRelays(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			const victim = 1
			base := n.baseline(t, victim)
			a := n.newPeer(t, "attacker", "14.0.6.1")
			rl, err := a.raw(n.relays[victim])
			if err != nil {
				t.Fatal(err)
			}
			type try struct {
				name string
				hop  circuit.Hop
				sink *sink
			}
			var tries []try
			add := func(name string, s *sink, addr string, real bool) {
				h := fakeHop(t, addr)
				if real {
					h = descHop(n.relays[2].Descriptor(), addr)
				}
				tries = append(tries, try{name, h, s})
			}
			if kind == "mem" {
				for _, ip := range []string{"127.0.0.1", "10.9.9.9", "192.168.1.1", "169.254.1.1", "100.64.0.1", "172.16.0.1"} {
					s := n.newSink(t, ip, "7000")
					add("no relay at "+ip, s, s.addr, false)
					add("a relay's key at "+ip, s, s.addr, true)
				}
				s := n.newSink(t, memRelayIP(victim), "7001")
				add("the relay's own host", s, s.addr, false)
				add("empty host", s, "mem://:7001", false)
			} else {
				s := n.newSink(t, "", "")
				add("no relay at a loopback port", s, s.addr, false)
				add("a relay's key at a loopback port", s, s.addr, true)
				add("empty host", s, "tcp://:"+s.port(), false)
				add("empty host, no scheme", s, ":"+s.port(), false)
				add("unspecified host", s, "tcp://0.0.0.0:"+s.port(), false)
				add("a relay's key, empty host", s, "tcp://:"+s.port(), true)
			}
			own := n.relays[victim].Descriptor()
			tries = append(tries, try{"the relay itself", descHop(own, own.Addrs[0]), nil})
			for i, tr := range tries {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				rc := rl.circuit(0x80000000 | uint32(i+1))
				if err := rc.create(ctx, own); err != nil {
					t.Fatalf("CREATE: %v", err)
				}
				_, hs, err := onionhs.ClientStart(nil, own.Network, onionhs.RelayKeys{Onion: tr.hop.Onion, KEM: tr.hop.KEM})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = rc.extendRaw(ctx, extendBody(tr.hop.Identity, tr.hop.Link, tr.hop.Addr, hs))
				d := time.Since(start)
				cancel()
				var de *circuit.DestroyedError
				if !errors.As(err, &de) {
					t.Errorf("%s: EXTEND answered %v, want DESTROY", tr.name, err)
					continue
				}
				t.Logf("%s: refused in %v: %v", tr.name, d.Round(time.Millisecond), err)
				if d > 2*time.Second {
					t.Errorf("%s: refused after %v: its timing tells an open port from a closed one", tr.name, d.Round(time.Millisecond))
				}
				if de.Reason == cell.DestroyExtendFailed {
					t.Errorf("%s: refused with reason %d, the reason of a failed dial", tr.name, de.Reason)
				}
			}
			time.Sleep(100 * time.Millisecond)
			for _, tr := range tries {
				if tr.sink == nil {
					continue
				}
				if got := tr.sink.accepted.Load(); got > 0 {
					t.Errorf("%s: the relay connected to %s (%d times)", tr.name, strings.TrimPrefix(tr.sink.addr, "mem://"), got)
				}
			}
			n.legit(t, 10*time.Second)
			rl.Close()
			n.waitFreed(t, victim, base, 2, 8<<20)
		})
	}
}

// An EXTEND that pairs a real relay's key with a black-hole address (it
// accepts and never answers) does not stall honest EXTENDs to that relay:
// a pending dial is keyed by (key, address), and the address is not in the
// relay's signed descriptor anyway. Before the fix the honest EXTEND waited
// on the attacker's dial until both timed out.
func TestExtendWrongAddressDoesNotStall(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := newNet(t, kind, netConfig{})
			// Relays 2 and 3 have no link yet (each links to relay 0 only).
			from, to := n.relays[3], n.relays[2]
			hole := n.newSink(t, "15.0.0.1", "7000")
			a := n.newPeer(t, "attacker", "14.0.7.1")
			attack := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cc, err := a.build(ctx, hop(from), descHop(to.Descriptor(), hole.addr))
				if err == nil {
					cc.Close()
				}
				attack <- err
			}()
			time.Sleep(200 * time.Millisecond) // the attacker's EXTEND is under way
			probe := n.newPeer(t, "probe", "13.0.0.2")
			ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
			defer cancel()
			start := time.Now()
			cc, err := probe.build(ctx, hop(from), hop(to), hop(n.relays[1]))
			d := time.Since(start)
			if err != nil {
				t.Fatalf("an honest EXTEND to the relay whose key the attacker used: %v (after %v)", err, d.Round(time.Millisecond))
			}
			cc.Close()
			t.Logf("honest build through the same relay pair: %v", d.Round(time.Millisecond))
			if d > 3*time.Second {
				t.Errorf("the honest EXTEND took %v: it waited for the attacker's dial", d.Round(time.Millisecond))
			}
			if err := <-attack; err == nil {
				t.Error("the attacker's circuit to a black hole was built")
			}
			if got := hole.accepted.Load(); got > 0 {
				t.Errorf("the relay connected to an address not in the next relay's descriptor (%d times)", got)
			}
			n.legit(t, 10*time.Second)
		})
	}
}
