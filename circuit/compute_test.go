package circuit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

var computeProtocols = fullProtocols.With(protover.Compute, 1)

// computeCircuit builds client → guard → middle → last, where last lists
// protocols and serves KindCompute with h (none if h is nil).
func computeCircuit(t *testing.T, protocols protover.Set, h StreamHandler) (*fakeNet, []*fakeNode, *ClientCirc) {
	t.Helper()
	n := newFakeNet()
	t.Cleanup(n.close)
	client := n.addNode(t, "client:1", nil)
	g := n.addNode(t, "guard:1", nil)
	m := n.addNode(t, "middle:1", nil)
	last := n.addNodeWith(t, "compute:1", nil, func(cfg *Config) {
		if h != nil {
			cfg.Handlers[KindCompute] = h
		}
	})
	relays := []*fakeNode{g, m, last}
	for _, r := range relays {
		r.protocols = fullProtocols
	}
	last.protocols = protocols
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return n, relays, cc
}

// BEGIN_COMPUTE reaches the KindCompute handler of a last hop that lists
// Compute=1, across two middle hops, as a half-close stream with no target.
func TestComputeStream(t *testing.T) {
	type seen struct {
		kind   StreamKind
		target string
	}
	reqs := make(chan seen, 1)
	echo := StreamHandlerFunc(func(ctx context.Context, req *StreamRequest) {
		reqs <- seen{req.Kind, req.Target}
		st, err := req.Accept()
		if err != nil {
			return
		}
		defer st.Close()
		call, err := io.ReadAll(st) // the client's CloseWrite ends the call
		if err != nil {
			return
		}
		st.Write(bytes.ToUpper(call))
		st.CloseWrite()
	})
	_, _, cc := computeCircuit(t, computeProtocols, echo)
	st, err := cc.OpenComputeStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write([]byte("call add(2, 3)")); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "CALL ADD(2, 3)" {
		t.Fatalf("compute stream: %q %v", got, err)
	}
	if r := <-reqs; r.kind != KindCompute || r.target != "" {
		t.Fatalf("handler saw kind %v target %q", r.kind, r.target)
	}
	if KindCompute.String() != "compute" {
		t.Fatalf("KindCompute.String() = %q", KindCompute.String())
	}
}

// A last hop that lists Compute=1 but registered no KindCompute handler
// answers END UNSUPPORTED; the circuit stays up for other streams.
func TestComputeStreamWithoutHandler(t *testing.T) {
	_, _, cc := computeCircuit(t, computeProtocols, nil)
	if _, err := cc.OpenComputeStream(ctxT(t)); !errors.Is(err, streamerr.New(streamerr.Unsupported)) {
		t.Fatalf("BEGIN_COMPUTE to a hop with no handler: %v", err)
	}
	st, err := cc.OpenDirStream(ctxT(t))
	if err != nil {
		t.Fatalf("the circuit after a refused BEGIN_COMPUTE: %v", err)
	}
	defer st.Close()
	st.CloseWrite()
	if got, err := io.ReadAll(st); err != nil || string(got) != "\x00\x09relay-one\x00\x09relay-two" {
		t.Fatalf("dir stream: %q %v", got, err)
	}
}

// A last hop that does not list Compute=1 is never sent BEGIN_COMPUTE: the
// client refuses locally, even though the hop has a handler.
func TestComputeNeedsAdvertisedCompute(t *testing.T) {
	var called atomic.Int32
	h := StreamHandlerFunc(func(ctx context.Context, req *StreamRequest) {
		called.Add(1)
		req.Reject(streamerr.Misc)
	})
	_, _, cc := computeCircuit(t, fullProtocols, h)
	if _, err := cc.OpenComputeStream(ctxT(t)); !errors.Is(err, streamerr.New(streamerr.Unsupported)) {
		t.Fatalf("BEGIN_COMPUTE to a relay without Compute=1: %v", err)
	}
	// A stream the hop did get would show as a handler call; prove the
	// circuit still works end to end first, so a BEGIN_COMPUTE in flight
	// would have arrived before this one.
	st, err := cc.OpenDirStream(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	io.ReadAll(st)
	st.Close()
	if n := called.Load(); n != 0 {
		t.Fatalf("the hop's compute handler ran %d times", n)
	}
}
