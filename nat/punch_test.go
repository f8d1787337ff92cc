package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/nat/natsim"
)

var errSignalClosed = errors.New("test signal closed")

// pipeSignal is one end of an in-memory Signal pair, like a relayed path.
type pipeSignal struct {
	in     <-chan []byte
	out    chan<- []byte
	closed chan struct{}
	once   *sync.Once
	delay  time.Duration // one-way latency
}

func signalPair(delay time.Duration) (*pipeSignal, *pipeSignal) {
	ab, ba := make(chan []byte, 8), make(chan []byte, 8)
	closed, once := make(chan struct{}), new(sync.Once)
	return &pipeSignal{ba, ab, closed, once, delay}, &pipeSignal{ab, ba, closed, once, delay}
}

func (p *pipeSignal) Close() { p.once.Do(func() { close(p.closed) }) }

func (p *pipeSignal) Send(ctx context.Context, msg []byte) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return errSignalClosed
	case p.out <- append([]byte(nil), msg...):
		return nil
	}
}

func (p *pipeSignal) Recv(ctx context.Context) ([]byte, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, errSignalClosed
	case m := <-p.in:
		time.Sleep(p.delay)
		return m, nil
	}
}

// side is one peer of a punch test: its socket and its candidates.
type side struct {
	pc    net.PacketConn
	cands Candidates
}

// newSide puts a socket behind a NAT (or on a public host when public) and
// learns its mapped address from the STUN server srv.
func newSide(t *testing.T, n *natsim.Network, public string, behind bool, m, f natsim.Mapping, srv netip.AddrPort) side {
	t.Helper()
	var pc net.PacketConn
	if behind {
		pc = behindNAT(t, n, public, m, f)
	} else {
		h, err := n.NewHost(ip(public))
		if err != nil {
			t.Fatal(err)
		}
		pc = mustListen(t, h, ":4000")
	}
	r, err := Probe(context.Background(), pc, []netip.AddrPort{srv}, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	local, _ := AddrPortOf(pc.LocalAddr())
	c := Candidates{Addrs: []netip.AddrPort{local}}
	if r.Mapped[0] != local {
		c.Addrs = append(c.Addrs, r.Mapped[0])
	}
	return side{pc, c}
}

type punchResult struct {
	addr netip.AddrPort
	err  error
	took time.Duration
}

// punchPair coordinates a and b over a signal pair and punches.
func punchPair(t *testing.T, a, b side) (ra, rb punchResult) {
	t.Helper()
	sa, sb := signalPair(5 * time.Millisecond)
	var wg sync.WaitGroup
	run := func(s side, sig Signal, initiator bool, out *punchResult) {
		peer, start, err := Coordinate(context.Background(), sig, s.cands, initiator)
		if err != nil {
			out.err = err
			return
		}
		out.addr, out.err = Punch(context.Background(), s.pc, peer, PunchOptions{Start: start})
		out.took = time.Since(start)
	}
	wg.Go(func() { run(a, sa, true, &ra) })
	wg.Go(func() { run(b, sb, false, &rb) })
	wg.Wait()
	return ra, rb
}

// checkPath proves a punched path: a datagram each way arrives from the
// address the other side's Punch returned.
func checkPath(t *testing.T, a, b side, ra, rb punchResult) {
	t.Helper()
	for _, d := range []struct {
		from, to side
		dst, src netip.AddrPort
	}{{a, b, ra.addr, rb.addr}, {b, a, rb.addr, ra.addr}} {
		if _, err := d.from.pc.WriteTo([]byte("data"), udpAddr(d.dst)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		d.to.pc.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := d.to.pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("data over the punched path lost: %v", err)
			}
			if IsPunch(buf[:n]) {
				continue // a late ack
			}
			if got, _ := AddrPortOf(from); got != d.src || string(buf[:n]) != "data" {
				t.Fatalf("got %q from %v, want data from %v", buf[:n], got, d.src)
			}
			break
		}
		d.to.pc.SetReadDeadline(time.Time{})
	}
}

func TestPunch(t *testing.T) {
	type nat struct {
		behind bool
		m, f   natsim.Mapping
	}
	eim, adm, apdm := natsim.EndpointIndependent, natsim.AddressDependent, natsim.AddressAndPortDependent
	pub := nat{}
	var cases []struct {
		a, b nat
		ok   bool
	}
	add := func(a, b nat, ok bool) {
		cases = append(cases, struct {
			a, b nat
			ok   bool
		}{a, b, ok})
	}
	for _, fa := range simBehaviours {
		for _, fb := range simBehaviours {
			add(nat{true, eim, fa}, nat{true, eim, fb}, true) // EIM × any filtering
		}
		for _, m := range simBehaviours {
			add(pub, nat{true, m, fa}, true) // one side public
			add(nat{true, m, fa}, pub, true)
		}
	}
	for _, m := range []natsim.Mapping{eim, adm, apdm} {
		add(nat{true, apdm, apdm}, nat{true, m, apdm}, false) // symmetric × APDF
		add(nat{true, m, apdm}, nat{true, apdm, apdm}, false)
		add(nat{true, apdm, eim}, nat{true, m, apdm}, false)
	}
	for _, c := range cases {
		name := func(x nat) string {
			if !x.behind {
				return "public"
			}
			return x.m.String() + "+" + x.f.String()
		}
		t.Run(name(c.a)+"/"+name(c.b), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := natsim.NewNetwork()
				srv, _, stop := startSTUN(t, n, stunA1, netip.Addr{}, false, ServerConfig{})
				defer stop()
				a := newSide(t, n, "203.0.113.1", c.a.behind, c.a.m, c.a.f, srv)
				defer a.pc.Close()
				b := newSide(t, n, "203.0.113.2", c.b.behind, c.b.m, c.b.f, srv)
				defer b.pc.Close()
				ra, rb := punchPair(t, a, b)
				if !c.ok {
					for _, r := range []punchResult{ra, rb} {
						if !errors.Is(r.err, ErrPunchFailed) || r.took > DefaultPunchTimeout {
							t.Fatalf("punch = %v, %v after %v; want ErrPunchFailed within the timeout", r.addr, r.err, r.took)
						}
					}
					return
				}
				if ra.err != nil || rb.err != nil {
					t.Fatalf("punch failed: %v / %v", ra.err, rb.err)
				}
				checkPath(t, a, b, ra, rb)
			})
		})
	}
}

// A peer that never punches: ErrPunchFailed at the timeout, with a bounded
// number of packets.
func TestPunchPeerSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		h, _ := n.NewHost(ip("192.0.2.1"))
		pc := mustListen(t, h, ":1")
		defer pc.Close()
		sink := mustListen(t, h, ":2")
		defer sink.Close()
		start := time.Now()
		peer := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:2")}}
		_, err := Punch(context.Background(), pc, peer, PunchOptions{Timeout: time.Second, MaxPackets: 5})
		if !errors.Is(err, ErrPunchFailed) || time.Since(start) != time.Second {
			t.Fatalf("Punch = %v after %v; want ErrPunchFailed after 1s", err, time.Since(start))
		}
		got := 0
		for {
			sink.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, _, err := sink.ReadFrom(make([]byte, 100)); err != nil {
				break
			}
			got++
		}
		if got != 5 {
			t.Fatalf("%d probes sent, want the bound of 5", got)
		}
		if _, err := Punch(context.Background(), pc, Candidates{}, PunchOptions{}); !errors.Is(err, ErrNoCandidates) {
			t.Fatalf("no candidates: %v", err)
		}
	})
}

// Packets with another session's nonce, and a side's own packets, do not
// count.
func TestPunchIgnoresStrangers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		h, _ := n.NewHost(ip("192.0.2.1"))
		pc := mustListen(t, h, ":1")
		defer pc.Close()
		other := mustListen(t, h, ":2")
		defer other.Close()
		nonce := [NonceSize]byte{1}
		go func() {
			// A stranger answers every probe with an ack of another session.
			buf := make([]byte, 100)
			for {
				n, from, err := other.ReadFrom(buf)
				if err != nil {
					return
				}
				var p PunchPacket
				if p.UnmarshalBinary(buf[:n]) == nil {
					ack, _ := PunchPacket{Ack: true, Nonce: [NonceSize]byte{2}}.MarshalBinary()
					other.WriteTo(ack, from)
				}
			}
		}()
		self := netip.MustParseAddrPort("192.0.2.1:1")
		peer := Candidates{Nonce: nonce, Addrs: []netip.AddrPort{self, netip.MustParseAddrPort("192.0.2.1:2")}}
		if _, err := Punch(context.Background(), pc, peer, PunchOptions{Timeout: time.Second}); !errors.Is(err, ErrPunchFailed) {
			t.Fatalf("Punch with only strangers and itself: %v", err)
		}
	})
}

func TestPunchContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natsim.NewNetwork()
		h, _ := n.NewHost(ip("192.0.2.1"))
		pc := mustListen(t, h, ":1")
		defer pc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		peer := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.9:1")}}
		_, err := Punch(ctx, pc, peer, PunchOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Punch = %v, want the context's error", err)
		}
		_, err = Punch(ctx, pc, peer, PunchOptions{Start: time.Now().Add(time.Hour)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting Punch = %v, want the context's error", err)
		}
	})
}

func TestCoordinate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sa, sb := signalPair(20 * time.Millisecond)
		ca := Candidates{Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:1")}}
		cb := Candidates{Nonce: [NonceSize]byte{9}, Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:2")}}
		var pa, pb Candidates
		var ta, tb time.Time
		var ea, eb error
		var wg sync.WaitGroup
		wg.Go(func() { pa, ta, ea = Coordinate(context.Background(), sa, ca, true) })
		wg.Go(func() { pb, tb, eb = Coordinate(context.Background(), sb, cb, false) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatal(ea, eb)
		}
		if pa.Nonce != pb.Nonce || pa.Nonce == ([NonceSize]byte{}) || pa.Nonce == cb.Nonce {
			t.Fatal("the sides do not share the initiator's nonce")
		}
		if pa.Addrs[0] != cb.Addrs[0] || pb.Addrs[0] != ca.Addrs[0] {
			t.Fatalf("candidates not exchanged: %v %v", pa.Addrs, pb.Addrs)
		}
		// RTT is two one-way delays; both start one delay after SYNC was sent.
		if pa.RTT != 40*time.Millisecond || pb.RTT != pa.RTT || !ta.Equal(tb) {
			t.Fatalf("RTT %v / %v, start %v / %v", pa.RTT, pb.RTT, ta, tb)
		}
	})
}

// A peer that disappears: a closed signal fails at once, a silent one at
// the deadline; the error is wrapped, never a hang.
func TestCoordinatePeerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sa, _ := signalPair(0)
		start := time.Now()
		_, _, err := Coordinate(context.Background(), sa, Candidates{}, true)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != DefaultCoordinateTimeout {
			t.Fatalf("silent peer: %v after %v", err, time.Since(start))
		}
		sa.Close()
		for _, initiator := range []bool{true, false} {
			if _, _, err := Coordinate(context.Background(), sa, Candidates{}, initiator); !errors.Is(err, errSignalClosed) {
				t.Fatalf("closed signal: %v", err)
			}
		}
		// A peer that answers out of turn or for another session.
		sa, sb := signalPair(0)
		go func() {
			msg, _ := sb.Recv(context.Background())
			c, _, _ := ParseSignal(msg)
			c.Nonce[0] ^= 1
			reply, _ := c.AppendBinary([]byte{msgConnect})
			sb.Send(context.Background(), reply)
		}()
		if _, _, err := Coordinate(context.Background(), sa, Candidates{}, true); !errors.Is(err, ErrProtocol) {
			t.Fatalf("foreign nonce: %v", err)
		}
		go func() {
			sb.Send(context.Background(), []byte{msgSync, 1})
		}()
		if _, _, err := Coordinate(context.Background(), sa, Candidates{}, false); !errors.Is(err, ErrMalformed) {
			t.Fatalf("malformed CONNECT: %v", err)
		}
	})
}
