package memnet_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

var _ transport.Transport = (*memnet.Host)(nil)

// pair returns both ends of a new conn from 10.0.0.1 to 10.0.0.2, closed at
// the end of the test.
func pair(t testing.TB, n *memnet.Network) (client, server net.Conn) {
	t.Helper()
	ln, err := n.Host("10.0.0.2").Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err = n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// async runs f in a goroutine and returns a channel with its error. The
// test waits for it before it ends.
func async(t testing.TB, f func() error) <-chan error {
	t.Helper()
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ch <- f()
	}()
	t.Cleanup(func() { <-done })
	return ch
}

// recv waits for an error from ch, failing the test after a while.
func recv(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a blocked call")
		return nil
	}
}

// notDone asserts that nothing arrives on ch for a short while.
func notDone(t testing.TB, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}
