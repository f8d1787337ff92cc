package proxyserve

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	l := proxytest.Listen(t)
	defer l.Close()
	dialed = proxytest.Dial(t, l.Addr().String())
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = accepted.SetDeadline(time.Now().Add(proxytest.IOTimeout))
	t.Cleanup(func() { accepted.Close() })
	return dialed, accepted
}

func startSplice(client net.Conn, clientR io.Reader, remote net.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Splice(client, clientR, remote)
	}()
	return done
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(proxytest.IOTimeout):
		t.Fatal("Splice did not return")
	}
}

func expectConnClosed(t *testing.T, name string, c net.Conn) {
	t.Helper()
	if err := c.SetDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("%s not closed by Splice (SetDeadline: %v)", name, err)
	}
}

func readAllString(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// Each direction's EOF is passed on with CloseWrite while the other
// direction carries on.
func TestSpliceHalfClose(t *testing.T) {
	client, cs := tcpPair(t) // client ↔ proxy
	rs, origin := tcpPair(t) // proxy ↔ origin
	done := startSplice(cs, cs, rs)

	if _, err := io.WriteString(client, "request"); err != nil {
		t.Fatal(err)
	}
	_ = client.(*net.TCPConn).CloseWrite()
	if got := readAllString(t, origin); got != "request" {
		t.Fatalf("origin read %q", got)
	}
	// The origin saw EOF; its direction to the client is still open.
	if _, err := io.WriteString(origin, "response"); err != nil {
		t.Fatalf("origin write after half-close: %v", err)
	}
	_ = origin.(*net.TCPConn).CloseWrite()
	if got := readAllString(t, client); got != "response" {
		t.Fatalf("client read %q", got)
	}
	waitDone(t, done)
	expectConnClosed(t, "client side", cs)
	expectConnClosed(t, "remote side", rs)
}

// Bytes already buffered for the client are read through clientR, and a
// large transfer survives the half-close.
func TestSpliceBufferedAndLarge(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.HashAfterEOF)
	client, cs := tcpPair(t)
	rs := proxytest.Dial(t, be.Addr())
	done := startSplice(cs, cs, rs)
	proxytest.HalfCloseAndCheckHash(t, client, client, 1<<20+3)
	waitDone(t, done)
}

// answerSize is the answer a half-closing client must receive whole.
const answerSize = 8 << 20

// A client that sends its request and shuts its write side gets a large
// answer whole, through a remote that half-closes like a circuit stream
// (CloseWrite, no ReadFrom or WriteTo).
func TestSpliceHalfCloseStreamRemote(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(answerSize))
	client, cs := tcpPair(t)
	rs := proxytest.Stream(proxytest.Dial(t, be.Addr()))
	done := startSplice(cs, cs, rs)
	proxytest.RequestAndCheckAnswer(t, client, client, "GET /big\r\n", 0, answerSize)
	waitDone(t, done)
	expectConnClosed(t, "client side", cs)
}

// A remote whose CloseWrite fails (an exit that cannot half-close) ends
// the splice as before half-close: both connections close at the client's
// EOF, and neither side hangs.
func TestSpliceCloseWriteFails(t *testing.T) {
	be := proxytest.StartBackend(t, proxytest.AnswerAfterEOF(answerSize))
	client, cs := tcpPair(t)
	rs := proxytest.NoHalfClose(proxytest.Dial(t, be.Addr()))
	done := startSplice(cs, cs, rs)
	if _, err := io.WriteString(client, "request"); err != nil {
		t.Fatal(err)
	}
	_ = client.(*net.TCPConn).CloseWrite()
	// The answer may not come: the remote was closed at the client's EOF.
	if n, err := io.Copy(io.Discard, client); n == answerSize || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read %d bytes, %v", n, err)
	}
	waitDone(t, done)
	expectConnClosed(t, "client side", cs)
	if err := rs.SetDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("remote not closed by Splice (SetDeadline: %v)", err)
	}
}

// Where the destination of an ended direction cannot half-close, both
// connections are closed at once, which ends the other direction too.
func TestSpliceNoCloseWrite(t *testing.T) {
	client, cs := tcpPair(t)
	rs, origin := net.Pipe() // no CloseWrite
	defer origin.Close()
	done := startSplice(cs, cs, rs)

	go func() {
		_, _ = io.WriteString(client, "request")
		_ = client.(*net.TCPConn).CloseWrite()
	}()
	b := make([]byte, len("request"))
	if _, err := io.ReadFull(origin, b); err != nil || string(b) != "request" {
		t.Fatalf("origin read %q, %v", b, err)
	}
	if _, err := origin.Read(b); err != io.EOF {
		t.Fatalf("origin read after the client's EOF: %v, want io.EOF", err)
	}
	// The client's direction from the origin ended too.
	if got := readAllString(t, client); got != "" {
		t.Fatalf("client read %q", got)
	}
	waitDone(t, done)
	expectConnClosed(t, "client side", cs)
}

// An error in one direction closes both connections.
func TestSpliceErrorClosesBoth(t *testing.T) {
	client, cs := tcpPair(t)
	rs, origin := tcpPair(t)
	done := startSplice(cs, cs, rs)

	rs.Close() // the stream fails under the proxy
	if got := readAllString(t, client); got != "" {
		t.Fatalf("client read %q", got)
	}
	waitDone(t, done)
	expectConnClosed(t, "client side", cs)
	origin.Close()
}
