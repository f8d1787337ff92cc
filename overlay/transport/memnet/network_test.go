package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

func TestHost(t *testing.T) {
	var n memnet.Network // zero value is usable
	h := n.Host("10.0.0.1")
	if h != n.Host("10.0.0.1") {
		t.Error("Host returned a new *Host for the same IP")
	}
	if h == n.Host("10.0.0.2") {
		t.Error("Host returned the same *Host for different IPs")
	}
	if got := h.IP(); got != "10.0.0.1" {
		t.Errorf("IP() = %q", got)
	}
	if got := n.Host("::ffff:10.0.0.1"); got != h {
		t.Error("IPv4-mapped IPv6 is not the same host")
	}
	if got := n.Host("fd00::1").IP(); got != "fd00::1" {
		t.Errorf("IPv6 IP() = %q", got)
	}
	for _, bad := range []string{"", "nope", "10.0.0.1:80", "0.0.0.0", "::", "fe80::1%eth0"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Host(%q) did not panic", bad)
				}
			}()
			n.Host(bad)
		}()
	}
}

func TestListenAddrForms(t *testing.T) {
	var n memnet.Network
	h := n.Host("10.0.0.1")
	for _, tt := range []struct {
		addr     string
		wantPort int // 0: any ephemeral port
	}{
		{"10.0.0.1:4000", 4000},
		{":4001", 4001},
		{"0.0.0.0:4002", 4002},
		{"[::]:4003", 4003},
		{"0.0.0.0:0", 0},
		{":0", 0},
		{"10.0.0.1:0", 0},
	} {
		ln, err := h.Listen(tt.addr)
		if err != nil {
			t.Fatalf("Listen(%q): %v", tt.addr, err)
		}
		a, ok := ln.Addr().(*memnet.Addr)
		if !ok {
			t.Fatalf("Listen(%q).Addr() is %T", tt.addr, ln.Addr())
		}
		if a.Network() != "memnet" {
			t.Errorf("Network() = %q", a.Network())
		}
		port := int(a.AddrPort.Port())
		if tt.wantPort != 0 && port != tt.wantPort {
			t.Errorf("Listen(%q): port %d", tt.addr, port)
		}
		if tt.wantPort == 0 && (port < 49152 || port > 65535) {
			t.Errorf("Listen(%q): ephemeral port %d out of range", tt.addr, port)
		}
		if want := fmt.Sprintf("10.0.0.1:%d", port); a.String() != want {
			t.Errorf("Listen(%q).Addr() = %q, want %q", tt.addr, a, want)
		}
		defer ln.Close()
	}
}

func TestListenErrors(t *testing.T) {
	var n memnet.Network
	h := n.Host("10.0.0.1")
	ln, err := h.Listen(":4000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	_, err = h.Listen("10.0.0.1:4000")
	if !errors.Is(err, memnet.ErrAddrInUse) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a port in use: %v", err)
	}
	// Another host may use the same port.
	if ln2, err := n.Host("10.0.0.2").Listen(":4000"); err != nil {
		t.Errorf("same port on another host: %v", err)
	} else {
		ln2.Close()
	}
	_, err = h.Listen("10.0.0.2:4000")
	if !errors.Is(err, memnet.ErrAddrNotAvailable) || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Listen on another host's IP: %v", err)
	}
	for _, bad := range []string{"nope", "localhost:80", "10.0.0.1", "10.0.0.1:99999", "10.0.0.1:x"} {
		if _, err := h.Listen(bad); err == nil || !strings.Contains(err.Error(), "memnet: ") {
			t.Errorf("Listen(%q) = %v", bad, err)
		}
	}
}

func TestListenerClose(t *testing.T) {
	var n memnet.Network
	h := n.Host("10.0.0.1")
	ln, err := h.Listen(":4000")
	if err != nil {
		t.Fatal(err)
	}
	accepted := async(t, func() error {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		return err
	})
	notDone(t, accepted, "Accept")
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, accepted); !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked Accept after Close: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The port is free again, and dials to the old listener are refused.
	if _, err := n.Host("10.0.0.2").Dial(context.Background(), "10.0.0.1:4000"); !errors.Is(err, memnet.ErrConnRefused) {
		t.Errorf("dial to a closed listener: %v", err)
	}
	ln, err = h.Listen(":4000")
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	ln.Close()
}

func TestDialRefused(t *testing.T) {
	var n memnet.Network
	a := n.Host("10.0.0.1")
	n.Host("10.0.0.2")
	for _, addr := range []string{"10.0.0.2:4000", "10.9.9.9:80", "10.0.0.1:0"} {
		c, err := a.Dial(context.Background(), addr)
		if c != nil || err == nil {
			t.Fatalf("Dial(%q) succeeded", addr)
		}
		if !errors.Is(err, memnet.ErrConnRefused) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial(%q) = %v, want connection refused", addr, err)
		}
		if !strings.Contains(err.Error(), "memnet: connection refused") {
			t.Errorf("error text %q", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || op.Addr.String() != addr {
			t.Errorf("Dial(%q) error is not a dial *net.OpError: %#v", addr, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:80", ":80", "host:80", "10.0.0.2"} {
		if _, err := a.Dial(context.Background(), bad); err == nil {
			t.Errorf("Dial(%q) succeeded", bad)
		}
	}
	if d := n.Dials(); len(d) != 0 {
		t.Errorf("failed dials were recorded: %v", d)
	}
}

func TestDialCanceled(t *testing.T) {
	var n memnet.Network
	ln, err := n.Host("10.0.0.2").Listen(":1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Host("10.0.0.1").Dial(ctx, "10.0.0.2:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with canceled ctx: %v", err)
	}
}

func TestConnAddrs(t *testing.T) {
	var n memnet.Network
	c, s := pair(t, &n)
	for _, a := range []net.Addr{c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr()} {
		if _, ok := a.(*memnet.Addr); !ok || a.Network() != "memnet" {
			t.Fatalf("addr %v is %T, network %q", a, a, a.Network())
		}
	}
	if c.LocalAddr().String() != s.RemoteAddr().String() || c.RemoteAddr().String() != s.LocalAddr().String() {
		t.Errorf("ends disagree: client %v->%v, server %v->%v",
			c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
	}
	local := c.LocalAddr().(*memnet.Addr).AddrPort
	if local.Addr() != netip.MustParseAddr("10.0.0.1") || local.Port() < 49152 {
		t.Errorf("client local addr %v", local)
	}
	if !strings.HasPrefix(s.LocalAddr().String(), "10.0.0.2:") {
		t.Errorf("server local addr %v", s.LocalAddr())
	}
}

func TestDialsRecorded(t *testing.T) {
	var n memnet.Network
	a, b, c := n.Host("10.0.0.1"), n.Host("10.0.0.2"), n.Host("10.0.0.3")
	lb, err := b.Listen(":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	lc, err := c.Listen(":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()

	var want []memnet.DialRecord
	dial := func(from *memnet.Host, to string) {
		conn, err := from.Dial(context.Background(), to)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		want = append(want, memnet.DialRecord{From: conn.LocalAddr().String(), To: to})
	}
	dial(a, "10.0.0.2:7000")
	dial(a, "10.0.0.3:7000")
	if _, err := b.Dial(context.Background(), "10.0.0.1:7000"); err == nil {
		t.Fatal("dial to a host without a listener succeeded")
	}
	dial(c, "10.0.0.2:7000")
	dial(b, "10.0.0.2:7000") // to itself

	got := n.Dials()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Dials() = %v\nwant      %v", got, want)
	}
	got[0].From = "changed"
	if n.Dials()[0].From == "changed" {
		t.Error("Dials() returned its internal slice")
	}
}

// TestDialsRecordedBeforeAccept: a test that accepts a conn sees the dial
// in Dials() already.
func TestDialsRecordedBeforeAccept(t *testing.T) {
	var n memnet.Network
	ln, err := n.Host("10.0.0.2").Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 100 {
		dialed := async(t, func() error {
			c, err := n.Host("10.0.0.1").Dial(context.Background(), "10.0.0.2:80")
			if err == nil {
				c.Close()
			}
			return err
		})
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		d := n.Dials()
		if last := d[len(d)-1]; last.From != s.RemoteAddr().String() {
			t.Fatalf("last dial %v, accepted conn from %v", last, s.RemoteAddr())
		}
		s.Close()
		if err := recv(t, dialed); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEphemeralPortsReused(t *testing.T) {
	var n memnet.Network
	a := n.Host("10.0.0.1")
	ln, err := n.Host("10.0.0.2").Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := async(t, func() error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			c.Close()
		}
	})
	// More dials than there are ephemeral ports: closing a conn must free
	// its source port.
	for i := range 20000 {
		c, err := a.Dial(context.Background(), "10.0.0.2:80")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Close()
	}
	ln.Close()
	recv(t, accepted)
}

func TestEphemeralPortsExhausted(t *testing.T) {
	var n memnet.Network
	h := n.Host("10.0.0.1")
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for {
		l, err := h.Listen(":0")
		if err != nil {
			if !errors.Is(err, memnet.ErrAddrInUse) {
				t.Fatalf("after %d listeners: %v", len(lns), err)
			}
			break
		}
		lns = append(lns, l)
		if len(lns) > 65536 {
			t.Fatal("no limit on ephemeral ports")
		}
	}
	if len(lns) != 65535-49152+1 {
		t.Errorf("got %d ephemeral ports", len(lns))
	}
}

// TestBacklog: Dial succeeds while the accept queue has room, then waits
// until Accept makes room or its context ends.
func TestBacklog(t *testing.T) {
	var n memnet.Network
	a := n.Host("10.0.0.1")
	ln, err := n.Host("10.0.0.2").Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range memnet.Backlog {
		c, err := a.Dial(context.Background(), "10.0.0.2:80")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = a.Dial(ctx, "10.0.0.2:80")
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial to a full backlog: %v", err)
	}

	var extra net.Conn
	dialed := async(t, func() (err error) {
		extra, err = a.Dial(context.Background(), "10.0.0.2:80")
		return err
	})
	notDone(t, dialed, "Dial to a full backlog")
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := recv(t, dialed); err != nil {
		t.Fatalf("Dial after Accept made room: %v", err)
	}
	conns = append(conns, extra)
	if got := len(n.Dials()); got != memnet.Backlog+1 {
		t.Errorf("%d dials recorded", got)
	}

	// A dialer waiting on a full queue is refused when the listener closes,
	// and queued conns are closed: their dialers read io.EOF.
	waiting := async(t, func() error {
		c, err := a.Dial(context.Background(), "10.0.0.2:80")
		if c != nil {
			c.Close()
		}
		return err
	})
	notDone(t, waiting, "Dial to a full backlog")
	ln.Close()
	if err := recv(t, waiting); !errors.Is(err, memnet.ErrConnRefused) {
		t.Errorf("waiting dial after listener Close: %v", err)
	}
	if _, err := conns[1].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on a conn that was never accepted: %v", err)
	}
}

// TestManyHosts runs 40 hosts in one network, each dialling every other
// one, and checks the echo and the dial log.
func TestManyHosts(t *testing.T) {
	const hosts = 40
	var n memnet.Network
	n.BufferSize = 4096
	var wg sync.WaitGroup
	var lns []net.Listener
	for i := range hosts {
		ln, err := n.Host(fmt.Sprintf("10.1.0.%d", i+1)).Listen(":9000")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Go(func() {
					defer c.Close()
					io.Copy(c, c)
				})
			}
		})
	}
	errs := make(chan error, hosts*hosts)
	var dialers sync.WaitGroup
	for i := range hosts {
		dialers.Go(func() {
			h := n.Host(fmt.Sprintf("10.1.0.%d", i+1))
			for j := range hosts {
				if i == j {
					continue
				}
				to := fmt.Sprintf("10.1.0.%d:9000", j+1)
				c, err := h.Dial(context.Background(), to)
				if err != nil {
					errs <- err
					continue
				}
				msg := []byte(strings.Repeat(fmt.Sprintf("%d->%d;", i, j), 1000))
				var w sync.WaitGroup
				w.Go(func() { c.Write(msg) })
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
					errs <- fmt.Errorf("%d->%d: echo failed: %v", i, j, err)
				}
				c.Close()
				w.Wait()
			}
		})
	}
	dialers.Wait()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(n.Dials()); got != hosts*(hosts-1) {
		t.Errorf("%d dials recorded, want %d", got, hosts*(hosts-1))
	}
}
