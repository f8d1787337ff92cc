package circuit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
)

// pipeExit is an exit whose targets are the test's ends of net.Pipes: a
// target that does exactly what the test makes it do.
func pipeExit(targets chan<- net.Conn) *ExitConfig {
	return &ExitConfig{
		Policy: exitpolicy.AcceptAll(),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			exitEnd, targetEnd := net.Pipe()
			select {
			case targets <- targetEnd:
				return halfPipe{exitEnd}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return nil, errors.New("no names here")
		},
	}
}

// halfPipe is a pipe end with CloseWrite, like a TCP connection: the exit
// passes a half-close on to it. (It closes nothing: the target just sees no
// more data.)
type halfPipe struct{ net.Conn }

func (halfPipe) CloseWrite() error { return nil }

// exitStream builds client → guard → exit inside a synctest bubble and
// opens a stream, a half-close one with halfClose; the target is returned
// unread and unwritten.
func exitStream(t *testing.T, halfClose ...bool) (n *fakeNet, exit *fakeNode, cc *ClientCirc, st *Stream, target net.Conn) {
	t.Helper()
	targets := make(chan net.Conn, 1)
	n = newFakeNet()
	client := n.addNode(t, "client", nil)
	g := n.addNode(t, "guard", nil)
	exit = n.addNode(t, "exit", pipeExit(targets))
	if len(halfClose) > 0 && halfClose[0] {
		exit.protocols = fullProtocols
	}
	cc, err := client.sw.BuildCircuit(t.Context(), path([]*fakeNode{g, exit}))
	if err != nil {
		t.Fatal(err)
	}
	st, err = cc.OpenStream(t.Context(), "192.0.2.1:80")
	if err != nil {
		t.Fatal(err)
	}
	return n, exit, cc, st, <-targets
}

// fillTarget writes to st until the exit blocks writing to a target that
// does not read; it returns once everything in the bubble is stuck.
func fillTarget(t *testing.T, st *Stream) {
	go st.Write(make([]byte, 1<<20)) // more than the windows and the pipe hold
	synctest.Wait()
}

// targetClosed reports whether the exit closed its end of the target's pipe.
func targetClosed(target net.Conn) bool {
	target.SetWriteDeadline(time.Now().Add(time.Millisecond))
	_, err := target.Write([]byte{0})
	return errors.Is(err, io.ErrClosedPipe)
}

// A target that stops reading holds nothing once its circuit is destroyed:
// the exit closes the connection, its goroutines end, the queued cells go.
func TestExitTargetNotReadingFreedWithCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, exit, cc, st, target := exitStream(t)
		defer n.close()
		fillTarget(t, st)
		if exit.sw.Stats().Tasks != 1 {
			t.Fatalf("%d tasks at the exit, want the stream's", exit.sw.Stats().Tasks)
		}
		cc.Close()
		synctest.Wait()
		if got := exit.sw.Stats().Tasks; got != 0 {
			t.Fatalf("%d tasks left at the exit after DESTROY", got)
		}
		if !targetClosed(target) {
			t.Fatal("target connection still open")
		}
	})
}

// A target that stops reading holds nothing once its stream ended with
// END: after WriteTimeout without progress the exit gives up the data.
func TestExitTargetNotReadingFreedWithStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, exit, cc, st, target := exitStream(t)
		defer n.close()
		defer cc.Close()
		fillTarget(t, st)
		st.Close() // END; the exit still holds data for the target
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if exit.sw.Stats().Tasks != 1 {
			t.Fatal("the exit gave up on a target before WriteTimeout")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := exit.sw.Stats().Tasks; got != 0 {
			t.Fatalf("%d tasks left at the exit after WriteTimeout", got)
		}
		if !targetClosed(target) {
			t.Fatal("target connection still open")
		}
		rc := exit.sw.relayCircuits()
		if len(rc) != 1 || rc[0].edge.numStreams() != 0 {
			t.Fatal("the stream (and its queued cells) still at the exit")
		}
		if cc.Err() != nil {
			t.Fatalf("the circuit died: %v", cc.Err())
		}
	})
}

// A target that stops reading is closed at once when the client aborts its
// stream (a half-close stream's Close sends END CLOSED): the data queued
// for it is dropped, not delivered.
func TestExitTargetNotReadingFreedWithAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, exit, cc, st, target := exitStream(t, true)
		defer n.close()
		defer cc.Close()
		fillTarget(t, st)
		st.Close()
		synctest.Wait()
		if got := exit.sw.Stats().Tasks; got != 0 {
			t.Fatalf("%d tasks left at the exit after END CLOSED", got)
		}
		if !targetClosed(target) {
			t.Fatal("target connection still open")
		}
		if cc.Err() != nil {
			t.Fatalf("the circuit died: %v", cc.Err())
		}
	})
}

// A target that never writes (nor reads) is closed when its circuit ends,
// also after the client half-closed the stream (the exit then only waits
// for the target's data).
func TestExitTargetSilentFreedWithCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, exit, cc, st, target := exitStream(t, true)
		defer n.close()
		if err := st.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if exit.sw.Stats().Tasks != 1 {
			t.Fatal("the exit ended a half-closed stream")
		}
		cc.Close()
		synctest.Wait()
		if got := exit.sw.Stats().Tasks; got != 0 {
			t.Fatalf("%d tasks left at the exit", got)
		}
		if !targetClosed(target) {
			t.Fatal("target connection still open")
		}
	})
}

// Closing an exit returns promptly whatever its targets do.
func TestExitCloseWithStuckTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, exit, cc, st, _ := exitStream(t)
		defer n.close()
		defer cc.Close()
		fillTarget(t, st)
		done := make(chan struct{})
		go func() {
			exit.sw.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("Switch.Close blocked by a target that does not read")
		}
	})
}
