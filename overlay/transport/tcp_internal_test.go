package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noDelay reads TCP_NODELAY from the socket.
func noDelay(t *testing.T, c net.Conn) bool {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("conn is %T, not *net.TCPConn", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v != 0
}

func TestTCPNoDelay(t *testing.T) {
	var tr TCP
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := tr.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !noDelay(t, c) {
		t.Error("dialled conn has TCP_NODELAY off")
	}
	if !noDelay(t, s) {
		t.Error("accepted conn has TCP_NODELAY off")
	}
}

func TestTCPListenEphemeral(t *testing.T) {
	var tr TCP
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || a.Port == 0 || !a.IP.IsLoopback() {
		t.Fatalf("Addr() = %v (%T)", ln.Addr(), ln.Addr())
	}
	// The port is taken now.
	if _, err := tr.Listen(ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) ||
		!strings.HasPrefix(err.Error(), "transport: ") {
		t.Errorf("second Listen on %v: %v", ln.Addr(), err)
	}
}

// TestTCPDialTimeout checks the deadline Dial adds to a context that has
// none. A dial that never completes cannot be set up reliably on every
// kernel, so the test looks at the context Dial hands to net.Dialer.
func TestTCPDialTimeout(t *testing.T) {
	tests := []struct {
		name    string
		tr      *TCP
		ctx     func() (context.Context, context.CancelFunc)
		wantMin time.Duration
		wantMax time.Duration
		none    bool
	}{
		{name: "default", tr: &TCP{}, ctx: background, wantMin: DefaultDialTimeout - time.Second, wantMax: DefaultDialTimeout},
		{name: "field", tr: &TCP{DialTimeout: time.Second}, ctx: background, wantMin: 500 * time.Millisecond, wantMax: time.Second},
		{name: "unbounded", tr: &TCP{DialTimeout: -1}, ctx: background, none: true},
		{name: "ctx wins", tr: &TCP{DialTimeout: time.Hour}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 3*time.Second)
		}, wantMin: 2 * time.Second, wantMax: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			ctx, cancel2 := tt.tr.dialContext(ctx)
			defer cancel2()
			dl, ok := ctx.Deadline()
			if tt.none {
				if ok {
					t.Fatalf("deadline %v, want none", dl)
				}
				return
			}
			if !ok {
				t.Fatal("no deadline")
			}
			if left := time.Until(dl); left < tt.wantMin || left > tt.wantMax {
				t.Fatalf("deadline in %v, want %v..%v", left, tt.wantMin, tt.wantMax)
			}
		})
	}
}

func background() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func TestTCPDialErrors(t *testing.T) {
	var tr TCP
	// A port that was just free: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = tr.Dial(context.Background(), addr)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "transport: ") {
		t.Errorf("dial to a closed port: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Dial(ctx, addr); err == nil {
		t.Error("dial with a cancelled context succeeded")
	}
	if _, err := tr.Listen("not an address"); err == nil || !strings.HasPrefix(err.Error(), "transport: ") {
		t.Errorf("Listen on a bad address: %v", err)
	}
}

func TestTCPListenerCloseIdempotent(t *testing.T) {
	var tr TCP
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// A TCP transport that listens on a non-loopback address dials from it
// (peers check that a relay speaks from an address it lists); loopback
// and unspecified listeners, and loopback destinations, change nothing.
func TestTCPDialSource(t *testing.T) {
	var tr TCP
	if _, ok := tr.source("192.0.2.1:7000"); ok {
		t.Fatal("a source before any Listen")
	}
	ln, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, ok := tr.source("192.0.2.1:7000"); ok {
		t.Fatal("a loopback listener became a source")
	}
	tr.sources = append(tr.sources, netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("2001:db8::2"))
	for addr, want := range map[string]string{
		"203.0.113.1:7000":    "203.0.113.2",
		"[2001:db8::1]:7000":  "2001:db8::2",
		"127.0.0.1:7000":      "",
		"relay.example:7000":  "",
		"[::ffff:1.2.3.4]:80": "203.0.113.2",
	} {
		got, ok := tr.source(addr)
		if (want == "") == ok || ok && got.String() != want {
			t.Errorf("source(%s) = %v, %v; want %q", addr, got, ok, want)
		}
	}
}
