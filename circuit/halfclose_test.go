package circuit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/proxyserve/proxytest"
)

// requestServer reads a request until the client half-closes, then sends
// resp and closes: an HTTP/1.0-style server that needs half-close.
func requestServer(t *testing.T, resp []byte) (addr string, requests <-chan []byte) {
	t.Helper()
	got := make(chan []byte, 4)
	b := proxytest.StartBackend(t, func(c net.Conn) {
		req, _ := io.ReadAll(c) // until FIN
		got <- req
		c.Write(resp)
	})
	return b.Addr(), got
}

// circuitWith builds a 3-hop circuit over relays that advertise protocols
// (the exit exitProtocols); cleanup is registered with t.
func circuitWith(t *testing.T, protocols, exitProtocols protover.Set) (*fakeNet, []*fakeNode, *ClientCirc) {
	t.Helper()
	n, client, relays := threeHops(t)
	t.Cleanup(n.close)
	for _, r := range relays {
		r.protocols = protocols
	}
	relays[2].protocols = exitProtocols
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return n, relays, cc
}

// A client that sends its request and shuts its write side still receives
// the whole response: the exit passes END DONE on as a TCP FIN and the
// target's FIN back as END DONE.
func TestHalfCloseThroughExit(t *testing.T) {
	resp := make([]byte, 16<<20)
	rand.Read(resp)
	addr, requests := requestServer(t, resp)
	_, _, cc := circuitWith(t, fullProtocols, fullProtocols)
	st, err := cc.OpenStream(ctxT(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	}
	h := sha256.New()
	k, err := io.Copy(h, st)
	if err != nil || k != int64(len(resp)) {
		t.Fatalf("read %d of %d bytes: %v", k, len(resp), err)
	}
	if !bytes.Equal(h.Sum(nil), sum(resp)) {
		t.Fatal("response differs")
	}
	if req := <-requests; string(req) != "GET / HTTP/1.0\r\n\r\n" {
		t.Fatalf("target got %q", req)
	}
	st.Close()
	waitFor(t, func() bool { return cc.Streams() == 0 }, "stream forgotten at the client")
}

// An exit that does not list Relay=2 is never sent a half-close: CloseWrite
// says so and sends nothing; the stream keeps working.
func TestHalfCloseNeedsRelay2(t *testing.T) {
	addr, stop := echoServer(t)
	defer stop()
	_, _, cc := circuitWith(t, fullProtocols, protover.New(map[protover.ID]string{protover.Relay: "1", protover.Exit: "1"}))
	st, err := cc.OpenStream(ctxT(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CloseWrite(); !errors.Is(err, ErrNoHalfClose) {
		t.Fatalf("CloseWrite = %v, want ErrNoHalfClose", err)
	}
	st.Write([]byte("still open"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "still open" {
		t.Fatalf("echo after refused CloseWrite: %q %v", buf, err)
	}
}

// Closing a half-close stream whose other direction is still open aborts
// it: the exit stops sending and closes the target connection.
func TestCloseAbortsHalfOpenStream(t *testing.T) {
	addr, _ := requestServer(t, make([]byte, 64<<20))
	_, relays, cc := circuitWith(t, fullProtocols, fullProtocols)
	st, err := cc.OpenStream(ctxT(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	io.ReadFull(st, make([]byte, 1<<20))
	st.Close()
	waitFor(t, func() bool { return exitStreams(relays[2]) == 0 }, "the exit forgets the aborted stream")
}

func exitStreams(fn *fakeNode) int {
	fn.sw.mu.Lock()
	defer fn.sw.mu.Unlock()
	n := 0
	for _, t := range fn.sw.chans {
		for _, ep := range t.circs {
			if pe, ok := ep.(prevEnd); ok && pe.c.edge != nil {
				n += pe.c.edge.numStreams()
			}
		}
	}
	return n
}

// Interoperation with a newer peer: relay commands this node does not know
// are dropped and counted in both directions; the circuit and its streams
// keep working.
func TestUnknownRelayCommandsDropped(t *testing.T) {
	n, relays, cc, st := echoCircuit(t)
	_ = n
	for hop := range 3 {
		if err := cc.sendTo(hop, cell.RelayCmd(200), 0, []byte("from the future"), nil); err != nil {
			t.Fatal(err)
		}
		if err := cc.sendTo(hop, cell.RelayCmd(201), 7, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if k := relays[2].sw.originateToClients(cell.RelayCmd(250), []byte("newer relay")); k != 1 {
		t.Fatalf("originated on %d circuits", k)
	}
	st.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo after unknown commands: %q %v", buf, err)
	}
	var dropped uint64
	for _, r := range relays {
		dropped += r.sw.Stats().UnknownRelay
	}
	if dropped != 6 {
		t.Fatalf("relays dropped %d unknown messages, want 6", dropped)
	}
	if got := cc.sw.Stats().UnknownRelay; got != 1 {
		t.Fatalf("client dropped %d unknown messages, want 1", got)
	}
	select {
	case <-cc.Done():
		t.Fatal("circuit destroyed")
	default:
	}
}

// BEGIN_DIR reaches the directory handler of a hop that lists Dir=2.
func TestDirStream(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	c := n.addNode(t, "client:1", nil)
	r := n.addNode(t, "relay:1", nil)
	r.protocols = fullProtocols
	cc, err := c.sw.BuildCircuit(ctxT(t), path([]*fakeNode{r}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := cc.OpenDirStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "\x00\x09relay-one\x00\x09relay-two" {
		t.Fatalf("dir stream: %q %v", got, err)
	}
}
