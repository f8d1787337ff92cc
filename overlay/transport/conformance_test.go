package transport_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
	quictr "github.com/darkmatter/darkmatter/overlay/transport/quic"
)

// env is one implementation under test: a transport for the listening
// side, one for the dialing side, and the listen address to use.
type env struct {
	name       string
	dialer     transport.Transport
	listener   transport.Transport
	listenAddr string
}

// envs returns the implementations every conformance test runs on, so the
// same test covers loopback sockets and the in-memory network (STYLE.md
// §2.5, point 23).
func envs() []env {
	n := &memnet.Network{}
	qc := quictr.Config{HandshakeTimeout: time.Second}
	return []env{
		{"tcp", &transport.TCP{}, &transport.TCP{}, "127.0.0.1:0"},
		{"memnet", n.Host("10.0.0.1"), n.Host("10.0.0.2"), "10.0.0.2:0"},
		// A dial to a closed UDP port gets no answer, so it fails only
		// when the handshake times out: keep that short here.
		{"quic", &quictr.Transport{Config: qc}, &quictr.Transport{Config: qc}, "127.0.0.1:0"},
	}
}

func forEach(t *testing.T, f func(t *testing.T, e env)) {
	for _, e := range envs() {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// connect returns a listener and both ends of one conn, all closed when the
// test ends.
func connect(t *testing.T, e env) (ln net.Listener, client, server net.Conn) {
	t.Helper()
	ln, err := e.listener.Listen(e.listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err = e.dialer.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return ln, client, server
}

func TestConformanceEcho(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ln, c, s := connect(t, e)
		if c.RemoteAddr().String() != ln.Addr().String() {
			t.Errorf("client RemoteAddr %v, listener Addr %v", c.RemoteAddr(), ln.Addr())
		}
		if s.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("server RemoteAddr %v, client LocalAddr %v", s.RemoteAddr(), c.LocalAddr())
		}
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(s, s); s.Close() })
		const size = 4 << 20
		var sent [32]byte
		wg.Go(func() {
			h := sha256.New()
			io.CopyN(io.MultiWriter(c, h), rand.NewChaCha8([32]byte{7}), size)
			h.Sum(sent[:0])
			c.(interface{ CloseWrite() error }).CloseWrite()
		})
		h := sha256.New()
		k, err := io.Copy(h, c)
		wg.Wait()
		if err != nil || k != size || !bytes.Equal(h.Sum(nil), sent[:]) {
			t.Fatalf("echoed %d bytes, %v; hashes equal: %v", k, err, bytes.Equal(h.Sum(nil), sent[:]))
		}
	})
}

func TestConformanceCloseGivesEOF(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		_, c, s := connect(t, e)
		c.Write([]byte("bye"))
		c.Close()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "bye" {
			t.Errorf("read %q, %v", got, err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on closed conn: %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write on closed conn: %v", err)
		}
	})
}

func TestConformanceReadDeadline(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		_, c, _ := connect(t, e)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read past deadline: %v", err)
		}
	})
}

func TestConformanceListenerClose(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ln, err := e.listener.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if c != nil {
				c.Close()
			}
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
		if c, err := e.dialer.Dial(context.Background(), addr); err == nil {
			c.Close()
			t.Errorf("dial to a closed listener succeeded")
		}
	})
}

func TestConformanceDialCanceled(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ln, err := e.listener.Listen(e.listenAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := e.dialer.Dial(ctx, ln.Addr().String()); err == nil {
			c.Close()
			t.Error("dial with a cancelled context succeeded")
		}
	})
}
