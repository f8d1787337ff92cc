package socks

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ioTimeout bounds every blocking step of a test.
const ioTimeout = 10 * time.Second

type dialCall struct {
	target, isolation string
}

// fakeDialer records its calls and, unless fn decides otherwise, dials the
// loopback backend directly.
type fakeDialer struct {
	backend string
	// fn, when set, is asked first; a nil conn and nil error fall through
	// to dialing the backend.
	fn func(ctx context.Context, target string) (net.Conn, error)

	mu    sync.Mutex
	calls []dialCall
}

func (d *fakeDialer) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, dialCall{target, isolation})
	d.mu.Unlock()
	if d.fn != nil {
		c, err := d.fn(ctx, target)
		if c != nil || err != nil {
			return c, err
		}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.backend)
}

func (d *fakeDialer) Calls() []dialCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dialCall(nil), d.calls...)
}

// backend is a loopback TCP server running handler on each connection.
type backend struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startBackend(t *testing.T, handler func(net.Conn)) *backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{l: l, conns: make(map[net.Conn]struct{})}
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
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				handler(c)
			}()
		}
	}()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) Addr() string { return b.l.Addr().String() }

func (b *backend) Close() {
	b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo copies everything back and half-closes on EOF.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

// hashAfterEOF reads until EOF, then writes the SHA-256 of what it read.
func hashAfterEOF(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	_, _ = c.Write(h.Sum(nil))
}

// startProxy starts a Server on loopback and closes it at cleanup, checking
// that Serve returned net.ErrClosed.
func startProxy(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve returned %v, want net.ErrClosed", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return after Close")
		}
	})
	return l.Addr().String()
}

// The SOCKS5 client below writes the protocol bytes by hand, independently
// of the package's codec.

func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// greet sends a greeting and returns the method the server chose.
func greet(t *testing.T, c net.Conn, methods ...byte) byte {
	t.Helper()
	write(t, c, append([]byte{5, byte(len(methods))}, methods...))
	r := readN(t, c, 2)
	if r[0] != 5 {
		t.Fatalf("method selection version %#x", r[0])
	}
	return r[1]
}

// authUserPass runs RFC 1929 and returns the status byte.
func authUserPass(t *testing.T, c net.Conn, user, pass string) byte {
	t.Helper()
	b := []byte{1, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	b = append(b, pass...)
	write(t, c, b)
	r := readN(t, c, 2)
	if r[0] != 1 {
		t.Fatalf("auth reply version %#x", r[0])
	}
	return r[1]
}

// sendRequest writes a request and returns the reply code, checking that
// BND.ADDR:PORT is 0.0.0.0:0.
func sendRequest(t *testing.T, c net.Conn, cmd, atyp byte, addr []byte, port uint16) byte {
	t.Helper()
	b := []byte{5, cmd, 0, atyp}
	if atyp == AtypDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, port)
	write(t, c, b)
	r := readN(t, c, 10)
	want := []byte{5, r[1], 0, 1, 0, 0, 0, 0, 0, 0}
	if string(r) != string(want) {
		t.Fatalf("reply % x, want % x", r, want)
	}
	return r[1]
}

// connect runs a no-auth handshake and a CONNECT, returning the reply code.
func connect(t *testing.T, proxy string, atyp byte, addr []byte, port uint16) (net.Conn, byte) {
	t.Helper()
	c := dialProxy(t, proxy)
	if m := greet(t, c, MethodNoAuth); m != MethodNoAuth {
		t.Fatalf("method %#x, want no-auth", m)
	}
	return c, sendRequest(t, c, CmdConnect, atyp, addr, port)
}

// expectClosed checks that the server closes c without sending more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if err == nil {
		t.Fatalf("read %d bytes (%#x), want the connection closed", n, b[0])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed: %v", err)
	}
}
