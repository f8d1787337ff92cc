package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/nat/natsim"
)

// Probe classifies every mapping × filtering combination through a NAT
// against one RFC 5780 server.
func TestProbeClassifies(t *testing.T) {
	for _, m := range simBehaviours {
		for _, f := range simBehaviours {
			t.Run(m.String()+"/"+f.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					n := natsim.NewNetwork()
					srv, _, stop := startSTUN(t, n, stunA1, stunA2, true, ServerConfig{})
					defer stop()
					pc := behindNAT(t, n, "203.0.113.1", m, f)
					defer pc.Close()
					start := time.Now()
					r, err := Probe(context.Background(), pc, []netip.AddrPort{srv}, ProbeOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if time.Since(start) > DefaultProbeTimeout {
						t.Errorf("probe took %v, over its bound", time.Since(start))
					}
					if r.Mapping != behaviour(m) || r.Filtering != behaviour(f) {
						t.Fatalf("classified mapping %v filtering %v, want %v %v", r.Mapping, r.Filtering, behaviour(m), behaviour(f))
					}
					if r.Public || r.Mapped[0].Addr() != ip("203.0.113.1") {
						t.Fatalf("report %+v: want the NAT's address, not public", r)
					}
				})
			})
		}
	}
}

func TestProbePublic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		srv, _, stop := startSTUN(t, n, stunA1, stunA2, true, ServerConfig{})
		defer stop()
		h, _ := n.NewHost(ip("192.0.2.7"))
		pc := mustListen(t, h, ":4000")
		defer pc.Close()
		r, err := Probe(context.Background(), pc, []netip.AddrPort{srv}, ProbeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Public || r.Mapping != EndpointIndependent || r.Filtering != EndpointIndependent {
			t.Fatalf("public host reported as %+v", r)
		}
		s := r.String()
		for _, want := range []string{"server 198.51.100.1:3478: mapped 192.0.2.7:4000\n", "mapping: endpoint-independent\n", "filtering: endpoint-independent\n", "public: yes"} {
			if !strings.Contains(s, want) {
				t.Errorf("String() lacks %q:\n%s", want, s)
			}
		}
	})
}

// Plain servers (no alternates) still give mapped addresses; two of them
// on different IPs tell endpoint-independent mapping from the rest, and
// filtering stays unknown.
func TestProbePlainServers(t *testing.T) {
	for _, m := range simBehaviours {
		t.Run(m.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := natsim.NewNetwork()
				s1, _, stop1 := startSTUN(t, n, stunA1, netip.Addr{}, false, ServerConfig{})
				defer stop1()
				s2, _, stop2 := startSTUN(t, n, stunA2, netip.Addr{}, false, ServerConfig{})
				defer stop2()
				dead := netip.MustParseAddrPort("198.51.100.99:3478")
				pc := behindNAT(t, n, "203.0.113.1", m, natsim.EndpointIndependent)
				defer pc.Close()
				r, err := Probe(context.Background(), pc, []netip.AddrPort{s1, s2, dead}, ProbeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				want := Unknown
				if m == natsim.EndpointIndependent {
					want = EndpointIndependent
				}
				if r.Mapping != want || r.Filtering != Unknown {
					t.Fatalf("mapping %v filtering %v, want %v unknown", r.Mapping, r.Filtering, want)
				}
				if !r.Mapped[0].IsValid() || !r.Mapped[1].IsValid() || r.Mapped[2].IsValid() {
					t.Fatalf("mapped %v: want answers from the two live servers only", r.Mapped)
				}
				if !strings.Contains(r.String(), "server 198.51.100.99:3478: no answer\n") {
					t.Errorf("String() does not report the silent server:\n%s", r)
				}
			})
		})
	}
}

func TestProbeNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		h, _ := n.NewHost(ip("192.0.2.7"))
		pc := mustListen(t, h, ":4000")
		defer pc.Close()
		r, err := Probe(context.Background(), pc, []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}, ProbeOptions{Timeout: time.Second})
		if !errors.Is(err, ErrNoAnswer) || r == nil || r.Mapping != Unknown {
			t.Fatalf("Probe = %+v, %v; want ErrNoAnswer", r, err)
		}
		if _, err := Probe(context.Background(), pc, nil, ProbeOptions{}); !errors.Is(err, ErrNoServers) {
			t.Fatalf("no servers: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Probe(ctx, pc, []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}, ProbeOptions{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled probe: %v", err)
		}
	})
}

func TestBehaviorString(t *testing.T) {
	for b, want := range map[Behavior]string{Unknown: "unknown", EndpointIndependent: "endpoint-independent",
		AddressDependent: "address-dependent", AddressAndPortDependent: "address-and-port-dependent", 9: "nat.Behavior(9)"} {
		if b.String() != want {
			t.Errorf("%d: %q, want %q", int(b), b.String(), want)
		}
	}
}

// The same code runs on kernel sockets (loopback): the probing socket is
// its own mapped address, and a plain server refuses the filtering tests
// at once, so the probe does not wait for its timeout.
func TestProbeLoopbackUDP(t *testing.T) {
	spc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback UDP: %v", err)
	}
	s := NewServer(ServerConfig{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(spc) }()
	defer func() {
		spc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv, _ := AddrPortOf(spc.LocalAddr())
	r, err := Probe(context.Background(), pc, []netip.AddrPort{srv}, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if local, _ := AddrPortOf(pc.LocalAddr()); r.Mapped[0] != local || !r.Public || r.Filtering != Unknown {
		t.Fatalf("report %+v for a socket at %v", r, local)
	}
}
