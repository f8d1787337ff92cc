package socks

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// The SOCKS5 client below writes the protocol bytes by hand, independently
// of the package's codec.

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// greet sends a greeting and returns the method the server chose.
func greet(t *testing.T, c net.Conn, methods ...byte) byte {
	t.Helper()
	write(t, c, append([]byte{5, byte(len(methods))}, methods...))
	r := readN(t, c, 2)
	if r[0] != 5 {
		t.Fatalf("method selection version %#x", r[0])
	}
	return r[1]
}

// authUserPass runs RFC 1929 and returns the status byte.
func authUserPass(t *testing.T, c net.Conn, user, pass string) byte {
	t.Helper()
	b := []byte{1, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	b = append(b, pass...)
	write(t, c, b)
	r := readN(t, c, 2)
	if r[0] != 1 {
		t.Fatalf("auth reply version %#x", r[0])
	}
	return r[1]
}

// sendRequest writes a request and returns the reply code, checking that
// BND.ADDR:PORT is 0.0.0.0:0.
func sendRequest(t *testing.T, c net.Conn, cmd, atyp byte, addr []byte, port uint16) byte {
	t.Helper()
	b := []byte{5, cmd, 0, atyp}
	if atyp == AtypDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, port)
	write(t, c, b)
	r := readN(t, c, 10)
	want := []byte{5, r[1], 0, 1, 0, 0, 0, 0, 0, 0}
	if string(r) != string(want) {
		t.Fatalf("reply % x, want % x", r, want)
	}
	return r[1]
}

// connect runs a no-auth handshake and a CONNECT, returning the reply code.
func connect(t *testing.T, proxy string, atyp byte, addr []byte, port uint16) (net.Conn, byte) {
	t.Helper()
	c := proxytest.Dial(t, proxy)
	return c, connectOn(t, c, atyp, addr, port)
}

// connectOn runs a no-auth handshake and a CONNECT on c, returning the
// reply code.
func connectOn(t *testing.T, c net.Conn, atyp byte, addr []byte, port uint16) byte {
	t.Helper()
	if m := greet(t, c, MethodNoAuth); m != MethodNoAuth {
		t.Fatalf("method %#x, want no-auth", m)
	}
	return sendRequest(t, c, CmdConnect, atyp, addr, port)
}

// expectClosed checks that the server closes c without sending more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if err == nil {
		t.Fatalf("read %d bytes (%#x), want the connection closed", n, b[0])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed: %v", err)
	}
}
