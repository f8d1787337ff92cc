package link

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

// server accepts links on a listener until closed and reports each
// outcome.
type server struct {
	ln      net.Listener
	cfg     *Config
	results chan accepted
	wg      sync.WaitGroup
}

type accepted struct {
	l   *Link
	h   *testHandler
	err error
}

func startServer(ln net.Listener, cfg *Config) *server { return startServerWith(ln, cfg, nil) }

// startServerWith is startServer with the Handlers' onCell.
func startServerWith(ln net.Listener, cfg *Config, onCell func(*Link, *cell.Cell)) *server {
	s := &server{ln: ln, cfg: cfg, results: make(chan accepted, 100)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				h := newHandler(onCell)
				ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
				defer cancel()
				l, err := Accept(ctx, c, cfg, h)
				s.results <- accepted{l, h, err}
			})
		}
	})
	return s
}

func (s *server) next(t *testing.T) accepted {
	t.Helper()
	select {
	case a := <-s.results:
		return a
	case <-time.After(ioTimeout):
		t.Fatal("no Accept result")
		return accepted{}
	}
}

func (s *server) close() {
	s.ln.Close()
	s.wg.Wait()
	close(s.results)
	for a := range s.results {
		if a.l != nil {
			a.l.Close()
		}
	}
}

// validPreamble is a preamble for network that every responder accepts
// (ChaChaPoly, no flags).
func validPreamble(network string) []byte {
	return preamble{version: PreambleVersion, netID: NetworkID(network), suite: SuiteChaChaPoly}.append(nil)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestGarbage sends malformed input on fresh connections to a listener and
// checks that each closes only its own link, while an established link on
// the same listener keeps working.
func TestGarbage(t *testing.T) {
	for _, nw := range networks {
		t.Run(nw.name, func(t *testing.T) {
			testGarbage(t, nw)
		})
	}
}

func testGarbage(t *testing.T, nw network) {
	srvKey := newKey(t)
	ln, dial := nw.listen(t)
	srv := startServer(ln, &Config{Static: srvKey})
	defer srv.close()

	// The link that must survive.
	rc := newReceiver(1 << 30)
	hcli := newHandler(rc.handle)
	ctx := context.Background()
	conn, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, err := Dial(ctx, conn, nil, srvKey.Public(), hcli)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	goodSrv := srv.next(t)
	if goodSrv.err != nil {
		t.Fatal(goodSrv.err)
	}
	echo := 0
	checkGood := func() {
		t.Helper()
		// Server to client, then client to server and back through
		// the server's handler is not needed: both directions.
		echo++
		if err := goodSrv.l.Send(cell.New(uint32(echo), cell.CmdRelay)); err != nil {
			t.Fatalf("good link: %v", err)
		}
		deadline := time.Now().Add(ioTimeout)
		for rc.got.Load() < int64(echo) {
			if time.Now().After(deadline) {
				t.Fatal("good link stopped delivering")
			}
			time.Sleep(time.Millisecond)
		}
		if err := good.Send(cell.New(1, cell.CmdRelay)); err != nil {
			t.Fatalf("good link: %v", err)
		}
	}
	checkGood()

	// Input that fails before the handshake completes: Accept returns
	// an error.
	pre := validPreamble(DefaultNetwork)
	before := []struct {
		name    string
		input   []byte
		want    error
		rejects byte // the reject reason the peer must get, or 0
	}{
		{"random", randBytes(1000), ErrProtocol, 0},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrProtocol, 0},
		{"short preamble", pre[:5], ErrHandshake, 0},
		{"empty", nil, ErrHandshake, 0},
		{"version 1", append([]byte("DMK\x01"), pre[4:12]...), ErrVersion, RejectVersion},
		{"version 3", []byte("DMK\x03"), ErrVersion, RejectVersion},
		{"unknown suite", append(append([]byte{}, pre[:12]...), 7, 0), ErrVersion, RejectVersion},
		{"unknown flag", append(append([]byte{}, pre[:12]...), 1, 0x80), ErrVersion, RejectVersion},
		{"other network", validPreamble("elsewhere"), ErrNetworkMismatch, RejectNetwork},
		{"preamble only", pre, ErrHandshake, 0},
		{"truncated frame", append(append(pre, 0, Msg1Len), randBytes(10)...), ErrHandshake, 0},
		{"junk first message", append(append(pre, 0, Msg1Len), randBytes(Msg1Len)...), ErrHandshake, RejectHandshake},
		{"oversized length", append(append(pre, 0xff, 0xff), randBytes(2000)...), ErrProtocol, RejectHandshake},
		{"short first message", append(append(pre, 0, 10), randBytes(10)...), ErrHandshake, RejectHandshake},
		{"reject frame", append(pre, 0, 0, 1), ErrHandshake, RejectHandshake},
	}
	for _, tc := range before {
		conn, err := dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(tc.input)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		a := srv.next(t)
		if a.err == nil {
			a.l.Close()
			t.Errorf("%s: Accept succeeded", tc.name)
		} else if !errors.Is(a.err, tc.want) {
			t.Errorf("%s: Accept: %v, want %v", tc.name, a.err, tc.want)
		}
		conn.SetReadDeadline(time.Now().Add(ioTimeout))
		reply, _ := io.ReadAll(conn)
		conn.Close()
		var want []byte
		if tc.rejects != 0 {
			want = []byte{0, 0, tc.rejects}
		}
		if !bytes.Equal(reply, want) {
			t.Errorf("%s: peer got %x, want %x", tc.name, reply, want)
		}
		checkGood()
	}

	// Input after a correct handshake: the server's link closes with
	// ErrProtocol (or ErrPeerClosed for a truncated frame).
	plain := func(cmds ...cell.Command) []byte {
		var b []byte
		for _, c := range cmds {
			cc := cell.New(9, c)
			b = append(b, cc.Bytes()...)
			cc.Free()
		}
		return b
	}
	after := []struct {
		name  string
		input func(r *rogue) []byte
		want  error
	}{
		{"oversized frame", func(r *rogue) []byte { return append([]byte{0xff, 0xff}, randBytes(70000)...) }, ErrProtocol},
		{"frame just too long", func(r *rogue) []byte {
			return append(binary.BigEndian.AppendUint16(nil, MaxMessageLen+1), randBytes(MaxMessageLen+1)...)
		}, ErrProtocol},
		{"not whole cells", func(r *rogue) []byte { return r.message(t, randBytes(cell.Size+1)) }, ErrProtocol},
		{"too short", func(r *rogue) []byte { return r.message(t, randBytes(100)) }, ErrProtocol},
		{"random message", func(r *rogue) []byte { return rawFrame(randBytes(MinMessageLen)) }, ErrProtocol},
		{"second HELLO", func(r *rogue) []byte { return r.message(t, plain(cell.CmdHello)) }, ErrProtocol},
		{"second HELLO on a circuit", func(r *rogue) []byte { return r.message(t, plain(cell.CmdRelay, cell.CmdHello)) }, ErrProtocol},
		{"REKEY not last", func(r *rogue) []byte { return r.message(t, plain(cell.CmdRekey, cell.CmdRelay)) }, ErrProtocol},
		{"message after REKEY under the old key", func(r *rogue) []byte {
			return append(r.message(t, plain(cell.CmdRelay, cell.CmdRekey)), r.message(t, plain(cell.CmdRelay))...)
		}, ErrProtocol},
		{"reject frame", func(r *rogue) []byte { return []byte{0, 0, 1} }, ErrProtocol},
		{"replayed message", func(r *rogue) []byte {
			m := r.message(t, plain(cell.CmdRelay))
			return append(m, m...)
		}, ErrProtocol},
		{"truncated frame", func(r *rogue) []byte { return r.message(t, plain(cell.CmdRelay))[:100] }, ErrPeerClosed},
	}
	for _, tc := range after {
		conn, err := dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := rogueDial(t, conn, DefaultNetwork, srvKey.Public())
		a := srv.next(t)
		if a.err != nil {
			t.Fatalf("%s: rogue handshake failed: %v", tc.name, a.err)
		}
		conn.Write(tc.input(r))
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		if err := a.h.waitClosed(t); !errors.Is(err, tc.want) {
			t.Errorf("%s: Closed(%v), want %v", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		conn.Close()
		checkGood()
	}
	if err := good.Err(); err != nil {
		t.Fatalf("good link closed: %v", err)
	}
}
