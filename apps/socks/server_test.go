package socks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func TestConnectAddressTypes(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	d := &proxytest.Dialer{Backend: be.Addr()}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})

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
		{"dark-like domain", AtypDomain, []byte("dark.example.invalid"), 8080, "dark.example.invalid:8080"},
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
			if got := calls[i]; got != (proxytest.DialCall{Target: tt.target}) {
				t.Fatalf("DialStream(%q, %q), want (%q, \"\")", got.Target, got.Isolation, tt.target)
			}
		})
	}
}

func TestLargeTransferAndHalfClose(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.HashAfterEOF)
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr()}})

	c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 80)
	if code != ReplySucceeded {
		t.Fatalf("reply %#x", code)
	}
	// The backend answers only after EOF, so this also checks that the
	// client's half-close reaches it while the other direction stays open.
	proxytest.HalfCloseAndCheckHash(t, c, c, 3<<20+17)
}

// A client that sends its request and shuts its write side still gets a
// large response whole: the half-close crosses the proxy (as END on a
// circuit stream) and the other direction stays open. The remote is a
// stream-like CloseWriter, and then a TCP connection.
func TestHalfCloseLargeResponse(t *testing.T) {
	const size = 8 << 20
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(size))
	for name, wrap := range map[string]func(net.Conn) net.Conn{"stream": proxytest.Stream, "tcp": nil} {
		t.Run(name, func(t *testing.T) {
			proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr(), Wrap: wrap}})
			c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 7)
			if code != ReplySucceeded {
				t.Fatalf("reply %#x", code)
			}
			proxytest.RequestAndCheckAnswer(t, c, c, "GET /big HTTP/1.0\r\n\r\n", 0, size)
		})
	}
}

// A remote that cannot half-close ends the stream at the client's EOF, as
// before half-close existed: the client's connection closes, nothing
// hangs.
func TestHalfCloseUnsupported(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(1<<20))
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr(), Wrap: proxytest.NoHalfClose}})
	c, code := connect(t, proxy, AtypDomain, []byte("example.invalid"), 7)
	if code != ReplySucceeded {
		t.Fatalf("reply %#x", code)
	}
	write(t, c, []byte("request"))
	_ = c.(*net.TCPConn).CloseWrite()
	if n, err := io.Copy(io.Discard, c); n == 1<<20 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read %d bytes, %v", n, err)
	}
}

func TestUserPassIsolation(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	d := &proxytest.Dialer{Backend: be.Addr()}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})

	pairs := [][2]string{{"a", "bc"}, {"ab", "c"}, {"", ""}, {"a", "bc"}, {strings.Repeat("u", 255), strings.Repeat("p", 255)}}
	for _, p := range pairs {
		c := proxytest.Dial(t, proxy)
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
		keys[i] = c.Isolation
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

// replyCodeTests is the reply code of each dial error.
var replyCodeTests = []struct {
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
	{streamerr.New(streamerr.Unsupported), ReplyGeneralFailure},
	{streamerr.New(streamerr.Closed), ReplyGeneralFailure},
	{fmt.Errorf("circuit: extend: %w", streamerr.New(streamerr.ConnRefused)), ReplyConnectionRefused},
	{errors.Join(errors.New("first"), streamerr.New(streamerr.ExitPolicy)), ReplyNotAllowed},
	{fmt.Errorf("dial: %w", context.DeadlineExceeded), ReplyTTLExpired},
	{errors.New("something else"), ReplyGeneralFailure},
	{specialname.ErrAddressChecksum, ReplyHSBadAddress},
	{fmt.Errorf("dial: %w", specialname.ErrAddressLength), ReplyHSBadAddress},
	{specialname.ErrHiddenService, ReplyHSDescNotFound},
	{fmt.Errorf("dial: %w", specialname.ErrHiddenService), ReplyHSDescNotFound},
	{specialname.ErrForeignName, ReplyHostUnreachable},
	{specialname.ErrBadName, ReplyHSBadAddress},
	{fmt.Errorf("overlay: bad address: %w", specialname.ErrBadName), ReplyHSBadAddress},
	{specialname.ErrNameNotFound, ReplyHSDescNotFound},
	{fmt.Errorf("overlay: name: %w: %w", specialname.ErrNameNotFound, errors.New("names: not found")), ReplyHSDescNotFound},
	{specialname.ErrName, ReplyHostUnreachable},
	{fmt.Errorf("dial: %w", specialname.ErrName), ReplyHostUnreachable},
}

func TestReplyCodes(t *testing.T) {
	errs := map[string]error{}
	tests := replyCodeTests
	for i, tt := range tests {
		errs[fmt.Sprintf("r%d.invalid:80", i)] = tt.err
		if got := ReplyCode(tt.err); got != tt.want {
			t.Errorf("ReplyCode(%v) = %#x, want %#x", tt.err, got, tt.want)
		}
	}
	if ReplyCode(nil) != ReplySucceeded {
		t.Errorf("ReplyCode(nil) != 0")
	}

	d := &proxytest.Dialer{Fn: proxytest.FailWith(errs)}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})
	for i, tt := range tests {
		c, code := connect(t, proxy, AtypDomain, fmt.Appendf(nil, "r%d.invalid", i), 80)
		if code != tt.want {
			t.Errorf("%v: reply %#x, want %#x", tt.err, code, tt.want)
		}
		expectClosed(t, c)
	}
}

// Every stream error reason has a deliberate reply code: a reason added to
// streamerr fails this test until it is placed in the table of
// TestReplyCodes (and in the package documentation).
func TestReplyCodeForEveryReason(t *testing.T) {
	mapped := map[streamerr.Reason]byte{}
	for _, tt := range replyCodeTests {
		var se *streamerr.Error
		if errors.As(tt.err, &se) && tt.err == error(se) {
			mapped[se.Reason] = tt.want
		}
	}
	for r := range 256 {
		reason := streamerr.Reason(r)
		if strings.HasPrefix(reason.String(), "reason ") {
			continue // not a defined reason
		}
		if _, ok := mapped[reason]; !ok {
			t.Errorf("reason %d (%v) has no reply code in TestReplyCodes", r, reason)
		}
	}
}

// A target under .dark (and the other names of specialname) is refused
// before the Dialer is asked (a mistyped .dark name with 0xF6, the
// other names with 0x04 host unreachable), whatever its letter case, with
// or without a trailing dot, and with or without authentication; the log
// line does not name it. TestDarkAddressReplies checks each .dark case.
func TestSpecialNamesRefused(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, Logf: rec.Logf})
	hosts := []string{
		"abcdef_secret.dark", "ABCDEF_SECRET.DARK", "abcdef_secret.dark.", "www.abcdef_secret.Dark",
		"abcdefsecret.onion", "localhost", "printer.local", "nas.home.arpa", "jira.corp.internal",
	}
	for _, host := range hosts {
		c, code := connect(t, proxy, AtypDomain, []byte(host), 443)
		want := byte(ReplyHostUnreachable)
		if strings.Contains(strings.ToLower(host), ".dark") {
			want = ReplyHSBadAddress
		}
		if code != want {
			t.Errorf("%s: reply %#x, want %#x", host, code, want)
		}
		expectClosed(t, c)
	}
	c := proxytest.Dial(t, proxy)
	greet(t, c, MethodUserPass)
	authUserPass(t, c, "u", "p")
	if code := sendRequest(t, c, CmdConnect, AtypDomain, []byte("abcdef_secret.dark"), 80); code != ReplyHSBadAddress {
		t.Errorf("with authentication: reply %#x, want 0xF6", code)
	}
	expectClosed(t, c)
	if calls := d.Calls(); len(calls) != 0 {
		t.Fatalf("Dialer called for %q", calls)
	}
	lines := rec.WaitLines(len(hosts) + 1)
	if len(lines) != len(hosts)+1 || !strings.Contains(lines[0], "mistyped .dark name: ") {
		t.Errorf("log lines %q", lines)
	}
	proxytest.CheckNoAddresses(t, lines, "abcdef_secret", "printer", "jira")
}

func TestDialTimeout(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.NewStall().Dial}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d, DialTimeout: 50 * time.Millisecond})
	c, code := connect(t, proxy, AtypIPv4, []byte{192, 0, 2, 1}, 80)
	if code != ReplyTTLExpired {
		t.Fatalf("reply %#x, want TTL expired", code)
	}
	expectClosed(t, c)
}

func TestUnsupportedRequests(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	proxy := proxytest.StartProxy(t, &Server{Dialer: d})

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
			c := proxytest.Dial(t, proxy)
			greet(t, c, MethodNoAuth)
			if code := sendRequest(t, c, tt.cmd, tt.atyp, tt.addr, tt.port); code != tt.want {
				t.Fatalf("reply %#x, want %#x", code, tt.want)
			}
			expectClosed(t, c)
		})
	}

	t.Run("bad address type", func(t *testing.T) {
		c := proxytest.Dial(t, proxy)
		greet(t, c, MethodNoAuth)
		write(t, c, []byte{5, CmdConnect, 0, 0x05, 1, 2, 3, 4, 0, 80})
		r := readN(t, c, 10)
		if r[1] != ReplyAddressNotSupported {
			t.Fatalf("reply %#x, want 0x08", r[1])
		}
		expectClosed(t, c)
	})
	t.Run("no acceptable method", func(t *testing.T) {
		c := proxytest.Dial(t, proxy)
		if m := greet(t, c, 0x01, 0x80); m != MethodNoAcceptable {
			t.Fatalf("method %#x, want 0xff", m)
		}
		expectClosed(t, c)
	})
	t.Run("SOCKS4", func(t *testing.T) {
		c := proxytest.Dial(t, proxy)
		write(t, c, []byte{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0})
		expectClosed(t, c)
	})
	t.Run("bad request version", func(t *testing.T) {
		c := proxytest.Dial(t, proxy)
		greet(t, c, MethodNoAuth)
		write(t, c, []byte{4, CmdConnect, 0, AtypIPv4, 1, 2, 3, 4, 0, 80})
		expectClosed(t, c)
	})
	t.Run("bad auth version", func(t *testing.T) {
		c := proxytest.Dial(t, proxy)
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
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{}, HandshakeTimeout: 100 * time.Millisecond})
	c := proxytest.Dial(t, proxy)
	write(t, c, []byte{5, 1}) // half a greeting, then silence
	start := time.Now()
	expectClosed(t, c)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("closed after %v", el)
	}
}

// A client that drips its greeting, authentication and request one byte a
// second (a slowloris) is closed once DefaultHandshakeTimeout, at most 5 s,
// has passed since the accept, before its request is complete; a client
// that connects meanwhile is served, and its tunnel, idle for longer than
// the timeout, stays open: the deadline ends with the handshake.
func TestSlowHandshakeClosed(t *testing.T) {
	if DefaultHandshakeTimeout > 5*time.Second {
		t.Fatalf("DefaultHandshakeTimeout is %v, more than 5 s", DefaultHandshakeTimeout)
	}
	synctest.Test(t, func(t *testing.T) {
		d := &proxytest.Dialer{Fn: proxytest.PipeEcho}
		p := proxytest.StartMemProxy(t, &Server{Dialer: d})

		slow := p.Dial(t)
		req := []byte{5, 1, MethodUserPass, 1, 1, 'u', 1, 'p', 5, CmdConnect, 0, AtypDomain, 15}
		req = append(append(req, "example.invalid"...), 0, 80)
		closed := proxytest.ReadUntilClosed(slow)
		dripped := make(chan int, 1)
		go func() { dripped <- proxytest.Drip(slow, req, time.Second) }()

		time.Sleep(2 * time.Second)
		c := p.Dial(t)
		if code := connectOn(t, c, AtypDomain, []byte("example.invalid"), 443); code != ReplySucceeded {
			t.Fatalf("normal client: reply %#x", code)
		}
		time.Sleep(2 * DefaultHandshakeTimeout)
		write(t, c, []byte("ping"))
		if got := readN(t, c, 4); string(got) != "ping" {
			t.Fatalf("tunnel echo %q", got)
		}

		select {
		case r := <-closed:
			if r.After > 5*time.Second {
				t.Errorf("slow client closed after %v, want at most 5 s", r.After)
			}
			// Method selection and the authentication status at most; no
			// reply to a request that never completed.
			if len(r.Read) > 4 {
				t.Errorf("slow client read % x", r.Read)
			}
		case <-time.After(time.Minute):
			t.Fatal("slow client not closed")
		}
		if n := <-dripped; n >= len(req) {
			t.Errorf("the whole request (%d bytes) was accepted", n)
		}
		if calls := d.Calls(); len(calls) != 1 {
			t.Errorf("dial calls %q, want the normal client's only", calls)
		}
	})
}

func TestEarlyDataAfterRequest(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Backend: be.Addr()}})
	c := proxytest.Dial(t, proxy)
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
	be := proxytest.StartBackend(t, proxytest.Echo)
	stall := proxytest.NewStall()
	d := &proxytest.Dialer{Backend: be.Addr(), Fn: func(ctx context.Context, target string) (net.Conn, error) {
		if target == "blocked.invalid:80" {
			return stall.Dial(ctx, target)
		}
		return nil, nil
	}}
	s := &Server{Dialer: d}
	proxy, serveErr := proxytest.Serve(t, s)

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
	mid := proxytest.Dial(t, proxy) // stuck in the handshake
	write(t, mid, []byte{5, 1, 0})
	readN(t, mid, 2)
	clients = append(clients, mid)

	blocked := proxytest.Dial(t, proxy) // stuck in DialStream
	greet(t, blocked, MethodNoAuth)
	write(t, blocked, append([]byte{5, 1, 0, 3, 15}, "blocked.invalid\x00\x50"...))
	stall.WaitEntered(t)

	proxytest.CloseWithin(t, s, serveErr)
	proxytest.ExpectAllClosed(t, clients...)
	// The blocked client gets a failure reply or a closed connection.
	if b, _ := io.ReadAll(blocked); len(b) != 0 && (len(b) != 10 || b[1] == ReplySucceeded) {
		t.Fatalf("blocked client read % x", b)
	}
	proxytest.VerifyClosedServer(t, s, append(clients, blocked), be)
}

func TestCloseConcurrentWithServe(t *testing.T) {
	proxytest.CloseConcurrentWithServe(t, func() proxytest.Server { return &Server{Dialer: &proxytest.Dialer{}} })
}

func TestServeNilDialer(t *testing.T) {
	proxytest.ExpectServeRefused(t, &Server{}, "socks: ")
}

func TestLogsNoAddresses(t *testing.T) {
	var rec proxytest.LogRecorder
	proxy := proxytest.StartProxy(t, &Server{Dialer: &proxytest.Dialer{Fn: proxytest.SecretRefused}, Logf: rec.Logf})
	c, code := connect(t, proxy, AtypDomain, []byte("secret.invalid"), 80)
	if code != ReplyConnectionRefused {
		t.Fatalf("reply %#x", code)
	}
	expectClosed(t, c)
	c2 := proxytest.Dial(t, proxy)
	write(t, c2, []byte{4, 1})
	expectClosed(t, c2)

	lines := rec.WaitLines(2)
	if len(lines) < 2 {
		t.Fatalf("logged %q, want two lines", lines)
	}
	proxytest.CheckNoAddresses(t, lines, "secret")
}
