package link

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

func TestHandshake(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			cliKey, srvKey := newKey(t), newKey(t)
			p := newPair(t, nw.listen,
				&Config{Static: cliKey, Hello: []byte("client hello")},
				&Config{Static: srvKey, Hello: []byte("relay descriptor")}, nil, nil)
			if got := p.cli.PeerStatic(); got != srvKey.Public() {
				t.Errorf("client sees peer key %x, want %x", got, srvKey.Public())
			}
			if got := p.srv.PeerStatic(); got != cliKey.Public() {
				t.Errorf("server sees peer key %x, want %x", got, cliKey.Public())
			}
			if got := string(p.cli.PeerHello()); got != "relay descriptor" {
				t.Errorf("client PeerHello = %q", got)
			}
			if got := string(p.srv.PeerHello()); got != "client hello" {
				t.Errorf("server PeerHello = %q", got)
			}
			if !p.cli.Initiator() || p.srv.Initiator() {
				t.Errorf("Initiator() = %v, %v", p.cli.Initiator(), p.srv.Initiator())
			}
			if p.cli.RemoteAddr().String() != p.srv.LocalAddr().String() {
				t.Errorf("RemoteAddr %v, server LocalAddr %v", p.cli.RemoteAddr(), p.srv.LocalAddr())
			}
			if p.cli.Err() != nil || p.srv.Err() != nil {
				t.Errorf("Err on open link: %v, %v", p.cli.Err(), p.srv.Err())
			}
		})
	}
}

// A client without a Static key gets a fresh one per link, and an empty
// HELLO arrives as empty.
func TestHandshakeEphemeralClient(t *testing.T) {
	srvKey := newKey(t)
	p1 := newPair(t, memnetListen, nil, &Config{Static: srvKey}, nil, nil)
	p2 := newPair(t, memnetListen, &Config{}, &Config{Static: srvKey}, nil, nil)
	if p1.srv.PeerStatic() == p2.srv.PeerStatic() {
		t.Error("two clients without Static share a key")
	}
	if len(p1.cli.PeerHello()) != 0 || len(p1.srv.PeerHello()) != 0 {
		t.Errorf("empty HELLO arrived as %q, %q", p1.cli.PeerHello(), p1.srv.PeerHello())
	}
}

// TestCellsInOrder sends 64 MiB of cells one way and checks that they
// arrive in order and byte-identical.
func TestCellsInOrder(t *testing.T) {
	const n = (64 << 20) / cell.Size
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			if testing.Short() && nw.name == "tcp" {
				t.Skip("short")
			}
			r := newReceiver(n)
			p := newPair(t, nw.listen, nil, &Config{Static: newKey(t)}, nil, newHandler(r.handle))
			sent := sendStream(t, p.cli, newStream(1), n, r)
			got := r.wait(t)
			if !bytes.Equal(sent, got) {
				t.Fatalf("SHA-256 of received cells %x, sent %x", got, sent)
			}
			st := p.cli.Stats()
			if st.CellsSent != n || p.srv.Stats().CellsReceived < n {
				t.Errorf("stats: sent %d, received %d, want %d", st.CellsSent, p.srv.Stats().CellsReceived, n)
			}
			t.Logf("%d cells in %d messages and %d writes", st.CellsSent, st.Messages, st.Writes)
			if st.Messages > n/2 {
				t.Errorf("%d messages for %d cells: the writer does not batch", st.Messages, n)
			}
		})
	}
}

func TestBothDirections(t *testing.T) {
	const n = (16 << 20) / cell.Size
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			rs, rc := newReceiver(n), newReceiver(n)
			p := newPair(t, nw.listen, nil, &Config{Static: newKey(t)}, newHandler(rc.handle), newHandler(rs.handle))
			var wg sync.WaitGroup
			var up, down []byte
			wg.Go(func() { up = sendStream(t, p.cli, newStream(1), n, rs) })
			wg.Go(func() { down = sendStream(t, p.srv, newStream(2), n, rc) })
			wg.Wait()
			if got := rs.wait(t); !bytes.Equal(got, up) {
				t.Error("client to server: cells differ")
			}
			if got := rc.wait(t); !bytes.Equal(got, down) {
				t.Error("server to client: cells differ")
			}
		})
	}
}

func TestNetworkMismatch(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			ln, dial := nw.listen(t)
			defer ln.Close()
			srvKey := newKey(t)
			_, _, cliErr, srvErr := dialBoth(ln, dial, &Config{Network: "testnet"}, &Config{Static: srvKey}, srvKey.Public(), nil, nil)
			for side, err := range map[string]error{"initiator": cliErr, "responder": srvErr} {
				if !errors.Is(err, ErrNetworkMismatch) {
					t.Errorf("%s: err = %v, want ErrNetworkMismatch", side, err)
					continue
				}
				if !strings.Contains(err.Error(), "peer is on a different network") {
					t.Errorf("%s: unclear message %q", side, err)
				}
				t.Logf("%s: %v", side, err)
			}
		})
	}
}

func TestWrongPeerKey(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			ln, dial := nw.listen(t)
			defer ln.Close()
			_, _, cliErr, srvErr := dialBoth(ln, dial, nil, &Config{Static: newKey(t)}, newKey(t).Public(), nil, nil)
			if !errors.Is(cliErr, ErrHandshake) || !strings.Contains(cliErr.Error(), "wrong key?") {
				t.Errorf("initiator: err = %v, want ErrHandshake (wrong key?)", cliErr)
			}
			if !errors.Is(srvErr, ErrHandshake) {
				t.Errorf("responder: err = %v, want ErrHandshake", srvErr)
			}
			t.Logf("initiator: %v; responder: %v", cliErr, srvErr)
		})
	}
}

// Both sides must agree on the network name even with one left empty.
func TestDefaultNetwork(t *testing.T) {
	srvKey := newKey(t)
	newPair(t, memnetListen, &Config{Network: DefaultNetwork}, &Config{Static: srvKey}, nil, nil)
	ln, dial := memnetListen(t)
	defer ln.Close()
	_, _, cliErr, srvErr := dialBoth(ln, dial, &Config{Network: "other"}, &Config{Static: srvKey}, srvKey.Public(), nil, nil)
	if !errors.Is(cliErr, ErrNetworkMismatch) || !errors.Is(srvErr, ErrNetworkMismatch) {
		t.Errorf("errs = %v, %v", cliErr, srvErr)
	}
}

func TestConfigErrors(t *testing.T) {
	ln, dial := memnetListen(t)
	defer ln.Close()
	srvKey := newKey(t)
	largest := MaxHelloLen - 2*HelloFieldHeaderLen - Protocols(protover.Set{}).Len()
	_, _, cliErr, srvErr := dialBoth(ln, dial, &Config{Hello: make([]byte, largest+1)}, &Config{Static: srvKey}, srvKey.Public(), nil, nil)
	if cliErr == nil || !strings.Contains(cliErr.Error(), "Config.Hello") {
		t.Errorf("oversized Hello: err = %v", cliErr)
	}
	if srvErr == nil {
		t.Error("responder succeeded without a peer")
	}
	ln, dial = memnetListen(t)
	defer ln.Close()
	_, _, _, srvErr = dialBoth(ln, dial, nil, &Config{}, srvKey.Public(), nil, nil)
	if srvErr == nil || !strings.Contains(srvErr.Error(), "Config.Static") {
		t.Errorf("Accept without Static: err = %v", srvErr)
	}
	// The largest Hello is fine.
	big := bytes.Repeat([]byte{7}, largest)
	p := newPair(t, memnetListen, &Config{Hello: big}, &Config{Static: srvKey, Hello: big}, nil, nil)
	if !bytes.Equal(p.srv.PeerHello(), big) || !bytes.Equal(p.cli.PeerHello(), big) {
		t.Error("largest HELLO payload garbled")
	}
}

func TestCloseIdempotent(t *testing.T) {
	p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := p.cli.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	p.cli.Close()
	select {
	case <-p.cli.Done():
	default:
		t.Fatal("Done not closed after Close returned")
	}
	if err := p.hcli.waitClosed(t); err != nil {
		t.Errorf("Closed(%v) after a local Close, want nil", err)
	}
	if p.cli.Err() != nil {
		t.Errorf("Err() = %v after a local Close", p.cli.Err())
	}
	if err := p.hsrv.waitClosed(t); !errors.Is(err, ErrPeerClosed) {
		t.Errorf("peer: Closed(%v), want ErrPeerClosed", err)
	}
	if !errors.Is(p.srv.Err(), ErrPeerClosed) {
		t.Errorf("peer: Err() = %v", p.srv.Err())
	}
	if err := p.cli.Send(cell.New(1, cell.CmdRelay)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	p.srv.Close()
	if n := p.hcli.closedN.Load() + p.hsrv.closedN.Load(); n != 2 {
		t.Errorf("Closed called %d times in all, want 2", n)
	}
}

// A handler closes its own link with Shutdown, which does not wait.
func TestCloseFromHandler(t *testing.T) {
	h := newHandler(func(l *Link, c *cell.Cell) {
		c.Free()
		l.Shutdown()
		l.Shutdown()
	})
	p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, h)
	if err := p.cli.Send(cell.New(1, cell.CmdRelay)); err != nil {
		t.Fatal(err)
	}
	if err := h.waitClosed(t); err != nil {
		t.Errorf("Closed(%v), want nil", err)
	}
	<-p.srv.Done()
	if err := p.hcli.waitClosed(t); !errors.Is(err, ErrPeerClosed) {
		t.Errorf("peer: Closed(%v)", err)
	}
}

// Shutdown from inside Closed is harmless too.
func TestCloseFromClosed(t *testing.T) {
	h := &closeInClosed{done: make(chan struct{})}
	srvKey := newKey(t)
	ln, dial := memnetListen(t)
	defer ln.Close()
	cli, srv, err1, err2 := dialBoth(ln, dial, nil, &Config{Static: srvKey}, srvKey.Public(), h, nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	srv.Close()
	<-h.done
	cli.Close()
}

type closeInClosed struct{ done chan struct{} }

func (h *closeInClosed) HandleCell(l *Link, c *cell.Cell) { c.Free() }
func (h *closeInClosed) Closed(l *Link, err error) {
	l.Shutdown()
	close(h.done)
}

func TestSendHelloRefused(t *testing.T) {
	p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, nil)
	if err := p.cli.Send(cell.New(0, cell.CmdHello)); err == nil {
		t.Fatal("Send(HELLO) accepted")
	}
	// The link is still fine.
	r := newReceiver(1)
	p2 := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, newHandler(r.handle))
	p2.cli.Send(cell.New(1, cell.CmdRelay))
	r.wait(t)
}

func TestPaddingNotDelivered(t *testing.T) {
	r := newReceiver(2)
	p := newPair(t, memnetListen, nil, &Config{Static: newKey(t)}, nil, newHandler(r.handle))
	p.cli.Send(cell.New(1, cell.CmdRelay))
	p.cli.Send(cell.New(0, cell.CmdPadding))
	p.cli.Send(cell.New(2, cell.CmdDestroy))
	r.wait(t)
}

// TestQueueFull: the peer stops reading, so the writer blocks and
// circuit 1's queue grows until Send refuses its cells at
// MaxCircuitQueue. Another circuit's cells are still accepted, circuit 1
// stays refused (poisoned) until a DESTROY, which is accepted, and the
// link stays open and works again once the peer reads.
func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var once sync.Once
		got := make(map[uint32]int)
		var mu sync.Mutex
		block := newHandler(func(l *Link, c *cell.Cell) {
			mu.Lock()
			got[c.Circ()]++
			mu.Unlock()
			c.Free()
			<-release
		})
		p := bubblePair(t, &memnet.Network{BufferSize: 16 << 10}, &Config{MaxCircuitQueue: 64},
			&Config{Static: newKey(t)}, nil, block)
		defer once.Do(func() { close(release) })
		var sendErr error
		sent := 0
		for sent < 1_000_000 {
			if sendErr = p.cli.Send(cell.New(1, cell.CmdRelay)); sendErr != nil {
				break
			}
			sent++
			synctest.Wait() // let the writer take what it can
		}
		if !errors.Is(sendErr, ErrQueueFull) {
			t.Fatalf("Send after %d cells: %v, want ErrQueueFull", sent, sendErr)
		}
		if n := p.cli.CircuitQueueLen(1); n != 64 {
			t.Errorf("circuit 1 holds %d cells when full, want 64", n)
		}
		t.Logf("circuit 1 full after %d cells (%d queued, the rest taken by the writer)", sent, p.cli.CircuitQueueLen(1))
		select {
		case <-p.cli.Done():
			t.Fatalf("a full queue closed the link: %v", p.cli.Err())
		default:
		}
		// Circuit 2 is not affected; circuit 1 is refused until DESTROY.
		for i := range 10 {
			if err := p.cli.Send(cell.New(2, cell.CmdRelay)); err != nil {
				t.Fatalf("circuit 2, cell %d: %v", i, err)
			}
		}
		if err := p.cli.Send(cell.New(1, cell.CmdRelay)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("circuit 1 after it lost a cell: %v, want ErrQueueFull", err)
		}
		if err := p.cli.Send(cell.New(1, cell.CmdDestroy)); err != nil {
			t.Errorf("DESTROY on a full circuit: %v", err)
		}
		if n := p.cli.CircuitQueueLen(1); n != 1 {
			t.Errorf("circuit 1 holds %d cells after DESTROY, want 1: the DESTROY replaced its queue", n)
		}
		st := p.cli.Stats()
		if st.QueueFull != 2 || st.CellsDropped != 64 {
			t.Errorf("QueueFull %d, CellsDropped %d; want 2 and 64", st.QueueFull, st.CellsDropped)
		}
		// The peer reads again: everything queued arrives, in order per
		// circuit, and circuit 1 works again.
		once.Do(func() { close(release) })
		synctest.Wait()
		if n := p.cli.QueueLen(); n != 0 {
			t.Errorf("QueueLen %d after the peer read", n)
		}
		if err := p.cli.Send(cell.New(1, cell.CmdRelay)); err != nil {
			t.Errorf("circuit 1 after DESTROY: %v", err)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if got[2] != 10 || got[1] != sent-64+2 {
			t.Errorf("peer got %d cells of circuit 1 and %d of circuit 2; want %d and 10", got[1], got[2], sent-64+2)
		}
		p.cli.Close()
		p.srv.Close()
	})
}
