package link

import (
	"bytes"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// waitOpen is wait that fails at once if either link of p closes.
func (r *receiver) waitOpen(t *testing.T, p *pair) []byte {
	t.Helper()
	select {
	case <-r.doneCh:
	case <-p.cli.Done():
		t.Fatalf("client link closed after %d cells: %v", r.got.Load(), p.cli.Err())
	case <-p.srv.Done():
		t.Fatalf("server link closed after %d cells: %v", r.got.Load(), p.srv.Err())
	}
	return r.wait(t)
}

// waitRekeysSeen waits until each side has received every REKEY the other
// sent (the last one is counted just after its message's cells arrived).
func waitRekeysSeen(t *testing.T, p *pair) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for p.srv.Stats().RekeysReceived != p.cli.Stats().RekeysSent ||
		p.cli.Stats().RekeysReceived != p.srv.Stats().RekeysSent {
		if time.Now().After(deadline) {
			t.Fatalf("REKEYs sent %d / %d, received %d / %d", p.cli.Stats().RekeysSent, p.srv.Stats().RekeysSent,
				p.srv.Stats().RekeysReceived, p.cli.Stats().RekeysReceived)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRekeyUnderTraffic rekeys every 7 messages while cells flow both
// ways: nothing is lost or reordered, and every message count and REKEY
// count adds up, in both suites.
func TestRekeyUnderTraffic(t *testing.T) {
	const n = (32 << 20) / cell.Size // per direction
	for _, nw := range networks {
		for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
			t.Run(nw.name+"/"+suite.String(), func(t *testing.T) {
				if testing.Short() && nw.name == "tcp" {
					t.Skip("short")
				}
				rs, rc := newReceiver(n), newReceiver(n)
				p := newPair(t, nw.listen,
					&Config{Suite: suite, RekeyMessages: 7, hardwareAES: hw(true)},
					&Config{Static: newKey(t), RekeyMessages: 7, hardwareAES: hw(true)},
					newHandler(rc.handle), newHandler(rs.handle))
				if p.cli.Suite() != suite {
					t.Fatalf("suite %v", p.cli.Suite())
				}
				var wg sync.WaitGroup
				var up, down []byte
				wg.Go(func() { up = sendStream(t, p.cli, newStream(1), n, rs) })
				wg.Go(func() { down = sendStream(t, p.srv, newStream(2), n, rc) })
				wg.Wait()
				if got := rs.waitOpen(t, p); !bytes.Equal(got, up) {
					t.Error("client to server: cells differ")
				}
				if got := rc.waitOpen(t, p); !bytes.Equal(got, down) {
					t.Error("server to client: cells differ")
				}
				waitRekeysSeen(t, p)
				for side, l := range map[string]*Link{"client": p.cli, "server": p.srv} {
					st := l.Stats()
					t.Logf("%s: %d messages, %d cells, %d rekeys sent, %d received", side, st.Messages, st.CellsSent,
						st.RekeysSent, st.RekeysReceived)
					if st.RekeysSent != st.Messages/7 {
						t.Errorf("%s: %d rekeys for %d messages, want one per 7", side, st.RekeysSent, st.Messages)
					}
					if st.RekeysSent < 64 {
						t.Errorf("%s: only %d rekeys", side, st.RekeysSent)
					}
					if st.CellsSent != n+st.RekeysSent {
						t.Errorf("%s: %d cells sent, want %d data + %d REKEY", side, st.CellsSent, n, st.RekeysSent)
					}
				}
				if p.cli.Err() != nil || p.srv.Err() != nil {
					t.Fatalf("link closed: %v, %v", p.cli.Err(), p.srv.Err())
				}
			})
		}
	}
}

// recvChan is a Handler that hands cells to a channel.
func recvChan() (*testHandler, chan *cell.Cell) {
	ch := make(chan *cell.Cell, 64)
	return newHandler(func(l *Link, c *cell.Cell) { ch <- c }), ch
}

// TestRekeyInterval: a side rekeys every RekeyInterval, and a rekey
// because of RekeyMessages restarts that interval. Virtual time.
func TestRekeyInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hcli, cch := recvChan()
		hsrv, sch := recvChan()
		start := time.Now()
		p := bubblePair(t, &memnet.Network{},
			&Config{RekeyInterval: time.Minute, RekeyMessages: 3, KeepAlive: time.Hour, IdleTimeout: 2 * time.Hour},
			&Config{Static: newKey(t), RekeyInterval: 90 * time.Second, KeepAlive: time.Hour, IdleTimeout: 2 * time.Hour},
			hcli, hsrv)
		at := func(d time.Duration) {
			time.Sleep(start.Add(d).Sub(time.Now()))
			synctest.Wait()
		}
		// Three messages at 30s: the third ends with REKEY.
		at(30 * time.Second)
		for i := range 3 {
			if err := p.cli.Send(cell.New(uint32(i+1), cell.CmdRelay)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			(<-sch).Free()
		}
		if st := p.cli.Stats(); st.Messages != 3 || st.RekeysSent != 1 {
			t.Fatalf("after 3 messages: %+v", st)
		}
		// So the client's next timed rekey is at 90s, not 60s.
		at(89 * time.Second)
		if got := p.cli.Stats().RekeysSent; got != 1 {
			t.Errorf("at 89s: %d rekeys, want 1", got)
		}
		if got := p.srv.Stats().RekeysReceived; got != 1 {
			t.Errorf("at 89s: server saw %d rekeys, want 1", got)
		}
		at(91 * time.Second)
		if got := p.cli.Stats().RekeysSent; got != 2 {
			t.Errorf("at 91s: %d rekeys, want 2", got)
		}
		// Timed rekeys alone: client at 150s, 210s, ...; server every 90s.
		at(10*time.Minute + time.Second)
		cst, sst := p.cli.Stats(), p.srv.Stats()
		if cst.RekeysSent != 10 || sst.RekeysReceived != 10 {
			t.Errorf("client: %d rekeys sent, server saw %d; want 10", cst.RekeysSent, sst.RekeysReceived)
		}
		if sst.RekeysSent != 6 || cst.RekeysReceived != 6 {
			t.Errorf("server: %d rekeys sent, client saw %d; want 6", sst.RekeysSent, cst.RekeysReceived)
		}
		// The link still carries cells both ways under the new keys.
		p.cli.Send(cell.New(7, cell.CmdRelay))
		p.srv.Send(cell.New(8, cell.CmdRelay))
		synctest.Wait()
		if c := <-sch; c.Circ() != 7 {
			t.Errorf("server got circuit %d", c.Circ())
		}
		if c := <-cch; c.Circ() != 8 {
			t.Errorf("client got circuit %d", c.Circ())
		}
		if p.cli.Err() != nil || p.srv.Err() != nil {
			t.Fatalf("closed: %v, %v", p.cli.Err(), p.srv.Err())
		}
		p.cli.Close()
		p.srv.Close()
	})
}

// A REKEY from an independent implementation (flynn/noise's Rekey) is
// understood: the link rekeys its receive cipher after the message and
// reads the next one under the new key.
func TestRekeyInterop(t *testing.T) {
	srvKey := newKey(t)
	ln, dial := memnetListen(t)
	hsrv, sch := recvChan()
	srv := startServerWith(ln, &Config{Static: srvKey}, hsrv.onCell)
	defer srv.close()
	conn, err := dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := rogueDial(t, conn, DefaultNetwork, srvKey.Public())
	a := srv.next(t)
	if a.err != nil {
		t.Fatal(a.err)
	}
	relay := func(circ uint32) []byte {
		c := cell.New(circ, cell.CmdRelay)
		defer c.Free()
		return bytes.Clone(c.Bytes())
	}
	rekey := make([]byte, cell.Size)
	rekey[4] = byte(cell.CmdRekey)
	r.writeMessage(t, append(relay(1), rekey...))
	r.send.Rekey()
	r.writeMessage(t, relay(2))
	r.writeMessage(t, append(relay(3), rekey...))
	r.send.Rekey()
	r.writeMessage(t, relay(4))
	for want := uint32(1); want <= 4; want++ {
		select {
		case c := <-sch:
			if c.Circ() != want {
				t.Fatalf("cell on circuit %d, want %d", c.Circ(), want)
			}
			c.Free()
		case <-time.After(ioTimeout):
			t.Fatalf("cell %d not delivered: %v", want, a.l.Err())
		}
	}
	if st := a.l.Stats(); st.RekeysReceived != 2 || st.CellsReceived != 6 {
		t.Errorf("stats %+v", st)
	}
	a.l.Close()
}
