package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// FuzzPreamble checks that the preamble parser never panics, accepts only
// the magic, that what it accepts encodes back to the same bytes, and that
// a responder accepts only the known version, network, suites and flags.
func FuzzPreamble(f *testing.F) {
	f.Add(validPreamble(DefaultNetwork))
	f.Add(validPreamble("testnet"))
	aes := preamble{version: PreambleVersion, netID: NetworkID(DefaultNetwork), suite: SuiteAESGCM}.bytes()
	f.Add(aes[:])
	f.Add(append(validPreamble(DefaultNetwork)[:13], FlagSuiteRetry))
	f.Add([]byte("DMK\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"))
	f.Add([]byte("DMK"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := checkMagic(b)
		if err != nil && r != 0 && r != RejectVersion {
			t.Fatalf("checkMagic = %d, %v", r, err)
		}
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
		for _, hwAES := range []bool{false, true} {
			reason, err := p.check(NetworkID(DefaultNetwork), hwAES)
			if (reason == 0) != (err == nil) {
				t.Fatalf("check = %d, %v", reason, err)
			}
			if reason == 0 && (p.version != PreambleVersion || p.netID != NetworkID(DefaultNetwork) ||
				!p.suite.known() || p.flags&^knownFlags != 0) {
				t.Fatalf("accepted %x", b)
			}
			if reason == 0 && p.suite == SuiteAESGCM && !hwAES {
				t.Fatalf("accepted AESGCM without hardware AES: %x", b)
			}
			if reason == 0 && p.flags&FlagSuiteRetry != 0 && (hwAES || p.suite != SuiteChaChaPoly) {
				t.Fatalf("accepted a retry it never asked for: %x", b)
			}
		}
	})
}

// FuzzHello checks the HELLO decoder: no panics, only ErrProtocol errors,
// and what it accepts encodes (known fields, in order) to a payload that
// decodes to the same.
func FuzzHello(f *testing.F) {
	for _, h := range []hello{
		{protocols: withOwnProtocols(protover.Set{}, false)},
		{protocols: withOwnProtocols(protover.Set{}, true), descriptor: []byte("descriptor")},
	} {
		f.Add(appendHello(nil, h))
	}
	f.Add(rogueHello([]byte{9, 0, 2, 'h', 'i'}))
	f.Add(rogueHello([]byte{1, 0, 1, 0}))
	f.Add([]byte{2, 0, 0})
	f.Add([]byte{1, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		again, err := parseHello(appendHello(nil, h))
		if err != nil || !again.protocols.Equal(h.protocols) || !bytes.Equal(again.descriptor, h.descriptor) {
			t.Fatalf("%x: re-encoded HELLO decodes as %+v, %v", b, again, err)
		}
		if _, err := linkVersion(withOwnProtocols(protover.Set{}, false), h.protocols); err != nil {
			if !errors.Is(err, ErrVersion) || h.protocols.Supports(protover.Link, 1) {
				t.Fatalf("linkVersion: %v", err)
			}
		}
	})
}

var fuzzKey = keys.LinkFromBytes([32]byte{1})

// FuzzAcceptInput feeds arbitrary bytes as the initiator side of a conn
// into Accept. mode 0 sends data as it is; mode 1 completes a real
// handshake first and then sends data as it is; mode 2 completes the
// handshake and sends correctly encrypted transport messages built from
// data as in FuzzReceive (data[0] cells per message, then 5-byte cell
// headers), so the fuzzer reaches the cell checks. In every case Accept
// must return an error or the link must close, without a panic. Inputs
// are kept small: the fuzzer's minimisation is quadratic in their size.
func FuzzAcceptInput(f *testing.F) {
	pre := validPreamble(DefaultNetwork)
	f.Add(uint8(0), pre)
	f.Add(uint8(0), append(append(pre, 0, Msg1Len), make([]byte, Msg1Len)...))
	f.Add(uint8(0), []byte("DMK\x01"))
	f.Add(uint8(0), append(validPreamble(DefaultNetwork)[:12], byte(SuiteAESGCM), 0))
	f.Add(uint8(1), []byte{0xff, 0xff, 1, 2, 3})
	f.Add(uint8(1), []byte{0, 0, 1})
	f.Add(uint8(2), []byte{1, 0, 0, 0, 7, byte(cell.CmdRelay)})
	f.Add(uint8(2), []byte{16, 0, 0, 0, 7, byte(cell.CmdRelay), 0, 0, 0, 0, byte(cell.CmdPadding)})
	f.Add(uint8(2), []byte{1, 0, 0, 0, 1, byte(cell.CmdHello)})
	f.Add(uint8(2), []byte{1, 0, 0, 0, 1, 200})
	f.Add(uint8(2), []byte{2, 0, 0, 0, 0, byte(cell.CmdRekey), 0, 0, 0, 1, byte(cell.CmdRelay)})
	f.Add(uint8(2), []byte{2, 0, 0, 0, 1, byte(cell.CmdRelay), 0, 0, 0, 0, byte(cell.CmdRekey)})
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		if len(data) > 512 || (mode%3 == 2 && (len(data) == 0 || len(data) > 1+5*34)) {
			return
		}
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
			per := max(1, min(int(data[0]), MaxCellsPerMessage))
			headers := data[1:]
			for len(headers) > 0 {
				var pt []byte
				for k := 0; k < per && len(headers) > 0; k++ {
					var c [cell.Size]byte
					copy(c[:cell.HeaderLen], headers)
					headers = headers[min(len(headers), cell.HeaderLen):]
					pt = append(pt, c[:]...)
				}
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

// FuzzReceive drives the reader (frames, decryption, cell checks, Handler
// dispatch) without goroutines or sockets, so it is deterministic and
// fast. In mode 0 data is the raw byte stream after the handshake (at most
// 256 bytes: frame headers, lengths, truncation). In mode 1 data[0] is the number of cells per transport message
// and each following 5 bytes are a cell header (circuit ID, command) of a
// cell with a zero body; the cells are sent as correctly encrypted
// messages, so the fuzzer reaches the cell checks with small inputs.
// readLoop must end with an error, never a panic, and in mode 1 every
// cell of a known command other than PADDING, HELLO and REKEY must be
// delivered unless a message was invalid (a HELLO, a REKEY not last, or a
// message after a REKEY, which this sender does not follow).
func FuzzReceive(f *testing.F) {
	f.Add(uint8(1), []byte{1, 0, 0, 0, 7, byte(cell.CmdRelay)})
	f.Add(uint8(1), []byte{16, 0, 0, 0, 7, byte(cell.CmdRelay), 0, 0, 0, 0, byte(cell.CmdPadding), 0, 0, 0, 9, byte(cell.CmdDestroy)})
	f.Add(uint8(1), []byte{2, 0, 0, 0, 1, byte(cell.CmdHello)})
	f.Add(uint8(1), []byte{3, 0, 0, 0, 1, 200})
	f.Add(uint8(1), []byte{2, 0, 0, 0, 1, 200, 0, 0, 0, 0, byte(cell.CmdRekey)})
	f.Add(uint8(1), []byte{2, 0, 0, 0, 0, byte(cell.CmdRekey), 0, 0, 0, 1, byte(cell.CmdRelay)})
	f.Add(uint8(0), []byte{0xff, 0xff, 1, 2, 3})
	f.Add(uint8(0), []byte{0, 0, 1})
	f.Add(uint8(0), []byte{0x10, 0x05, 1, 2, 3})
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		send, recv := fixedCiphers(t)
		stream := data
		want := 0 // cells for the Handler, in mode 1
		unknown := 0
		// Large inputs add nothing here and make the fuzzer's
		// minimisation (quadratic in the input size) crawl.
		if mode%2 == 0 && len(data) > 256 {
			return
		}
		if mode%2 == 1 {
			// 34 cells: two full messages and a partial one.
			if len(data) == 0 || len(data) > 1+5*34 {
				return
			}
			per := max(1, min(int(data[0]), MaxCellsPerMessage))
			headers := data[1:]
			stream = nil
			for len(headers) > 0 {
				buf := make([]byte, FrameHeaderLen, FrameHeaderLen+MaxMessageLen)
				for k := 0; k < per && len(headers) > 0; k++ {
					var c [cell.Size]byte
					copy(c[:cell.HeaderLen], headers)
					headers = headers[min(len(headers), cell.HeaderLen):]
					switch cmd := cell.Command(c[4]); {
					case cmd > cell.CmdMove: // the highest command defined
						unknown++
					case cmd != cell.CmdPadding && cmd != cell.CmdHello && cmd != cell.CmdRekey && cmd != cell.CmdMove:
						want++
					}
					buf = append(buf, c[:]...)
				}
				buf, err := send.seal(buf, FrameHeaderLen)
				if err != nil {
					t.Fatal(err)
				}
				binary.BigEndian.PutUint16(buf, uint16(len(buf)-FrameHeaderLen))
				stream = append(stream, buf...)
			}
		}
		delivered := 0
		l := &Link{
			h:    newHandler(func(l *Link, c *cell.Cell) { delivered++; c.Free() }),
			rd:   newFrameReader(&readOnlyConn{r: bytes.NewReader(stream)}),
			recv: recv,
			quit: make(chan struct{}),
		}
		err := l.readLoop()
		if err == nil {
			t.Fatal("readLoop returned nil")
		}
		if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("readLoop: %v", err)
		}
		if mode%2 == 1 && err == ErrPeerClosed && (delivered != want || int(l.unknownCells.Load()) != unknown) {
			// Every message was well-formed, so every cell of a known
			// command but PADDING must have been delivered, and every
			// unknown one counted.
			t.Fatalf("delivered %d cells, want %d; %d unknown, want %d", delivered, want, l.unknownCells.Load(), unknown)
		}
	})
}

// fixedCiphers returns the two ends of one direction of a link, from a
// deterministic handshake that runs once.
func fixedCiphers(t *testing.T) (send, recv *transportCipher) {
	fixedOnce.Do(func() {
		s, err := (&Config{Static: fuzzKey, Rand: zeroReader{}, Suite: SuiteChaChaPoly}).settings()
		if err != nil {
			panic(err)
		}
		p := s.preamble()
		ini, msg1, err := startInitiator(s, p, fuzzKey.Public())
		if err != nil {
			panic(err)
		}
		rsess, msg2, err := respond(s, p, msg1)
		if err != nil {
			panic(err)
		}
		isess, err := ini.finish(msg2, fuzzKey.Public())
		if err != nil {
			panic(err)
		}
		fixedSend, fixedRecv = *isess.send, *rsess.recv
	})
	// The AEADs are stateless; copies start again at nonce 0.
	s, r := fixedSend, fixedRecv
	return &s, &r
}

var (
	fixedOnce            sync.Once
	fixedSend, fixedRecv transportCipher
)

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 1
	}
	return len(b), nil
}

// readOnlyConn is a net.Conn that reads from r and does nothing else.
type readOnlyConn struct {
	net.Conn
	r io.Reader
}

func (c *readOnlyConn) Read(b []byte) (int, error) { return c.r.Read(b) }
