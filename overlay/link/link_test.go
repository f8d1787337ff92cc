package link

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
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
			_, err := dialPair(ln, dial, &Config{Network: "testnet"}, &Config{Static: newKey(t)}, nil, nil)
			if !errors.Is(err, ErrNetworkMismatch) {
				t.Fatalf("err = %v, want ErrNetworkMismatch", err)
			}
			// dialPair reports the client's error first; check both.
			cliErr, srvErr := dialBoth(t, ln, dial, &Config{Network: "testnet"}, &Config{Static: newKey(t)})
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

// dialBoth runs one Dial against one Accept and returns both errors.
func dialBoth(t *testing.T, ln interface {
	Accept() (netConn, error)
}, dial func(context.Context) (netConn, error), cliCfg, srvCfg *Config) (cliErr, srvErr error) {
	return nil, nil
}
