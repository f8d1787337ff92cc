package proxyserve

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// front adapts a Server and a Handler to proxytest.Server, as the front
// ends in apps/ do.
type front struct {
	srv  Server
	h    Handler
	logf safelog.Logf
}

func (f *front) Serve(l net.Listener) error { return f.srv.Serve(l, f.h, f.logf) }
func (f *front) Close() error               { return f.srv.Close() }

func TestCloseWithActiveConnections(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.Echo)
	stall := proxytest.NewStall()
	dialErr := make(chan error, 1)
	f := &front{}
	f.h = func(ctx context.Context, c net.Conn) {
		var cmd [1]byte
		if _, err := io.ReadFull(c, cmd[:]); err != nil {
			return
		}
		switch cmd[0] {
		case 'e': // echo until the connection ends
			_, _ = c.Write(cmd[:])
			_, _ = io.Copy(c, c)
		case 's': // a tracked outgoing stream, spliced
			var nd net.Dialer
			remote, err := nd.DialContext(ctx, "tcp", be.Addr())
			if err != nil {
				return
			}
			if !f.srv.Track(remote) {
				remote.Close()
				return
			}
			defer f.srv.Untrack(remote)
			_, _ = c.Write(cmd[:])
			Splice(c, c, remote)
		case 'd': // a dial that only Close ends
			_, err := stall.Dial(ctx, "blocked.invalid:80")
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
	if f.srv.Track(clients[0]) {
		t.Fatal("Track after Close reported true")
	}
	proxytest.VerifyClosedServer(t, f, clients, be)
}

func TestCloseBeforeServe(t *testing.T) {
	var s Server
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l := proxytest.Listen(t)
	if err := s.Serve(l, func(context.Context, net.Conn) { t.Error("handler ran") }, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed by Serve: Accept returned %v", err)
	}
}

func TestTrackBeforeServe(t *testing.T) {
	var s Server
	a, b := net.Pipe()
	defer b.Close()
	if !s.Track(a) {
		t.Fatal("Track on a new Server reported false")
	}
	s.Close()
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("tracked conn not closed by Close: write returned %v", err)
	}
}

func TestCloseConcurrentWithServe(t *testing.T) {
	proxytest.CloseConcurrentWithServe(t, func() proxytest.Server {
		return &front{h: func(context.Context, net.Conn) {}}
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
	f := &front{h: func(context.Context, net.Conn) {}, logf: safelog.Logf(rec.Logf).Prefix("test: ")}
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
	f = &front{h: func(context.Context, net.Conn) {}}
	if err := f.Serve(&flakyListener{Listener: proxytest.Listen(t), err: fatal}); err != fatal {
		t.Fatalf("Serve returned %v, want %v", err, fatal)
	}
	f.Close()
}

func TestTimeout(t *testing.T) {
	for _, tt := range []struct{ d, want time.Duration }{
		{0, time.Minute},
		{-time.Second, time.Minute},
		{time.Second, time.Second},
	} {
		if got := Timeout(tt.d, time.Minute); got != tt.want {
			t.Errorf("Timeout(%v, 1m) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
