package overlay

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/nat"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
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

// Relays that listen on QUIC only carry circuits as TCP relays do: the
// client links to them over QUIC, a stream through three of them echoes,
// and each relay answers STUN on its QUIC socket.
func TestQUICLinks(t *testing.T) {
	h := newHarnessWith(t, "tcp", 3, func(c *Config) {
		if len(c.Listen) > 0 {
			c.Listen = []string{"quic://127.0.0.1:0"}
		}
	})
	defer h.close()
	for _, r := range h.relays {
		if a := r.Descriptor().Addrs; len(a) != 1 || !strings.HasPrefix(a[0], "quic://") {
			t.Fatalf("relay advertises %v, want one quic:// address", a)
		}
		if len(r.STUNAddrs()) != 1 {
			t.Fatalf("relay answers STUN on %d sockets, want its QUIC socket", len(r.STUNAddrs()))
		}
	}
	st, err := h.client.DialStream(ctxT(t), h.target.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msg := []byte("E\nhello over quic")
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg)-2)
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(st, got); err != nil || string(got) != "hello over quic" {
		t.Fatalf("echo %q, %v", got, err)
	}
	// The relay's QUIC socket also answers STUN.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(h.relays[0].Descriptor().Addrs[0], "quic://"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := nat.Probe(ctx, pc, []netip.AddrPort{ap}, nat.ProbeOptions{Timeout: 2 * time.Second})
	if err != nil || !r.Public {
		t.Fatalf("STUN on the QUIC socket: %v, %v", r, err)
	}
}

// A relay of a loopback network learns from another relay's STUN answer
// that it is public (127.0.0.1 is its own), and says so in its next
// descriptor.
func TestReachabilityPublic(t *testing.T) {
	h := newHarness(t, "tcp", 2)
	defer h.close()
	r := h.relays[1]
	waitFor(t, func() bool {
		reach, rep, _ := r.Reachability()
		return reach.Status == descriptor.ReachPublic && rep != nil
	}, "relay 1 knows it is public")
	// The first answer rides the next republication.
	if _, ok := r.Descriptor().Reach(); ok {
		t.Error("the descriptor changed before a republication")
	}
	if err := r.republish(); err != nil {
		t.Fatal(err)
	}
	if d, ok := r.Descriptor().Reach(); !ok || d.Status != descriptor.ReachPublic {
		t.Errorf("republished descriptor: %+v, %v", d, ok)
	}
}
