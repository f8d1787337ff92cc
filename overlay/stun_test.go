package overlay

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/nat"
)

// A relay answers STUN on the UDP port of its TCP link address: a probe
// from loopback sees its own address (no NAT). With DisableSTUN it does
// not.
func TestRelayAnswersSTUN(t *testing.T) {
	for _, disable := range []bool{false, true} {
		n, err := New(Config{Network: "stun-test", Listen: []string{"127.0.0.1:0"}, AllowPrivateAddrs: true, DisableSTUN: disable})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		tcp := netip.MustParseAddrPort(n.Addr().String())
		if got := len(n.STUNAddrs()); got != map[bool]int{false: 1, true: 0}[disable] {
			t.Fatalf("DisableSTUN %v: %d STUN sockets", disable, got)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := nat.Probe(ctx, pc, []netip.AddrPort{tcp}, nat.ProbeOptions{Timeout: 2 * time.Second})
		cancel()
		pc.Close()
		n.Close()
		if disable {
			if err == nil && r.Mapped[0].IsValid() {
				t.Errorf("DisableSTUN: the relay answered: %v", r)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Mapped[0] != netip.MustParseAddrPort(pc.LocalAddr().String()) || !r.Public {
			t.Errorf("probe of the relay: %v", r)
		}
	}
}
