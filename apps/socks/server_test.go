package socks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func TestConnectAddressTypes(t *testing.T) {
	be := startBackend(t, echo)
	d := &fakeDialer{backend: be.Addr()}
	proxy := startProxy(t, &Server{Dialer: d})

	tests := []struct {
		name   string
		atyp   byte
		addr   []byte
		port   uint16
		target string
	}{
		{"IPv4", AtypIPv4, []byte{192, 0, 2, 1}, 80, "192.0.2.1:80"},
		{"IPv6", AtypIPv6, []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, 443, "[2001:db8::1]:443"},
		{"domain", AtypDomain, []byte("example.invalid"), 80, "example.invalid:80"},
		{"onion-like domain", AtypDomain, []byte("abcdef.dark"), 8080, "abcdef.dark:8080"},
		{"IPv4 literal as domain", AtypDomain, []byte("192.0.2.7"), 22, "192.0.2.7:22"},
		{"IPv6 literal as domain", AtypDomain, []byte("2001:DB8::2"), 22, "[2001:db8::2]:22"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, code := connect(t, proxy, tt.atyp, tt.addr, tt.port)
			if code != ReplySucceeded {
				t.Fatalf("reply %#x, want success", code)
			}
			msg := []byte("hello through " + tt.name)
			write(t, c, msg)
			if got := readN(t, c, len(msg)); !bytes.Equal(got, msg) {
				t.Fatalf("echo %q, want %q", got, msg)
			}
			calls := d.Calls()
			if len(calls) != i+1 {
				t.Fatalf("%d dial calls, want %d", len(calls), i+1)
			}
			if got := calls[i]; got != (dialCall{tt.target, ""}) {
				t.Fatalf("DialStream(%q, %q), want (%q, \"\")", got.target, got.isolation, tt.target)
			}
		})
	}
}

func TestLargeTransferAndHalfClose(t *testing.T) {
	be := startBackend(t, hashAfterEOF)
	proxy := startProxy(t, &Server{Dialer: &fakeDialer{backend: be.Addr()}})

	c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 80)
	if code != ReplySucceeded {
		t.Fatalf("reply %#x", code)
	}
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	// The backend answers only after EOF, so this also checks that the
	// client's half-close reaches it while the other direction stays open.
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("backend saw SHA-256 %x, want %x", got, want)
	}
}

func TestUserPassIsolation(t *testing.T) {
	be := startBackend(t, echo)
	d := &fakeDialer{backend: be.Addr()}
	proxy := startProxy(t, &Server{Dialer: d})

	pairs := [][2]string{{"a", "bc"}, {"ab", "c"}, {"", ""}, {"a", "bc"}, {strings.Repeat("u", 255), strings.Repeat("p", 255)}}
	for _, p := range pairs {
		c := dialProxy(t, proxy)
		// Offering no-auth first must still pick username/password.
		if m := greet(t, c, MethodNoAuth, MethodUserPass); m != MethodUserPass {
			t.Fatalf("method %#x, want username/password", m)
		}
		if st := authUserPass(t, c, p[0], p[1]); st != 0 {
			t.Fatalf("auth status %#x, want 0", st)
		}
		if code := sendRequest(t, c, CmdConnect, AtypDomain, []byte("example.invalid"), 80); code != ReplySucceeded {
			t.Fatalf("reply %#x", code)
		}
		c.Close()
	}
	c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 80)
	if code != ReplySucceeded {
		t.Fatalf("reply %#x", code)
	}
	c.Close()

	calls := d.Calls()
	if len(calls) != len(pairs)+1 {
		t.Fatalf("%d calls", len(calls))
	}
	keys := make([]string, len(calls))
	for i, c := range calls {
		keys[i] = c.isolation
	}
	if keys[0] != "socks5:1:a2:bc" || keys[1] != "socks5:2:ab1:c" || keys[2] != "socks5:0:0:" {
		t.Errorf("keys %q", keys[:3])
	}
	if keys[0] == keys[1] {
		t.Errorf(`("a","bc") and ("ab","c") share isolation key %q`, keys[0])
	}
	if keys[0] != keys[3] {
		t.Errorf("same credentials gave keys %q and %q", keys[0], keys[3])
	}
	if keys[5] != "" {
		t.Errorf("no-auth key %q, want empty", keys[5])
	}
	seen := map[string]bool{}
	for _, k := range []string{keys[0], keys[1], keys[2], keys[4], keys[5]} {
		if seen[k] {
			t.Errorf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestReplyCodes(t *testing.T) {
	errs := map[string]error{}
	tests := []struct {
		err  error
		want byte
	}{
		{streamerr.New(streamerr.ExitPolicy), ReplyNotAllowed},
		{streamerr.New(streamerr.Unreachable), ReplyHostUnreachable},
		{streamerr.New(streamerr.ResolveFailed), ReplyHostUnreachable},
		{streamerr.New(streamerr.ConnRefused), ReplyConnectionRefused},
		{streamerr.New(streamerr.Timeout), ReplyTTLExpired},
		{streamerr.New(streamerr.BadAddress), ReplyGeneralFailure},
		{streamerr.New(streamerr.NoExit), ReplyGeneralFailure},
		{streamerr.New(streamerr.Destroyed), ReplyGeneralFailure},
		{streamerr.New(streamerr.Misc), ReplyGeneralFailure},
		{streamerr.New(streamerr.ProtocolError), ReplyGeneralFailure},
		{streamerr.New(streamerr.ResourceLimit), ReplyGeneralFailure},
		{streamerr.New(streamerr.Done), ReplyGeneralFailure},
		{fmt.Errorf("circuit: extend: %w", streamerr.New(streamerr.ConnRefused)), ReplyConnectionRefused},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), ReplyTTLExpired},
		{errors.New("something else"), ReplyGeneralFailure},
	}
	for i, tt := range tests {
		errs[fmt.Sprintf("r%d.invalid:80", i)] = tt.err
		if got := ReplyCode(tt.err); got != tt.want {
			t.Errorf("ReplyCode(%v) = %#x, want %#x", tt.err, got, tt.want)
		}
	}
	if ReplyCode(nil) != ReplySucceeded {
		t.Errorf("ReplyCode(nil) != 0")
	}

	d := &fakeDialer{fn: func(_ context.Context, target string) (net.Conn, error) {
		if err, ok := errs[target]; ok {
			return nil, err
		}
		return nil, errors.New("unexpected target")
	}}
	proxy := startProxy(t, &Server{Dialer: d})
	for i, tt := range tests {
		c, code := connect(t, proxy, AtypDomain, fmt.Appendf(nil, "r%d.invalid", i), 80)
		if code != tt.want {
			t.Errorf("%v: reply %#x, want %#x", tt.err, code, tt.want)
		}
		expectClosed(t, c)
	}
}

func TestDialTimeout(t *testing.T) {
	d := &fakeDialer{fn: func(ctx context.Context, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	proxy := startProxy(t, &Server{Dialer: d, DialTimeout: 50 * time.Millisecond})
	c, code := connect(t, proxy, AtypIPv4, []byte{192, 0, 2, 1}, 80)
	if code != ReplyTTLExpired {
		t.Fatalf("reply %#x, want TTL expired", code)
	}
	expectClosed(t, c)
}

func TestUnsupportedRequests(t *testing.T) {
	d := &fakeDialer{fn: func(context.Context, string) (net.Conn, error) {
		return nil, errors.New("must not dial")
	}}
	proxy := startProxy(t, &Server{Dialer: d})

	for _, tt := range []struct {
		name string
		cmd  byte
		atyp byte
		addr []byte
		port uint16
		want byte
	}{
		{"BIND", CmdBind, AtypIPv4, []byte{127, 0, 0, 1}, 80, ReplyCommandNotSupported},
		{"UDP ASSOCIATE", CmdUDPAssociate, AtypIPv4, []byte{0, 0, 0, 0}, 0, ReplyCommandNotSupported},
		{"unknown command", 0x09, AtypDomain, []byte("example.invalid"), 80, ReplyCommandNotSupported},
		{"bad domain", CmdConnect, AtypDomain, []byte("bad name"), 80, ReplyGeneralFailure},
		{"domain with port", CmdConnect, AtypDomain, []byte("example.invalid:81"), 80, ReplyGeneralFailure},
		{"IPv6 zone", CmdConnect, AtypDomain, []byte("fe80::1%eth0"), 80, ReplyGeneralFailure},
		{"port 0", CmdConnect, AtypDomain, []byte("example.invalid"), 0, ReplyGeneralFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialProxy(t, proxy)
			greet(t, c, MethodNoAuth)
			if code := sendRequest(t, c, tt.cmd, tt.atyp, tt.addr, tt.port); code != tt.want {
				t.Fatalf("reply %#x, want %#x", code, tt.want)
			}
			expectClosed(t, c)
		})
	}

	t.Run("bad address type", func(t *testing.T) {
		c := dialProxy(t, proxy)
		greet(t, c, MethodNoAuth)
		write(t, c, []byte{5, CmdConnect, 0, 0x05, 1, 2, 3, 4, 0, 80})
		r := readN(t, c, 10)
		if r[1] != ReplyAddressNotSupported {
			t.Fatalf("reply %#x, want 0x08", r[1])
		}
		expectClosed(t, c)
	})
	t.Run("no acceptable method", func(t *testing.T) {
		c := dialProxy(t, proxy)
		if m := greet(t, c, 0x01, 0x80); m != MethodNoAcceptable {
			t.Fatalf("method %#x, want 0xff", m)
		}
		expectClosed(t, c)
	})
	t.Run("SOCKS4", func(t *testing.T) {
		c := dialProxy(t, proxy)
		write(t, c, []byte{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0})
		expectClosed(t, c)
	})
	t.Run("bad request version", func(t *testing.T) {
		c := dialProxy(t, proxy)
		greet(t, c, MethodNoAuth)
		write(t, c, []byte{4, CmdConnect, 0, AtypIPv4, 1, 2, 3, 4, 0, 80})
		expectClosed(t, c)
	})
	t.Run("bad auth version", func(t *testing.T) {
		c := dialProxy(t, proxy)
		greet(t, c, MethodUserPass)
		write(t, c, []byte{5, 1, 'a', 1, 'b'})
		if r := readN(t, c, 2); r[1] == 0 {
			t.Fatalf("auth status %#x, want failure", r[1])
		}
		expectClosed(t, c)
	})
	if n := len(d.Calls()); n != 0 {
		t.Fatalf("Dialer called %d times for rejected requests", n)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	proxy := startProxy(t, &Server{Dialer: &fakeDialer{}, HandshakeTimeout: 100 * time.Millisecond})
	c := dialProxy(t, proxy)
	write(t, c, []byte{5, 1}) // half a greeting, then silence
	start := time.Now()
	expectClosed(t, c)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("closed after %v", el)
	}
}

func TestEarlyDataAfterRequest(t *testing.T) {
	be := startBackend(t, echo)
	proxy := startProxy(t, &Server{Dialer: &fakeDialer{backend: be.Addr()}})
	c := dialProxy(t, proxy)
	// Greeting, request and data in one write, as optimistic clients do.
	msg := append([]byte{5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 1, 0, 80}, "early"...)
	write(t, c, msg)
	if r := readN(t, c, 2); r[1] != MethodNoAuth {
		t.Fatalf("method %#x", r[1])
	}
	if r := readN(t, c, 10); r[1] != ReplySucceeded {
		t.Fatalf("reply %#x", r[1])
	}
	if got := readN(t, c, 5); string(got) != "early" {
		t.Fatalf("echo %q", got)
	}
}

func TestCloseWithActiveConnections(t *testing.T) {
	be := startBackend(t, echo)
	entered := make(chan struct{}, 1)
	d := &fakeDialer{backend: be.Addr(), fn: func(ctx context.Context, target string) (net.Conn, error) {
		if target == "blocked.invalid:80" {
			entered <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, nil
	}}
	s := &Server{Dialer: d}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(l) }()
	proxy := l.Addr().String()

	var clients []net.Conn
	for range 3 {
		c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 80)
		if code != ReplySucceeded {
			t.Fatalf("reply %#x", code)
		}
		write(t, c, []byte("x"))
		readN(t, c, 1)
		clients = append(clients, c)
	}
	mid := dialProxy(t, proxy) // stuck in the handshake
	write(t, mid, []byte{5, 1, 0})
	readN(t, mid, 2)
	clients = append(clients, mid)

	blocked := dialProxy(t, proxy) // stuck in DialStream
	greet(t, blocked, MethodNoAuth)
	write(t, blocked, append([]byte{5, 1, 0, 3, 15}, "blocked.invalid\x00\x50"...))
	select {
	case <-entered:
	case <-time.After(ioTimeout):
		t.Fatal("dial not started")
	}

	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(ioTimeout):
		t.Fatal("Close did not return")
	}
	if err := <-serveErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	for _, c := range clients {
		if _, err := io.ReadAll(c); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("client not closed")
			}
		}
	}
	// The blocked client gets a failure reply or a closed connection.
	if b, _ := io.ReadAll(blocked); len(b) != 0 && (len(b) != 10 || b[1] == ReplySucceeded) {
		t.Fatalf("blocked client read % x", b)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Serve(mustListen(t)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
	for _, c := range append(clients, blocked) {
		c.Close()
	}
	be.Close()
	goleak.VerifyNone(t)
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCloseConcurrentWithServe(t *testing.T) {
	for range 20 {
		s := &Server{Dialer: &fakeDialer{}}
		var wg sync.WaitGroup
		for range 3 {
			l := mustListen(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Serve(l); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Serve returned %v", err)
				}
			}()
		}
		s.Close()
		wg.Wait()
	}
}

func TestServeNilDialer(t *testing.T) {
	var s Server
	if err := s.Serve(mustListen(t)); err == nil || !strings.HasPrefix(err.Error(), "socks: ") {
		t.Fatalf("Serve with nil Dialer returned %v", err)
	}
	s.Close()
}

func TestLogsNoAddresses(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	d := &fakeDialer{fn: func(context.Context, string) (net.Conn, error) {
		return nil, fmt.Errorf("dial secret.invalid: %w", streamerr.New(streamerr.ConnRefused))
	}}
	proxy := startProxy(t, &Server{Dialer: d, Logf: logf})
	c, code := connect(t, proxy, AtypDomain, []byte("secret.invalid"), 80)
	if code != ReplyConnectionRefused {
		t.Fatalf("reply %#x", code)
	}
	expectClosed(t, c)
	c2 := dialProxy(t, proxy)
	write(t, c2, []byte{4, 1})
	expectClosed(t, c2)

	deadline := time.Now().Add(ioTimeout)
	for {
		mu.Lock()
		n := len(lines)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) < 2 {
		t.Fatalf("logged %q, want two lines", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "secret") || strings.Contains(l, "127.0.0.1") {
			t.Errorf("log line leaks an address: %q", l)
		}
	}
}
