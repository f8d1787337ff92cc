package proxytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// IOTimeout bounds every blocking step of a test.
const IOTimeout = 10 * time.Second

// DialCall is one call to Dialer.DialStream.
type DialCall struct {
	Target, Isolation string
}

// Dialer is a fake overlay dialer: it records its calls and, unless Fn
// decides otherwise, dials Backend directly over loopback TCP. It has the
// DialStream method of the front ends' Dialer interfaces.
type Dialer struct {
	// Backend is the "host:port" dialed when Fn is nil or falls through.
	Backend string
	// Fn, when set, is asked first; a nil conn and nil error fall through
	// to dialing Backend.
	Fn func(ctx context.Context, target string) (net.Conn, error)
	// Wrap, when set, wraps each connection dialed to Backend (Stream,
	// NoHalfClose).
	Wrap func(net.Conn) net.Conn

	mu    sync.Mutex
	calls []DialCall
}

// DialStream records (target, isolation) and opens the connection.
func (d *Dialer) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, DialCall{target, isolation})
	d.mu.Unlock()
	if d.Fn != nil {
		c, err := d.Fn(ctx, target)
		if c != nil || err != nil {
			return c, err
		}
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", d.Backend)
	if err != nil || d.Wrap == nil {
		return c, err
	}
	return d.Wrap(c), nil
}

// Calls returns a copy of the calls so far, in order.
func (d *Dialer) Calls() []DialCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// Backend is a loopback TCP server running a handler on each connection.
type Backend struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartBackend starts a Backend that runs handler on every connection, with
// a deadline of IOTimeout, and closes the connection when handler returns.
// The Backend is closed at t's cleanup.
func StartBackend(t testing.TB, handler func(net.Conn)) *Backend {
	t.Helper()
	l := Listen(t)
	b := &Backend{l: l, conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(IOTimeout))
				handler(c)
			}()
		}
	}()
	t.Cleanup(b.Close)
	return b
}

// Addr returns the Backend's "127.0.0.1:port".
func (b *Backend) Addr() string { return b.l.Addr().String() }

// Close stops the Backend, closes its connections and waits for its
// handlers to return. It may be called more than once.
func (b *Backend) Close() {
	b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Echo is a Backend handler that copies everything back and half-closes on
// EOF.
func Echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// HashAfterEOF is a Backend handler that reads until EOF, then writes the
// SHA-256 of what it read.
func HashAfterEOF(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	_, _ = c.Write(h.Sum(nil))
}

// Listen returns a TCP listener on a free loopback port. The caller owns it.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Server is what StartProxy runs: the front ends' Server types.
type Server interface {
	Serve(l net.Listener) error
	Close() error
}

// StartProxy runs s.Serve on a loopback listener and returns its address.
// At t's cleanup it closes s and checks that Serve returned net.ErrClosed.
func StartProxy(t testing.TB, s Server) string {
	t.Helper()
	l := Listen(t)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve returned %v, want net.ErrClosed", err)
			}
		case <-time.After(IOTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return l.Addr().String()
}

// Dial connects to addr with a deadline of IOTimeout on the connection,
// which is closed at t's cleanup.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(IOTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// CloseWithin calls s.Close and fails t unless it returns within
// IOTimeout and serveErr (the result of s.Serve) then yields net.ErrClosed.
func CloseWithin(t testing.TB, s Server, serveErr <-chan error) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(IOTimeout):
		t.Fatal("Close did not return")
	}
	if err := <-serveErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

// LogRecorder keeps every line logged through its Logf. It is safe for
// concurrent use.
type LogRecorder struct {
	mu    sync.Mutex
	lines []string
}

// Logf formats and keeps one line; it has the safelog.Logf signature.
func (r *LogRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Lines returns a copy of the lines so far.
func (r *LogRecorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// WaitLines waits up to IOTimeout for at least n lines and returns the
// lines so far.
func (r *LogRecorder) WaitLines(n int) []string {
	deadline := time.Now().Add(IOTimeout)
	for {
		lines := r.Lines()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// CheckNoAddresses fails t for every log line that holds "127.0.0.1" (the
// address of every loopback connection in these tests) or one of secrets.
func CheckNoAddresses(t testing.TB, lines []string, secrets ...string) {
	t.Helper()
	for _, l := range lines {
		for _, s := range append(secrets, "127.0.0.1") {
			if strings.Contains(l, s) {
				t.Errorf("log line leaks an address: %q", l)
				break
			}
		}
	}
}

// Serve runs s.Serve on a loopback listener in the background and returns
// the listener's address and a channel that receives Serve's result. Unlike
// StartProxy it leaves closing s to the test (see CloseWithin); s is still
// closed at t's cleanup, which is harmless after the test closed it.
func Serve(t testing.TB, s Server) (addr string, serveErr <-chan error) {
	t.Helper()
	l := Listen(t)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return l.Addr().String(), errc
}

// ExpectAllClosed reads every connection in conns to its end and fails t if
// one of them is still open when its deadline (set by Dial) passes.
func ExpectAllClosed(t testing.TB, conns ...net.Conn) {
	t.Helper()
	for _, c := range conns {
		var ne net.Error
		if _, err := io.ReadAll(c); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("client connection left open by Close")
		}
	}
}

// VerifyClosedServer checks what holds once s has been closed: a second
// Close returns nil and Serve returns net.ErrClosed at once. It then closes
// conns and backends and checks with goleak that no goroutine is left.
func VerifyClosedServer(t testing.TB, s Server, conns []net.Conn, backends ...*Backend) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Serve(Listen(t)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	for _, b := range backends {
		b.Close()
	}
	goleak.VerifyNone(t)
}

// ExpectServeRefused checks that s.Serve fails at once with an error whose
// text starts with prefix (a Server without its Dialer), then closes s.
func ExpectServeRefused(t testing.TB, s Server, prefix string) {
	t.Helper()
	if err := s.Serve(Listen(t)); err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("Serve with nil Dialer returned %v", err)
	}
	s.Close()
}

// MustNotDial is a Dialer.Fn for tests in which every request must be
// refused before it is dialed: it fails every call.
func MustNotDial(context.Context, string) (net.Conn, error) {
	return nil, errors.New("must not dial")
}

// FailWith returns a Dialer.Fn that fails a dial to target with errs[target]
// and any other dial with an "unexpected target" error.
func FailWith(errs map[string]error) func(context.Context, string) (net.Conn, error) {
	return func(_ context.Context, target string) (net.Conn, error) {
		if err, ok := errs[target]; ok {
			return nil, err
		}
		return nil, errors.New("unexpected target")
	}
}

// Stall is a dial that never completes by itself: Dial blocks until its
// context is canceled (by a dial timeout or by Close) and returns the
// context's error. Create it with NewStall.
type Stall struct {
	entered chan struct{}
}

// NewStall returns a Stall.
func NewStall() *Stall { return &Stall{entered: make(chan struct{}, 1)} }

// Dial has the Dialer.Fn signature.
func (s *Stall) Dial(ctx context.Context, _ string) (net.Conn, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// WaitEntered waits up to IOTimeout for a call to Dial to start.
func (s *Stall) WaitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(IOTimeout):
		t.Fatal("dial not started")
	}
}

// SecretRefused is a Dialer.Fn that fails every dial with a streamerr
// ConnRefused error whose text names "secret.invalid", for checking that
// log lines keep what dial errors hold out (see CheckNoAddresses).
func SecretRefused(context.Context, string) (net.Conn, error) {
	return nil, fmt.Errorf("dial secret.invalid: %w", streamerr.New(streamerr.ConnRefused))
}

// HalfCloseAndCheckHash writes n random bytes to c, half-closes c, reads r
// (c, or a reader over it holding bytes already buffered) to its end, and
// checks that what came back is the SHA-256 of the bytes sent: the answer
// of a HashAfterEOF backend. As that backend answers only after EOF, this
// also checks that the half-close went through while the other direction
// stayed open. c must be a *net.TCPConn.
func HalfCloseAndCheckHash(t testing.TB, c net.Conn, r io.Reader, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Fatalf("backend saw SHA-256 %x, want %x", got, want)
	}
}

// CloseConcurrentWithServe starts three Serve loops on a new Server and
// closes it while they start, twenty times over, and checks that every
// Serve returns net.ErrClosed (whether it started before Close or not) and
// that Close waits for none of them forever.
func CloseConcurrentWithServe(t testing.TB, newServer func() Server) {
	t.Helper()
	for range 20 {
		s := newServer()
		var wg sync.WaitGroup
		for range 3 {
			l := Listen(t)
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

// stream is what Stream returns.
type stream struct{ c net.Conn }

// Stream wraps a TCP connection so that it looks to Splice like a circuit
// stream: a net.Conn with CloseWrite (passed on to c) but without the
// ReadFrom and WriteTo fast paths of *net.TCPConn.
func Stream(c net.Conn) net.Conn { return stream{c} }

func (s stream) Read(p []byte) (int, error)         { return s.c.Read(p) }
func (s stream) Write(p []byte) (int, error)        { return s.c.Write(p) }
func (s stream) Close() error                       { return s.c.Close() }
func (s stream) CloseWrite() error                  { return s.c.(*net.TCPConn).CloseWrite() }
func (s stream) LocalAddr() net.Addr                { return s.c.LocalAddr() }
func (s stream) RemoteAddr() net.Addr               { return s.c.RemoteAddr() }
func (s stream) SetDeadline(t time.Time) error      { return s.c.SetDeadline(t) }
func (s stream) SetReadDeadline(t time.Time) error  { return s.c.SetReadDeadline(t) }
func (s stream) SetWriteDeadline(t time.Time) error { return s.c.SetWriteDeadline(t) }

// ErrNoHalfClose is what CloseWrite of a NoHalfClose connection returns.
var ErrNoHalfClose = errors.New("proxytest: half-close not supported")

// noHalfClose is what NoHalfClose returns.
type noHalfClose struct{ stream }

// NoHalfClose wraps a TCP connection like Stream, but its CloseWrite fails
// with ErrNoHalfClose and does nothing, like a stream whose exit cannot
// half-close.
func NoHalfClose(c net.Conn) net.Conn { return noHalfClose{stream{c}} }

func (noHalfClose) CloseWrite() error { return ErrNoHalfClose }

// AnswerAfterEOF returns a Backend handler that reads the request until
// EOF (the client's half-close), then writes the n-byte Answer to it and
// closes. It needs a proxy that passes the half-close on and keeps the
// other direction open.
func AnswerAfterEOF(n int) func(net.Conn) {
	return func(c net.Conn) {
		req, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = io.Copy(c, Answer(req, n))
	}
}

// Answer is the deterministic n-byte answer to req: ChaCha8 keyed with
// SHA-256(req).
func Answer(req []byte, n int) io.Reader {
	return io.LimitReader(mrand.NewChaCha8(sha256.Sum256(req)), int64(n))
}

// RequestAndCheckAnswer writes req to c, except its first written bytes
// (which the caller has sent already), half-closes c (a *net.TCPConn),
// reads r (c, or a reader over it holding bytes already buffered) to its
// end and checks that it got exactly Answer(req, n): the answer of an
// AnswerAfterEOF(n) backend.
func RequestAndCheckAnswer(t testing.TB, c net.Conn, r io.Reader, req string, written, n int) {
	t.Helper()
	if _, err := io.WriteString(c, req[written:]); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	m, err := io.Copy(got, r)
	if err != nil || m != int64(n) {
		t.Fatalf("received %d of %d bytes after the half-close: %v", m, n, err)
	}
	want := sha256.New()
	_, _ = io.Copy(want, Answer([]byte(req), n))
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the answer differs from what the backend sent")
	}
}
