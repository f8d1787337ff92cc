package link

import (
	"fmt"
	"os"
	"runtime"
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// FuzzPreamble checks that the preamble parser never panics, accepts only
// the magic, and that what it accepts encodes back to the same bytes.
func FuzzPreamble(f *testing.F) {
	f.Add(validPreamble(DefaultNetwork))
	f.Add(validPreamble("testnet"))
	f.Add([]byte("DMK\x02\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("DMK"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePreamble(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if !bytes.Equal(p.append(nil), b) {
			t.Fatalf("%x parsed as %+v, which encodes differently", b, p)
		}
		reason, err := p.check(NetworkID(DefaultNetwork))
		if (reason == 0) != (err == nil) {
			t.Fatalf("check = %d, %v", reason, err)
		}
		if reason == 0 && !bytes.Equal(b, validPreamble(DefaultNetwork)) {
			t.Fatalf("accepted %x", b)
		}
	})
}

var fuzzKey = keys.LinkFromBytes([32]byte{1})

// FuzzAcceptInput feeds arbitrary bytes as the initiator side of a conn
// into Accept. mode 0 sends data as it is; mode 1 completes a real
// handshake first and then sends data as it is; mode 2 completes the
// handshake and sends data as correctly encrypted transport messages
// (padded to whole cells), so the fuzzer reaches the cell checks. In
// every case Accept must return an error or the link must close, without
// a panic.
func FuzzAcceptInput(f *testing.F) {
	pre := validPreamble(DefaultNetwork)
	f.Add(uint8(0), pre)
	f.Add(uint8(0), append(append(pre, 0, Msg1Len), make([]byte, Msg1Len)...))
	f.Add(uint8(0), []byte("DMK\x01"))
	f.Add(uint8(1), []byte{0xff, 0xff, 1, 2, 3})
	f.Add(uint8(1), []byte{0, 0, 1})
	relay := cell.New(7, cell.CmdRelay)
	f.Add(uint8(2), append([]byte{}, relay.Bytes()...))
	relay.Free()
	f.Add(uint8(2), []byte{0, 0, 0, 1, byte(cell.CmdHello)})
	f.Add(uint8(2), []byte{0, 0, 0, 1, 200})
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		wd := time.AfterFunc(15*time.Second, func() {
			buf := make([]byte, 1<<20)
			os.WriteFile("/tmp/fuzzstack.txt", append([]byte(fmt.Sprintf("mode %d data %x\n", mode, data)), buf[:runtime.Stack(buf, true)]...), 0o644)
		})
		defer wd.Stop()
		n := &memnet.Network{}
		ln, err := n.Host("10.0.0.2").Listen(":1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		type result struct {
			l   *Link
			h   *testHandler
			err error
		}
		ch := make(chan result, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				ch <- result{err: err}
				return
			}
			h := newHandler(nil)
			l, err := Accept(context.Background(), c, &Config{Static: fuzzKey, HandshakeTimeout: 5 * time.Second}, h)
			ch <- result{l, h, err}
		}()
		conn, err := n.Host("10.0.0.1").Dial(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closeWrite := func() { conn.(interface{ CloseWrite() error }).CloseWrite() }
		// Drain whatever the responder sends, so it never blocks on us.
		drain := func() {
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						return
					}
				}
			}()
		}

		if mode%3 == 0 {
			drain()
			conn.Write(data)
			closeWrite()
			res := <-ch
			if res.err == nil {
				t.Logf("Accept succeeded on fuzz input %x", data)
				conn.Close()
				waitLinkClosed(t, res.l)
			}
			return
		}

		r := rogueDial(t, conn, DefaultNetwork, fuzzKey.Public())
		drain()
		res := <-ch
		if res.err != nil {
			t.Fatalf("Accept after a correct handshake: %v", res.err)
		}
		if mode%3 == 1 {
			conn.Write(data)
		} else {
			for len(data) > 0 {
				k := min(len(data), MaxCellsPerMessage*cell.Size)
				pt := make([]byte, (k+cell.Size-1)/cell.Size*cell.Size)
				copy(pt, data[:k])
				data = data[k:]
				if _, err := conn.Write(r.message(t, pt)); err != nil {
					break
				}
			}
		}
		closeWrite()
		waitLinkClosed(t, res.l)
	})
}

func waitLinkClosed(t *testing.T, l *Link) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(ioTimeout):
		t.Fatal("link did not close")
	}
}
