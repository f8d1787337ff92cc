package link

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// The timer tests run under synctest, so minutes of virtual time pass in
// milliseconds and the defaults themselves are tested.

// bubblePair is newPair inside a synctest bubble (memnet only).
func bubblePair(t *testing.T, n *memnet.Network, cliCfg, srvCfg *Config, hcli, hsrv *testHandler) *pair {
	t.Helper()
	ln, err := n.Host("10.0.0.2").Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := dialPair(ln, func(ctx context.Context) (net.Conn, error) {
		return n.Host("10.0.0.1").Dial(ctx, ln.Addr().String())
	}, cliCfg, srvCfg, hcli, hsrv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cli.Close()
		p.srv.Close()
	})
	return p
}

// With the defaults (KeepAlive 30s, IdleTimeout 3m), an otherwise idle
// link stays up because both sides send PADDING.
func TestKeepAliveKeepsLinkUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := bubblePair(t, &memnet.Network{}, nil, &Config{Static: newKey(t)}, nil, nil)
		time.Sleep(10 * time.Minute)
		select {
		case <-p.cli.Done():
			t.Fatalf("client link closed: %v", p.cli.Err())
		case <-p.srv.Done():
			t.Fatalf("server link closed: %v", p.srv.Err())
		default:
		}
		st := p.cli.Stats()
		if st.Messages < 15 || p.srv.Stats().CellsReceived < 15 {
			t.Errorf("after 10m: %d messages sent, %d cells received; want about 20 PADDING cells",
				st.Messages, p.srv.Stats().CellsReceived)
		}
		p.cli.Close()
		p.srv.Close()
	})
}

// Without keepalives from the peer, the link closes after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := bubblePair(t, &memnet.Network{},
			&Config{KeepAlive: time.Hour},
			&Config{Static: newKey(t), KeepAlive: time.Hour, IdleTimeout: time.Hour}, nil, nil)
		err := p.hcli.waitClosedBubble()
		if !errors.Is(err, ErrIdle) || !errors.Is(p.cli.Err(), ErrIdle) {
			t.Fatalf("Closed(%v), want ErrIdle", err)
		}
		if d := time.Since(start); d != DefaultIdleTimeout {
			t.Errorf("closed after %v, want %v", d, DefaultIdleTimeout)
		}
		if err := p.hsrv.waitClosedBubble(); !errors.Is(err, ErrPeerClosed) {
			t.Errorf("peer: Closed(%v)", err)
		}
		t.Log(p.cli.Err())
	})
}

// Reads push the idle timeout back; short custom durations work.
func TestIdleTimeoutReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := bubblePair(t, &memnet.Network{},
			&Config{KeepAlive: time.Hour, IdleTimeout: time.Second},
			&Config{Static: newKey(t), KeepAlive: time.Hour}, nil, nil)
		start := time.Now()
		for range 5 {
			time.Sleep(900 * time.Millisecond)
			p.srv.Send(cell.New(1, cell.CmdRelay))
		}
		err := p.hcli.waitClosedBubble()
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("Closed(%v), want ErrIdle", err)
		}
		if d := time.Since(start); d != 5*900*time.Millisecond+time.Second {
			t.Errorf("closed after %v", d)
		}
		p.srv.Close()
	})
}

// A peer that stops reading (its handler blocks) makes our writes block;
// with the stall rule out of the way, the link closes after IdleTimeout
// with ErrWriteTimeout. The peer keeps sending PADDING, so it is not
// ErrIdle.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		block := newHandler(func(l *Link, c *cell.Cell) {
			c.Free()
			<-release
		})
		p := bubblePair(t, &memnet.Network{BufferSize: 16 << 10}, &Config{StallTimeout: time.Hour}, &Config{Static: newKey(t)}, nil, block)
		start := time.Now()
		for range 200 {
			if err := p.cli.Send(cell.New(1, cell.CmdRelay)); err != nil {
				t.Fatal(err)
			}
		}
		err := p.hcli.waitClosedBubble()
		if !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("Closed(%v), want ErrWriteTimeout", err)
		}
		if d := time.Since(start); d < DefaultIdleTimeout*3/4 || d > DefaultIdleTimeout {
			t.Errorf("closed after %v", d)
		}
	})
}

// A peer that never answers fails the handshake after HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &memnet.Network{}
		ln, _ := n.Host("10.0.0.2").Listen(":1")
		defer ln.Close()
		conn, err := n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent, _ := ln.Accept()
		defer silent.Close()
		start := time.Now()
		_, err = Dial(context.Background(), conn, nil, newKey(t).Public(), nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("Dial: %v, want a timeout", err)
		}
		if d := time.Since(start); d != DefaultHandshakeTimeout {
			t.Errorf("gave up after %v", d)
		}

		// A shorter ctx deadline wins, and so does a shorter HandshakeTimeout.
		conn, _ = n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		silent2, _ := ln.Accept()
		defer silent2.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start = time.Now()
		_, err = Accept(ctx, silent2, &Config{Static: newKey(t)}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Accept: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("ctx deadline: gave up after %v", d)
		}
		conn.Close()

		conn, _ = n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		silent3, _ := ln.Accept()
		defer silent3.Close()
		start = time.Now()
		_, err = Dial(context.Background(), conn, &Config{HandshakeTimeout: 3 * time.Second}, newKey(t).Public(), nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Dial: %v", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("HandshakeTimeout 3s: gave up after %v", d)
		}
	})
}

// Cancelling ctx aborts a handshake at once.
func TestHandshakeCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &memnet.Network{}
		ln, _ := n.Host("10.0.0.2").Listen(":1")
		defer ln.Close()
		conn, _ := n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		silent, _ := ln.Accept()
		defer silent.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := Dial(ctx, conn, nil, newKey(t).Public(), nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("gave up after %v", d)
		}
		// An already cancelled ctx fails before any I/O.
		conn, _ = n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		if _, err := Dial(ctx, conn, nil, newKey(t).Public(), nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Dial: %v", err)
		}
	})
}

// waitClosedBubble waits for Closed inside a synctest bubble, where a
// missing call shows up as a deadlock.
func (h *testHandler) waitClosedBubble() error { return <-h.closed }

// Short custom durations: KeepAlive below the peer's IdleTimeout keeps
// the link up far past IdleTimeout.
func TestKeepAliveShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{KeepAlive: 100 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
		srvCfg := cfg
		srvCfg.Static = newKey(t)
		p := bubblePair(t, &memnet.Network{}, &cfg, &srvCfg, nil, nil)
		time.Sleep(5 * time.Second)
		if p.cli.Err() != nil || p.srv.Err() != nil {
			t.Fatalf("closed: %v, %v", p.cli.Err(), p.srv.Err())
		}
	})
}

// The same on real sockets and the real clock, and without keepalives
// the link does go idle.
func TestKeepAliveTCP(t *testing.T) {
	cfg := Config{KeepAlive: 20 * time.Millisecond, IdleTimeout: 150 * time.Millisecond}
	srvCfg := cfg
	srvCfg.Static = newKey(t)
	p := newPair(t, networks[1].listen, &cfg, &srvCfg, nil, nil)
	time.Sleep(600 * time.Millisecond)
	if p.cli.Err() != nil || p.srv.Err() != nil {
		t.Fatalf("closed: %v, %v", p.cli.Err(), p.srv.Err())
	}

	srvCfg.KeepAlive = time.Hour
	p = newPair(t, networks[1].listen, &cfg, &srvCfg, nil, nil)
	if err := p.hcli.waitClosed(t); !errors.Is(err, ErrIdle) {
		t.Fatalf("Closed(%v), want ErrIdle", err)
	}
}
