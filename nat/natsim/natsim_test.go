package natsim

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func listen(t *testing.T, h *Host, addr string) net.PacketConn {
	t.Helper()
	c, err := h.ListenPacket(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.PacketConn, to net.Addr, msg string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next queued datagram, or ok false when none is queued
// (delivery is synchronous, so a sent packet is queued on return).
func recv(t *testing.T, c net.PacketConn) (string, netip.AddrPort, bool) {
	t.Helper()
	cc := c.(*Conn)
	select {
	case p := <-cc.queue:
		return string(p.data), p.src, true
	default:
		return "", netip.AddrPort{}, false
	}
}

type lab struct {
	net      *Network
	nat      *NAT
	client   net.PacketConn
	s1a, s1b net.PacketConn // server host 1, two ports
	s2       net.PacketConn // server host 2
	clock    *fakeClock
}

func newLab(t *testing.T, m Mapping, f Filtering) *lab {
	t.Helper()
	l := &lab{net: NewNetwork(), clock: &fakeClock{t: time.Unix(1e9, 0)}}
	var err error
	l.nat, err = l.net.NewNAT(ip("203.0.113.1"), NATConfig{Mapping: m, Filtering: f, MappingTimeout: time.Minute, Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := l.nat.NewHost(ip("192.168.1.2"))
	if err != nil {
		t.Fatal(err)
	}
	h1, err := l.net.NewHost(ip("198.51.100.1"))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := l.net.NewHost(ip("198.51.100.2"))
	if err != nil {
		t.Fatal(err)
	}
	l.client = listen(t, priv, ":5000")
	l.s1a = listen(t, h1, ":3478")
	l.s1b = listen(t, h1, ":3479")
	l.s2 = listen(t, h2, ":3478")
	return l
}

// seen sends from the client to s and returns the source address s sees.
func (l *lab) seen(t *testing.T, s net.PacketConn) netip.AddrPort {
	t.Helper()
	send(t, l.client, s.LocalAddr(), "out")
	_, src, ok := recv(t, s)
	if !ok {
		t.Fatal("outbound packet lost")
	}
	if src.Addr() != l.nat.PublicIP() {
		t.Fatalf("source %v not translated to the NAT's IP", src)
	}
	return src
}

func TestMappingBehaviour(t *testing.T) {
	for _, m := range []Mapping{EndpointIndependent, AddressDependent, AddressAndPortDependent} {
		t.Run(m.String(), func(t *testing.T) {
			l := newLab(t, m, EndpointIndependent)
			a, b, c := l.seen(t, l.s1a), l.seen(t, l.s1b), l.seen(t, l.s2)
			if again := l.seen(t, l.s1a); again != a {
				t.Fatalf("mapping to the same destination changed: %v then %v", a, again)
			}
			samePort, sameIP := a == b, a == c
			want := map[Mapping][2]bool{
				EndpointIndependent:     {true, true},
				AddressDependent:        {true, false},
				AddressAndPortDependent: {false, false},
			}[m]
			if samePort != want[0] || sameIP != want[1] {
				t.Fatalf("%v: same mapping for another port %v (want %v), for another IP %v (want %v)", m, samePort, want[0], sameIP, want[1])
			}
		})
	}
}

func TestFilteringBehaviour(t *testing.T) {
	for _, f := range []Filtering{EndpointIndependent, AddressDependent, AddressAndPortDependent} {
		t.Run(f.String(), func(t *testing.T) {
			l := newLab(t, EndpointIndependent, f)
			pub := l.seen(t, l.s1a)
			to := net.UDPAddrFromAddrPort(pub)
			got := func(from net.PacketConn) bool {
				send(t, from, to, "in")
				msg, _, ok := recv(t, l.client)
				return ok && msg == "in"
			}
			if !got(l.s1a) {
				t.Fatal("the contacted endpoint's answer was filtered")
			}
			otherPort, otherIP := got(l.s1b), got(l.s2)
			want := map[Filtering][2]bool{
				EndpointIndependent:     {true, true},
				AddressDependent:        {true, false},
				AddressAndPortDependent: {false, false},
			}[f]
			if otherPort != want[0] || otherIP != want[1] {
				t.Fatalf("%v: admitted another port %v (want %v), another IP %v (want %v)", f, otherPort, want[0], otherIP, want[1])
			}
		})
	}
}

func TestUnsolicitedDropped(t *testing.T) {
	l := newLab(t, EndpointIndependent, EndpointIndependent)
	send(t, l.s1a, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.nat.PublicIP(), firstPublicPort)), "in")
	if _, _, ok := recv(t, l.client); ok {
		t.Fatal("a packet without a mapping reached the private host")
	}
}

func TestMappingTimeout(t *testing.T) {
	l := newLab(t, EndpointIndependent, EndpointIndependent)
	first := l.seen(t, l.s1a)
	l.clock.Advance(30 * time.Second)
	if again := l.seen(t, l.s1a); again != first {
		t.Fatal("a refreshed mapping changed")
	}
	l.clock.Advance(61 * time.Second)
	if n := l.nat.Mappings(); n != 0 {
		t.Fatalf("%d mappings live after the idle timeout", n)
	}
	send(t, l.s1a, net.UDPAddrFromAddrPort(first), "late")
	if _, _, ok := recv(t, l.client); ok {
		t.Fatal("an expired mapping admitted a packet")
	}
	if again := l.seen(t, l.s1a); again == first {
		t.Fatal("an expired mapping's port was reused at once")
	}
}

func TestMaxMappings(t *testing.T) {
	n := NewNetwork()
	x, err := n.NewNAT(ip("203.0.113.1"), NATConfig{Mapping: AddressAndPortDependent, MaxMappings: 2})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := x.NewHost(ip("10.0.0.2"))
	pub, _ := n.NewHost(ip("198.51.100.1"))
	c := listen(t, priv, ":1")
	var servers []net.PacketConn
	for _, a := range []string{":1", ":2", ":3"} {
		servers = append(servers, listen(t, pub, a))
	}
	for i, s := range servers {
		send(t, c, s.LocalAddr(), "x")
		_, _, ok := recv(t, s)
		if ok != (i < 2) {
			t.Fatalf("flow %d delivered %v with a table of 2", i, ok)
		}
	}
}

func TestConnDeadlineAndClose(t *testing.T) {
	n := NewNetwork()
	h, _ := n.NewHost(ip("198.51.100.1"))
	c, err := h.ListenPacket("198.51.100.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListenPacket(c.LocalAddr().String()); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second bind: %v, want ErrAddrInUse", err)
	}
	if _, err := h.ListenPacket("198.51.100.9:1"); !errors.Is(err, ErrNoSuchIP) {
		t.Fatalf("foreign IP: %v, want ErrNoSuchIP", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	buf := make([]byte, 10)
	_, _, err = c.ReadFrom(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(buf)
		done <- err
	}()
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked read after Close: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	c2, err := h.ListenPacket(c.LocalAddr().String())
	if err != nil {
		t.Fatalf("rebinding a closed port: %v", err)
	}
	c2.Close()
}

func TestQueueBounded(t *testing.T) {
	n := NewNetwork()
	h, _ := n.NewHost(ip("198.51.100.1"))
	a := listen(t, h, ":1")
	b := listen(t, h, ":2")
	for range QueueLen + 10 {
		send(t, a, b.LocalAddr(), "x")
	}
	got := 0
	for {
		if _, _, ok := recv(t, b); !ok {
			break
		}
		got++
	}
	if got != QueueLen {
		t.Fatalf("%d packets queued, want the bound %d", got, QueueLen)
	}
}

func TestReadFromTruncatesAndReportsSource(t *testing.T) {
	n := NewNetwork()
	h, _ := n.NewHost(ip("198.51.100.1"), ip("198.51.100.2"))
	a := listen(t, h, "198.51.100.2:7")
	b := listen(t, h, ":8")
	send(t, a, b.LocalAddr(), "hello")
	buf := make([]byte, 3)
	nr, from, err := b.ReadFrom(buf)
	if err != nil || nr != 3 || string(buf) != "hel" || from.String() != "198.51.100.2:7" {
		t.Fatalf("ReadFrom = %d %q %v %v", nr, buf[:nr], from, err)
	}
}
