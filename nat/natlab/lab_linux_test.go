package natlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/nat"
)

const (
	stunPort    = 3478
	stunAltPort = 3479
	// attempts is how many punches each pair of NATs gets.
	attempts = 5
	// probeTimeout and punchTimeout bound one probe and one punch.
	probeTimeout = time.Second
	punchTimeout = 1500 * time.Millisecond
)

func TestSkipReason(t *testing.T) {
	found := func(string) (string, error) { return "/usr/sbin/x", nil }
	if r := skipReason(0, found); r != "" {
		t.Errorf("root with ip and iptables: skip %q", r)
	}
	if r := skipReason(1000, found); r == "" {
		t.Error("not root: no skip")
	}
	for _, missing := range []string{"ip", "iptables"} {
		look := func(c string) (string, error) {
			if c == missing {
				return "", exec.ErrNotFound
			}
			return "/usr/sbin/" + c, nil
		}
		if r := skipReason(0, look); r == "" {
			t.Errorf("without %s: no skip", missing)
		}
	}
}

func TestNATString(t *testing.T) {
	for n, want := range map[NAT]string{Masquerade: "masquerade", RandomFully: "random-fully", 7: "natlab.NAT(7)"} {
		if got := n.String(); got != want {
			t.Errorf("NAT(%d).String() = %q, want %q", int(n), got, want)
		}
	}
}

func TestCleanup(t *testing.T) {
	var names []string
	ran := t.Run("lab", func(t *testing.T) {
		l := New(t, Options{})
		names = l.Namespaces()
		have, err := ListNamespaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range names {
			if !slices.Contains(have, ns) {
				t.Errorf("namespace %s missing during the test", ns)
			}
		}
	})
	if !ran || names == nil {
		t.Skip("the lab did not run")
	}
	have, err := ListNamespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if slices.Contains(have, ns) {
			t.Errorf("namespace %s left after cleanup", ns)
		}
	}
}

func TestRunRejectsForeignNamespace(t *testing.T) {
	l := &Lab{Public: "dmx"}
	if err := l.Run("elsewhere", func() error { return nil }); err == nil {
		t.Error("Run in a namespace outside the lab succeeded")
	}
}

// listen opens a socket in ns or fails t; t closes it at the end.
func listen(t testing.TB, l *Lab, ns, addr string) net.PacketConn {
	t.Helper()
	pc, err := l.ListenPacket(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// startSTUN runs a nat.Server in the public namespace on STUN1:3478, with
// the three RFC 5780 alternate sockets when full, until t ends.
func startSTUN(t testing.TB, l *Lab, full bool) netip.AddrPort {
	t.Helper()
	at := func(a netip.Addr, p uint16) net.PacketConn {
		return listen(t, l, l.Public, netip.AddrPortFrom(a, p).String())
	}
	pc := at(STUN1, stunPort)
	cfg := nat.ServerConfig{Rate: 1000, Burst: 1000}
	if full {
		cfg.AltPort, cfg.AltIP, cfg.AltIPPort = at(STUN1, stunAltPort), at(STUN2, stunPort), at(STUN2, stunAltPort)
	}
	s := nat.NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	t.Cleanup(func() {
		pc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return netip.AddrPortFrom(STUN1, stunPort)
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		nat     NAT
		mapping nat.Behavior
	}{
		{Masquerade, nat.EndpointIndependent},
		// --random-fully draws a new port for every conntrack entry, that
		// is for every destination address and port: the kernel's mapping
		// is address-and-port-dependent (the probe sees another port from
		// the alternate port of the same IP).
		{RandomFully, nat.AddressAndPortDependent},
	} {
		t.Run(tc.nat.String(), func(t *testing.T) {
			l := New(t, Options{A: tc.nat})
			srv := startSTUN(t, l, true)
			pc := listen(t, l, l.HomeA, netip.AddrPortFrom(HomeAddrA, 0).String())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			rep, err := nat.Probe(ctx, pc, []netip.AddrPort{srv}, nat.ProbeOptions{Timeout: 2 * probeTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s NAT:\n%s", tc.nat, rep)
			if got := rep.Mapped[0].Addr(); got != PublicA {
				t.Errorf("mapped IP %v, want router A's %v", got, PublicA)
			}
			if rep.Public {
				t.Error("report says no NAT")
			}
			if rep.Mapping != tc.mapping {
				t.Errorf("mapping %v, want %v", rep.Mapping, tc.mapping)
			}
			// Conntrack lets in only replies from the exact address and
			// port a packet went to, whatever the NAT.
			if rep.Filtering != nat.AddressAndPortDependent {
				t.Errorf("filtering %v, want %v", rep.Filtering, nat.AddressAndPortDependent)
			}
			if tc.nat == Masquerade && rep.Mapped[0].Port() != rep.Local.Port() {
				t.Errorf("MASQUERADE mapped port %d, want the socket's own %d (port preservation)", rep.Mapped[0].Port(), rep.Local.Port())
			}
		})
	}
}

// chanSignal is one end of an in-process nat.Signal.
type chanSignal struct {
	in  <-chan []byte
	out chan<- []byte
}

func (s chanSignal) Send(ctx context.Context, msg []byte) error {
	select {
	case s.out <- slices.Clone(msg):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s chanSignal) Recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-s.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func signalPair() (nat.Signal, nat.Signal) {
	ab, ba := make(chan []byte, 4), make(chan []byte, 4)
	return chanSignal{in: ba, out: ab}, chanSignal{in: ab, out: ba}
}

// side is one end of a punch attempt.
type side struct {
	pc   net.PacketConn
	got  netip.AddrPort // the peer's address Punch returned
	err  error
	took time.Duration // from the start of coordination to Punch's return
}

// punchOnce runs one attempt between fresh sockets in home A and home B:
// probe the STUN server for the mapped addresses, coordinate over an
// in-process signal, punch.
func punchOnce(t *testing.T, l *Lab, srv netip.AddrPort) (a, b *side) {
	t.Helper()
	a = &side{pc: listen(t, l, l.HomeA, netip.AddrPortFrom(HomeAddrA, 0).String())}
	b = &side{pc: listen(t, l, l.HomeB, netip.AddrPortFrom(HomeAddrB, 0).String())}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	mapped := func(s *side) netip.AddrPort {
		rep, err := nat.Probe(ctx, s.pc, []netip.AddrPort{srv}, nat.ProbeOptions{Timeout: probeTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Mapped[0]
	}
	ma, mb := mapped(a), mapped(b)
	sa, sb := signalPair()
	done := make(chan struct{})
	run := func(s *side, sig nat.Signal, m netip.AddrPort, initiator bool) {
		defer func() { done <- struct{}{} }()
		t0 := time.Now()
		peer, start, err := nat.Coordinate(ctx, sig, nat.Candidates{Addrs: []netip.AddrPort{m}}, initiator)
		if err != nil {
			s.err = err
			return
		}
		s.got, s.err = nat.Punch(ctx, s.pc, peer, nat.PunchOptions{Start: start, Timeout: punchTimeout})
		s.took = time.Since(t0)
	}
	go run(a, sa, ma, true)
	go run(b, sb, mb, false)
	<-done
	<-done
	return a, b
}

// exchange checks that data flows both ways between the punched sockets.
func exchange(t *testing.T, a, b *side) {
	t.Helper()
	send := func(from, to *side, msg string) {
		t.Helper()
		if _, err := from.pc.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(from.got)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		if err := to.pc.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for {
			n, src, err := to.pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("waiting for %q: %v", msg, err)
			}
			ap := src.(*net.UDPAddr).AddrPort()
			if string(buf[:n]) != msg {
				continue // a late punch packet
			}
			if netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != to.got {
				t.Errorf("%q came from %v, not from the punched address %v", msg, ap, to.got)
			}
			return
		}
	}
	send(a, b, "data from A")
	send(b, a, "data from B")
}

// outcome is what a punch attempt must end in.
type outcome int

const (
	succeed outcome = iota
	fail            // both sides with nat.ErrPunchFailed
	either          // one of the two: a timing race decides
)

func TestPunch(t *testing.T) {
	for _, tc := range []struct {
		a, b NAT
		open bool
		want outcome
	}{
		// Both keep the port the STUN server saw, so each side's probes
		// reach the mapping the other's router holds: the punch works.
		{Masquerade, Masquerade, false, succeed},
		// The same without the routers' input firewall: the first probe
		// to arrive, before the receiving router has sent its own, is
		// delivered to that router and leaves a conntrack entry whose
		// tuple the router's outbound probe would need, so MASQUERADE
		// gives that one another port and the punch fails. Whether a probe
		// arrives first is a race of microseconds (Coordinate's responder
		// starts about RTT/2 before the initiator, so it is usually lost).
		{Masquerade, Masquerade, true, either},
		// B's router gives B's probes to A another port than B's STUN
		// mapping: A's router admits only the port A sends to, and A sends
		// to a port that B's router never mapped. No punch.
		{Masquerade, RandomFully, false, fail},
		{RandomFully, RandomFully, false, fail},
	} {
		name := fmt.Sprintf("%s-%s", tc.a, tc.b)
		if tc.open {
			name += "-open"
		}
		t.Run(name, func(t *testing.T) {
			l := New(t, Options{A: tc.a, B: tc.b, OpenInput: tc.open})
			srv := startSTUN(t, l, false)
			var ok int
			var times []time.Duration
			for i := range attempts {
				a, b := punchOnce(t, l, srv)
				both := a.err == nil && b.err == nil
				if both {
					ok++
					times = append(times, max(a.took, b.took))
				}
				switch {
				case tc.want == succeed && !both:
					t.Errorf("attempt %d: A: %v, B: %v", i, a.err, b.err)
				case tc.want == fail || (tc.want == either && !both):
					for _, s := range []*side{a, b} {
						if !errors.Is(s.err, nat.ErrPunchFailed) {
							t.Errorf("attempt %d: err %v, want %v", i, s.err, nat.ErrPunchFailed)
						}
					}
				}
				if !both {
					continue
				}
				if a.got.Addr() != PublicB || b.got.Addr() != PublicA {
					t.Errorf("attempt %d: A punched to %v, B to %v", i, a.got, b.got)
				}
				exchange(t, a, b)
			}
			med := "none"
			if len(times) > 0 {
				slices.Sort(times)
				med = times[len(times)/2].Round(10 * time.Microsecond).String()
			}
			t.Logf("punch %s: %d/%d succeeded, median time to a direct path %s", name, ok, attempts, med)
		})
	}
}
