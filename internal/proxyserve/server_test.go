package proxyserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// front adapts a Server, its Options and a Handler to proxytest.Server, as
// the front ends in apps/ do.
type front struct {
	srv  Server
	opts Options
	h    Handler
}

func (f *front) Serve(l net.Listener) error { return f.srv.Serve(l, f.opts, f.h) }
func (f *front) Close() error               { return f.srv.Close() }

// newFront returns a front named "test" that dials with d.
func newFront(d Dialer, h Handler) *front {
	return &front{opts: Options{Name: "test", Dialer: d}, h: h}
}

// waitOptions waits until a Serve of f has recorded its Options.
func waitOptions(t *testing.T, f *front) {
	t.Helper()
	deadline := time.Now().Add(proxytest.IOTimeout)
	for f.srv.options().Dialer == nil {
		if time.Now().After(deadline) {
			t.Fatal("Serve did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseWithActiveConnections(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	stall := proxytest.NewStall()
	dialer := &proxytest.Dialer{Backend: be.Addr(), Fn: func(ctx context.Context, target string) (net.Conn, error) {
		if target == "blocked.invalid:80" {
			return stall.Dial(ctx, target)
		}
		return nil, nil // dial the backend
	}}
	dialErr := make(chan error, 1)
	f := newFront(dialer, nil)
	f.h = func(ctx context.Context, c net.Conn) {
		var cmd [1]byte
		if _, err := io.ReadFull(c, cmd[:]); err != nil {
			return
		}
		switch cmd[0] {
		case 'e': // echo until the connection ends
			_, _ = c.Write(cmd[:])
			_, _ = io.Copy(c, c)
		case 's': // an outgoing stream, spliced
			remote, err := f.srv.Dial(ctx, "echo.invalid:7", "")
			if err != nil {
				return
			}
			defer f.srv.Release(remote)
			_, _ = c.Write(cmd[:])
			Splice(c, c, remote)
		case 'd': // a dial that only Close ends
			_, err := f.srv.Dial(ctx, "blocked.invalid:80", "")
			dialErr <- err
		}
	}
	// Two listeners, both served until Close.
	proxy1, serveErr1 := proxytest.Serve(t, f)
	proxy2, serveErr2 := proxytest.Serve(t, f)

	var clients []net.Conn
	for i, cmd := range []string{"e", "s", "e", "s"} {
		c := proxytest.Dial(t, []string{proxy1, proxy2}[i%2])
		if _, err := io.WriteString(c, cmd+"ping"); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != cmd+"ping" {
			t.Fatalf("%s: read %q, %v", cmd, b, err)
		}
		clients = append(clients, c)
	}
	idle := proxytest.Dial(t, proxy1) // accepted, handler waiting for input
	clients = append(clients, idle)
	blocked := proxytest.Dial(t, proxy2)
	if _, err := io.WriteString(blocked, "d"); err != nil {
		t.Fatal(err)
	}
	stall.WaitEntered(t)
	clients = append(clients, blocked)

	proxytest.CloseWithin(t, f, serveErr1)
	if err := <-serveErr2; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Serve returned %v", err)
	}
	if err := <-dialErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("in-flight dial ended with %v, want context.Canceled", err)
	}
	proxytest.ExpectAllClosed(t, clients...)
	// A dial that completes after Close gives its stream back closed.
	if c, err := f.srv.Dial(context.Background(), "echo.invalid:7", ""); !errors.Is(err, net.ErrClosed) || c != nil {
		t.Fatalf("Dial after Close = %v, %v; want net.ErrClosed", c, err)
	}
	proxytest.VerifyClosedServer(t, f, clients, be)
}

func TestCloseBeforeServe(t *testing.T) {
	var s Server
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l := proxytest.Listen(t)
	o := Options{Name: "test", Dialer: &proxytest.Dialer{}}
	if err := s.Serve(l, o, func(context.Context, net.Conn) { t.Error("handler ran") }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed by Serve: Accept returned %v", err)
	}
}

func TestServeWithoutDialer(t *testing.T) {
	var s Server
	l := proxytest.Listen(t)
	err := s.Serve(l, Options{Name: "test"}, func(context.Context, net.Conn) { t.Error("handler ran") })
	if err == nil || err.Error() != "test: Server.Dialer is nil" {
		t.Fatalf("Serve without a Dialer returned %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed by Serve: Accept returned %v", err)
	}
	if _, err := s.Dial(context.Background(), "a.invalid:1", ""); err == nil {
		t.Fatal("Dial without a Dialer succeeded")
	}
	s.Close()
}

func TestCloseConcurrentWithServe(t *testing.T) {
	proxytest.CloseConcurrentWithServe(t, func() proxytest.Server {
		return newFront(&proxytest.Dialer{}, func(context.Context, net.Conn) {})
	})
}

// flakyListener fails Accept with err until it is closed.
type flakyListener struct {
	net.Listener
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) { return nil, l.err }

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Temporary() bool { return true }

func TestAcceptRetry(t *testing.T) {
	var rec proxytest.LogRecorder
	f := newFront(&proxytest.Dialer{}, func(context.Context, net.Conn) {})
	f.opts.Logf = rec.Logf
	l := &flakyListener{Listener: proxytest.Listen(t), err: tempErr{}}
	serveErr := make(chan error, 1)
	go func() { serveErr <- f.Serve(l) }()

	lines := rec.WaitLines(3)
	want := []string{"test: accept failed, retrying in 5ms", "test: accept failed, retrying in 10ms", "test: accept failed, retrying in 20ms"}
	if len(lines) < 3 || strings.Join(lines[:3], "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged %q, want %q first", lines, want)
	}
	proxytest.CloseWithin(t, f, serveErr)

	// Any other Accept error ends Serve with that error.
	fatal := errors.New("listener broken")
	f = newFront(&proxytest.Dialer{}, func(context.Context, net.Conn) {})
	if err := f.Serve(&flakyListener{Listener: proxytest.Listen(t), err: fatal}); err != fatal {
		t.Fatalf("Serve returned %v, want %v", err, fatal)
	}
	f.Close()
}

func TestTimeouts(t *testing.T) {
	for _, tt := range []struct{ d, want time.Duration }{
		{0, DefaultHandshakeTimeout},
		{-time.Second, DefaultHandshakeTimeout},
		{time.Second, time.Second},
	} {
		f := newFront(&proxytest.Dialer{}, nil)
		f.opts.HandshakeTimeout = tt.d
		_, serveErr := proxytest.Serve(t, f)
		waitOptions(t, f)
		if got := f.srv.HandshakeTimeout(); got != tt.want {
			t.Errorf("HandshakeTimeout %v gives %v, want %v", tt.d, got, tt.want)
		}
		proxytest.CloseWithin(t, f, serveErr)
	}

	// DialTimeout bounds Dial; the failure is named without an address.
	stall := proxytest.NewStall()
	f := newFront(&proxytest.Dialer{Fn: stall.Dial}, nil)
	f.opts.DialTimeout = 20 * time.Millisecond
	_, serveErr := proxytest.Serve(t, f)
	waitOptions(t, f)
	_, err := f.srv.Dial(context.Background(), "slow.invalid:1", "")
	if !errors.Is(err, context.DeadlineExceeded) || DialFailure(err) != "connect timed out" {
		t.Fatalf("Dial past DialTimeout: %v (%q)", err, DialFailure(err))
	}
	proxytest.CloseWithin(t, f, serveErr)
}

func TestDialFailure(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "connect timed out"},
		{fmt.Errorf("dial: %w", context.Canceled), "canceled"},
		{fmt.Errorf("dial secret.invalid: %w", streamerr.New(streamerr.ConnRefused)), "connection refused"},
		{streamerr.New(streamerr.Timeout), "connect timed out"},
		{errors.New("dial secret.invalid: boom"), "failed"},
		{fmt.Errorf("dial: %w", specialname.ErrAddressChecksum), specialname.ErrAddressChecksum.Error()},
		{fmt.Errorf("dial: %w", hserr.ClientAuthWrong), hserr.ClientAuthWrong.Error()},
		{fmt.Errorf("dial: %w", specialname.ErrBadName), specialname.ErrBadName.Error()},
		{fmt.Errorf("overlay: %w: %w", specialname.ErrNameNotFound, errors.New("names: secret.dark not found")), "name not registered"},
	} {
		if got := DialFailure(tt.err); got != tt.want {
			t.Errorf("DialFailure(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// Dial refuses a target whose host must stay on the client before it asks
// the Dialer, and a target that is not host:port.
func TestDialRefusesSpecialNames(t *testing.T) {
	d := &proxytest.Dialer{Fn: proxytest.MustNotDial}
	f := newFront(d, nil)
	_, serveErr := proxytest.Serve(t, f)
	waitOptions(t, f)
	for _, tt := range []struct {
		target string
		want   error
	}{
		{"abc_def.dark:80", specialname.ErrBadName},
		{"A.B.C.D.E.DARK.:443", specialname.ErrBadName},
		{"dark:80", specialname.ErrBadName},
		{"x.onion:80", specialname.ErrForeignName},
		{"localhost:8080", specialname.ErrLocalName},
		{"abcdef.dark", streamerr.New(streamerr.BadAddress)},
	} {
		c, err := f.srv.Dial(context.Background(), tt.target, "")
		if c != nil || !errors.Is(err, tt.want) {
			t.Errorf("Dial(%q) = %v, %v; want %v", tt.target, c, err, tt.want)
		}
	}
	_, mistyped := proxytest.DarkHosts()
	for class, host := range mistyped {
		c, err := f.srv.Dial(context.Background(), net.JoinHostPort(host, "443"), "")
		if c != nil || !specialname.IsMistyped(err) || !errors.Is(err, streamerr.New(streamerr.BadAddress)) {
			t.Errorf("Dial(%s host) = %v, %v; want a mistyped .dark host", class, c, err)
		}
	}
	if calls := d.Calls(); len(calls) != 0 {
		t.Errorf("Dialer called for %q", calls)
	}
	proxytest.CloseWithin(t, f, serveErr)
}

// Dial passes a valid .dark address and every valid .dark name to the
// Dialer, unchanged: the node reaches hidden services and resolves names
// itself (spec/streams.md §7). The Dialer's error comes back as it is.
func TestDialPassesDarkNames(t *testing.T) {
	notFound := fmt.Errorf("overlay: %w", specialname.ErrNameNotFound)
	d := &proxytest.Dialer{Fn: func(context.Context, string) (net.Conn, error) { return nil, notFound }}
	f := newFront(d, nil)
	_, serveErr := proxytest.Serve(t, f)
	waitOptions(t, f)
	valid, _ := proxytest.DarkHosts()
	var targets []string
	for _, host := range append([]string{valid, "www." + strings.ToUpper(valid) + "."}, proxytest.DarkNames()...) {
		targets = append(targets, net.JoinHostPort(host, "80"))
	}
	for _, target := range targets {
		if c, err := f.srv.Dial(context.Background(), target, "iso"); c != nil || err != notFound {
			t.Errorf("Dial(%q) = %v, %v; want the Dialer's error", target, c, err)
		}
	}
	calls := d.Calls()
	if len(calls) != len(targets) {
		t.Fatalf("Dialer calls %q, want %q", calls, targets)
	}
	for i, call := range calls {
		if call.Target != targets[i] || call.Isolation != "iso" {
			t.Errorf("Dialer call %d: %q, want %q with isolation iso", i, call, targets[i])
		}
	}
	proxytest.CloseWithin(t, f, serveErr)
}
