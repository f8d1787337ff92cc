package circuit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/internal/streamerr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBuildAndEcho(t *testing.T) {
	n, _, cc, st := echoCircuit(t)
	msg := make([]byte, 3<<20)
	rand.Read(msg)
	go st.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
	st.Close()
	cc.Close()
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "circuit state freed everywhere")
}

func totalCircuits(n *fakeNet) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := 0
	for _, fn := range n.nodes {
		t += fn.sw.Circuits()
	}
	return t
}

// echoCircuit builds a 3-hop fake network, a circuit through it and a
// stream to a loopback echo server; cleanup is registered with t.
func echoCircuit(t *testing.T) (*fakeNet, []*fakeNode, *ClientCirc, *Stream) {
	t.Helper()
	n, client, relays := threeHops(t)
	t.Cleanup(n.close)
	addr, stop := echoServer(t)
	t.Cleanup(stop)
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	st, err := cc.OpenStream(ctxT(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return n, relays, cc, st
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for: %s", what)
}

// A middle relay that modifies a cell it forwards: the exit detects it and
// the circuit is destroyed at every hop.
func TestTamperedCellDetectedAtNextHop(t *testing.T) {
	n, relays, cc, st := echoCircuit(t)
	tampered := make(chan struct{})
	var once bool
	relays[1].sw.SetForwardHook(func(c *cell.Cell) {
		if !once {
			once = true
			c.Body()[100] ^= 0x01
			close(tampered)
		}
	})
	st.Write([]byte("hello"))
	<-tampered
	select {
	case <-cc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit not destroyed after tampering")
	}
	// The exit destroyed the circuit (AUTH); the middle and the guard pass
	// that on as DESTROYED, never the exit's reason.
	var de *DestroyedError
	if !errors.As(cc.Err(), &de) || de.Reason != cell.DestroyDestroyed {
		t.Fatalf("client saw %v, want destroyed beyond the first hop", cc.Err())
	}
	if _, err := st.Read(make([]byte, 10)); err == nil {
		t.Fatal("stream still readable")
	}
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "all hops freed the circuit")
}

func TestDestroyPropagatesBothWays(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	// Client-initiated.
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	cc.Close()
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "client DESTROY reached every hop")
	// Exit dies: the client learns it.
	cc, err = client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	n.kill("exit:1")
	select {
	case <-cc.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client circuit survived the exit's death")
	}
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "state freed after exit death")
}

func TestManyStreamsOneCircuit(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	addr, stop := echoServer(t)
	defer stop()
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		go func() {
			st, err := cc.OpenStream(ctxT(t), addr)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			msg := make([]byte, 200<<10)
			rand.Read(msg)
			go st.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(st, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- errors.New("data differs")
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < 50; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestExitPolicyAndResolve(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	client := n.addNode(t, "client:1", nil)
	g := n.addNode(t, "guard:1", nil)
	m := n.addNode(t, "middle:1", nil)
	ex := loopbackExit()
	ex.Policy = exitpolicy.Default() // rejects loopback
	e := n.addNode(t, "exit:1", ex)
	addr, stop := echoServer(t)
	defer stop()
	cc, err := client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m, e}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = cc.OpenStream(ctxT(t), addr)
	if streamerr.ReasonOf(err) != streamerr.ExitPolicy {
		t.Fatalf("loopback IP: got %v, want exit policy", err)
	}
	_, port, _ := strings.Cut(addr, ":")
	_, err = cc.OpenStream(ctxT(t), "echo.test:"+port)
	if streamerr.ReasonOf(err) != streamerr.ExitPolicy {
		t.Fatalf("name resolving to loopback: got %v, want exit policy", err)
	}
	_, err = cc.OpenStream(ctxT(t), "nosuch.test:80")
	if streamerr.ReasonOf(err) != streamerr.ResolveFailed {
		t.Fatalf("unknown name: got %v, want resolve failed", err)
	}
	if _, err := cc.OpenStream(ctxT(t), "bad target"); streamerr.ReasonOf(err) != streamerr.BadAddress {
		t.Fatalf("bad target: got %v", err)
	}
	// The circuit survives stream failures.
	if isDone(cc.Done()) {
		t.Fatal("circuit died")
	}
}

func TestConnectionRefused(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	addr, stop := echoServer(t)
	stop() // nothing listens there now
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = cc.OpenStream(ctxT(t), addr)
	if streamerr.ReasonOf(err) != streamerr.ConnRefused {
		t.Fatalf("got %v, want connection refused", err)
	}
}

// A slow reader: the exit never has more than the windows in flight.
func TestFlowControlBoundsBuffering(t *testing.T) {
	_, _, _, st := echoCircuit(t)
	// Write a lot without reading: writes must block once the echo comes
	// back and fills the stream window, not buffer without bound.
	st.SetWriteDeadline(time.Now().Add(2 * time.Second))
	written, err := st.Write(make([]byte, 64<<20))
	if !errors.Is(err, errDeadline) {
		t.Fatalf("write of 64 MiB to a non-reading echo returned %v", err)
	}
	st.mu.Lock()
	queued := len(st.queue)
	st.mu.Unlock()
	if queued > StreamWindow {
		t.Fatalf("%d cells queued at the client, window is %d", queued, StreamWindow)
	}
	t.Logf("wrote %d bytes before the windows closed; %d cells queued", written, queued)
}

func TestBadCircuitIDsAndUnknownCells(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	ch, err := client.Channel(ctxT(t), relays[0].keys.Identity.Public(), relays[0].keys.Link.Public(), relays[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	// RELAY on an unknown circuit, CREATE with garbage, CREATE with the
	// wrong ID half: none may crash the relay.
	ch.Send(cell.New(1<<31|77, cell.CmdRelay))
	c := cell.New(1<<31|78, cell.CmdCreate)
	c.SetPayload([]byte("garbage"))
	ch.Send(c)
	c = cell.New(79, cell.CmdCreate) // initiator must use the high half
	ch.Send(c)
	time.Sleep(100 * time.Millisecond)
	if _, err := client.sw.BuildCircuit(ctxT(t), path(relays)); err != nil {
		t.Fatalf("relay unusable after bad cells: %v", err)
	}
}

// An EXTEND to a relay that cannot be reached fails the build at once with
// "extend failed", not after the build timeout.
func TestExtendFailureReportedToClient(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	p := path(relays)
	p[1].Addr = "10.255.0.1:1" // no node there
	// Were the failure only noticed by the client's own build timeout, the
	// error would be a context deadline, not DESTROY (extend failed).
	_, err := client.sw.BuildCircuit(ctxT(t), p)
	var be *BuildError
	var de *DestroyedError
	if !errors.As(err, &be) || be.Hop != 1 || !errors.As(err, &de) || de.Reason != cell.DestroyExtendFailed {
		t.Fatalf("got %v, want extend failure at hop 2", err)
	}
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "partial circuit freed")
}

// A circuit SENDME must echo the tag of the cell it acknowledges (Tor
// proposal 289): an edge cannot ask for more data than it has received.
func TestSendmeMustEchoDigest(t *testing.T) {
	e := newEdge(nil, 1)
	var sent [][16]byte
	for i := 0; i < 2*CircSendmeInc; i++ {
		if err := e.takeWindow(ctxT(t), nil); err != nil {
			t.Fatal(err)
		}
		var tag [16]byte
		rand.Read(tag[:])
		e.noteSent(tag)
		sent = append(sent, tag)
	}
	sendme := func(data []byte) error {
		c := cell.New(1, cell.CmdRelay)
		cell.PutRelay(c.Body(), cell.RelaySendme, 0, data)
		m, _ := cell.ParseRelay(c.Body())
		return e.handleMessage(c, m, [16]byte{})
	}
	first := sent[CircSendmeInc-1]
	for _, forged := range [][]byte{nil, make([]byte, 16), sent[0][:], sent[2*CircSendmeInc-1][:]} {
		if err := sendme(forged); err == nil {
			t.Fatalf("SENDME with digest %x accepted; want %x", forged, first)
		}
	}
	if err := sendme(first[:]); err != nil {
		t.Fatalf("genuine SENDME refused: %v", err)
	}
	if e.pkgWin != CircWindow-CircSendmeInc {
		t.Fatalf("window %d after one SENDME", e.pkgWin)
	}
	second := sent[2*CircSendmeInc-1]
	if err := sendme(second[:]); err != nil {
		t.Fatalf("second genuine SENDME refused: %v", err)
	}
	if err := sendme(second[:]); err == nil {
		t.Fatal("replayed SENDME accepted")
	}
}

// A relay that cannot queue a cell on an overloaded link sacrifices that
// circuit only: the client learns it, another circuit on the same links
// keeps working.
func TestOverloadedLinkKillsOnlyThatCircuit(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	addr, stop := echoServer(t)
	defer stop()
	a, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n.mu.Lock()
	midToExit := n.chans[[2]string{"middle:1", "exit:1"}]
	n.mu.Unlock()
	midToExit.failNext.Store(true)
	if _, err := a.OpenStream(ctxT(t), addr); err == nil {
		t.Fatal("stream opened through a dropped cell")
	}
	// The middle destroyed it (RESOURCE); the guard passes on DESTROYED.
	var de *DestroyedError
	if !errors.As(a.Err(), &de) || de.Reason != cell.DestroyDestroyed {
		t.Fatalf("circuit a: %v, want destroyed beyond the first hop", a.Err())
	}
	st, err := b.OpenStream(ctxT(t), addr)
	if err != nil {
		t.Fatalf("the other circuit died too: %v", err)
	}
	st.Write([]byte("ok"))
	if _, err := io.ReadFull(st, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	st.Close()
}
