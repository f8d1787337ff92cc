package proxytest

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// MemProxy is a proxy Server listening on an in-memory network
// (overlay/transport/memnet) instead of loopback, for tests that run under
// testing/synctest: there, time is virtual, so a test can wait out a
// timeout of seconds at once, but a real socket would block outside the
// bubble.
type MemProxy struct {
	client *memnet.Host
	addr   string
}

// StartMemProxy runs s.Serve on a memnet listener. At t's cleanup it
// closes s and checks that Serve returned net.ErrClosed. Under synctest,
// call it inside the bubble.
func StartMemProxy(t testing.TB, s Server) *MemProxy {
	t.Helper()
	var n memnet.Network
	l, err := n.Host("10.0.0.1").Listen(":1080")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
	})
	return &MemProxy{client: n.Host("10.0.0.2"), addr: l.Addr().String()}
}

// Dial connects a new client to the proxy; the connection is closed at t's
// cleanup.
func (p *MemProxy) Dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := p.client.Dial(context.Background(), p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// PipeEcho is a Dialer.Fn for tests under synctest: every dial gets an
// in-memory stream (net.Pipe) whose far end echoes what it reads until the
// stream is closed.
func PipeEcho(context.Context, string) (net.Conn, error) {
	c, far := net.Pipe()
	go func() {
		defer far.Close()
		_, _ = io.Copy(far, far)
	}()
	return c, nil
}

// Drip writes b to c one byte at a time, every interval, like a slowloris
// client, and returns how many bytes it wrote before a write failed (len(b)
// if none did).
func Drip(c net.Conn, b []byte, interval time.Duration) int {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return i
		}
		time.Sleep(interval)
	}
	return len(b)
}

// Closed is what ReadUntilClosed sends when the connection ends.
type Closed struct {
	Read  []byte        // everything read before the end
	After time.Duration // from the call to the end
}

// ReadUntilClosed reads c in a new goroutine until it ends (EOF or an
// error) and then sends what it read, and when, on the returned channel.
func ReadUntilClosed(c net.Conn) <-chan Closed {
	start := time.Now()
	done := make(chan Closed, 1)
	go func() {
		b, _ := io.ReadAll(c)
		done <- Closed{b, time.Since(start)}
	}()
	return done
}
