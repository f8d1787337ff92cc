package linkrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
)

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, x := range b {
		out[len(b)-1-i] = x
	}
	return out
}

// Messages of every size, up to MaxMessage, arrive whole both ways, also
// many at once.
func TestRoundTrip(t *testing.T) {
	a := newMux(t, Config{Handler: echo})
	b := newMux(t, Config{Handler: echo})
	l := join(t, a, b)
	ctx := context.Background()
	for _, n := range []int{0, 1, MaxFragment - 1, MaxFragment, MaxFragment + 1, 3*MaxFragment + 7, DefaultMaxMessage} {
		req := bytes.Repeat([]byte{byte(n)}, n)
		for i := range req {
			req[i] = byte(i * 7)
		}
		got, err := a.Call(ctx, l.ab, req)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, reversed(req)) {
			t.Fatalf("%d bytes: wrong answer", n)
		}
		if got, err = b.Call(ctx, l.ba, req); err != nil || !bytes.Equal(got, reversed(req)) {
			t.Fatalf("%d bytes back: %v", n, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			req := fmt.Appendf(nil, "request %d %s", i, bytes.Repeat([]byte("x"), i*1000))
			got, err := a.Call(ctx, l.ab, req)
			if err == nil && !bytes.Equal(got, reversed(req)) {
				err = fmt.Errorf("call %d: wrong answer", i)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Stats(); st.Requests < 23 || st.Handling != 0 || st.Calls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTooLong(t *testing.T) {
	a := newMux(t, Config{Handler: echo})
	b := newMux(t, Config{Handler: echo, MaxMessage: 10000})
	l := join(t, a, b)
	if _, err := a.Call(context.Background(), l.ab, make([]byte, DefaultMaxMessage+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("over MaxMessage: %v", err)
	}
	// The peer's own, smaller limit: refused, and the link goes on.
	if _, err := a.Call(context.Background(), l.ab, make([]byte, 10001)); !errors.Is(err, ErrRefused) {
		t.Fatalf("over the peer's MaxMessage: %v", err)
	}
	if _, err := a.Call(context.Background(), l.ab, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
}

func TestRefused(t *testing.T) {
	a := newMux(t, Config{})
	b := newMux(t, Config{Handler: handlerFunc(func(context.Context, Peer, []byte) []byte { return nil })})
	l := join(t, a, b)
	if _, err := a.Call(context.Background(), l.ab, []byte("hi")); !errors.Is(err, ErrRefused) {
		t.Fatalf("nil answer: %v", err)
	}
	if _, err := b.Call(context.Background(), l.ba, []byte("hi")); !errors.Is(err, ErrRefused) {
		t.Fatalf("no handler: %v", err)
	}
}

// A peer over its request rate is refused; another peer is not affected.
func TestRate(t *testing.T) {
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newMux(t, Config{Handler: echo, Rate: 1, Burst: 5, Now: clock})
	flood := newMux(t, Config{})
	legit := newMux(t, Config{})
	lf := join(t, flood, srv)
	ll := join(t, legit, srv)
	ctx := context.Background()
	refused := 0
	for range 20 {
		if _, err := flood.Call(ctx, lf.ab, []byte("x")); errors.Is(err, ErrRefused) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused != 15 {
		t.Fatalf("%d of 20 refused at a burst of 5, want 15", refused)
	}
	for range 5 {
		if _, err := legit.Call(ctx, ll.ab, []byte("y")); err != nil {
			t.Fatalf("another peer: %v", err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := flood.Call(ctx, lf.ab, []byte("x")); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

// A hostile peer that starts requests and never finishes them holds at
// most MaxPending of them, and MaxPartial bytes in all; stale ones make
// room for others; a legitimate peer keeps being answered.
func TestPartialFlood(t *testing.T) {
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newMux(t, Config{Handler: echo, MaxPartial: 64 * MaxFragment, Rate: 1e6, Burst: 1e6, Now: clock})
	legit := newMux(t, Config{})
	ll := join(t, legit, srv)
	// Hostile peers send raw fragments straight into the server.
	hostile := make([]*pipe, 8)
	for i := range hostile {
		hostile[i] = &pipe{ch: make(chan *cell.Cell, 4096), done: make(chan struct{})}
		t.Cleanup(hostile[i].close)
		for id := range uint32(100) {
			for range 3 {
				c := cell.New(0, cell.CmdDHT)
				putFragment(c.Body(), fragment{id: id, flags: flagMore, data: make([]byte, MaxFragment)})
				srv.HandleCell(hostile[i], c)
			}
		}
	}
	srv.mu.Lock()
	held, bytes := len(srv.partial), srv.partialN
	for _, h := range hostile {
		if ps := srv.peers[h]; ps == nil || ps.pending > DefaultMaxPending {
			t.Errorf("a hostile peer holds %+v", ps)
		}
	}
	srv.mu.Unlock()
	if bytes > 64*MaxFragment || held > 8*DefaultMaxPending {
		t.Fatalf("%d requests, %d bytes held", held, bytes)
	}
	t.Logf("hostile peers hold %d requests, %d bytes", held, bytes)
	ctx := context.Background()
	if _, err := legit.Call(ctx, ll.ab, make([]byte, 100)); err == nil {
		// Room was left for a one-fragment request?  Only if under the cap.
		t.Logf("a one-fragment request was answered while full")
	}
	mu.Lock()
	now = now.Add(DefaultReassembly + time.Second)
	mu.Unlock()
	if _, err := legit.Call(ctx, ll.ab, make([]byte, 3*MaxFragment)); err != nil {
		t.Fatalf("after the stale requests expired: %v", err)
	}
	for _, h := range hostile {
		srv.PeerClosed(h)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.partialN != 0 || len(srv.partial) != 0 {
		t.Fatalf("after PeerClosed: %d requests, %d bytes", len(srv.partial), srv.partialN)
	}
	for _, h := range hostile {
		if srv.peers[h] != nil {
			t.Fatal("a closed peer's state kept")
		}
	}
}

// PeerClosed fails the calls to that peer and cancels its handlers; Close
// fails the rest.
func TestPeerClosed(t *testing.T) {
	started := make(chan struct{})
	srv := newMux(t, Config{Handler: handlerFunc(func(ctx context.Context, _ Peer, _ []byte) []byte {
		close(started)
		<-ctx.Done()
		return []byte("late")
	})})
	cli := newMux(t, Config{})
	l := join(t, cli, srv)
	errc := make(chan error, 1)
	go func() {
		_, err := cli.Call(context.Background(), l.ab, []byte("q"))
		errc <- err
	}()
	<-started
	srv.PeerClosed(l.ba) // cancels the handler
	cli.PeerClosed(l.ab)
	if err := <-errc; !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("call: %v", err)
	}
	srv.Close()
	if _, err := srv.Call(context.Background(), l.ba, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if st := srv.Stats(); st.Handling != 0 {
		t.Fatalf("handling %d after Close", st.Handling)
	}
}

// A call whose context ends returns at once; its late answer is dropped
// as unsolicited.
func TestCallContext(t *testing.T) {
	release := make(chan struct{})
	srv := newMux(t, Config{Handler: handlerFunc(func(context.Context, Peer, []byte) []byte {
		<-release
		return []byte("late")
	})})
	cli := newMux(t, Config{})
	l := join(t, cli, srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cli.Call(ctx, l.ab, []byte("q")); !errors.Is(err, context.Canceled) {
		t.Fatalf("call: %v", err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for cli.Stats().Unsolicited == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := cli.Stats(); st.Unsolicited != 1 || st.Calls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// MaxPending bounds our own calls to one peer.
func TestMaxPendingCalls(t *testing.T) {
	release := make(chan struct{})
	srv := newMux(t, Config{Handler: handlerFunc(func(context.Context, Peer, []byte) []byte {
		<-release
		return []byte("ok")
	})})
	cli := newMux(t, Config{MaxPending: 2})
	l := join(t, cli, srv)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { cli.Call(context.Background(), l.ab, []byte("q")) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for cli.Stats().Calls < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := cli.Call(context.Background(), l.ab, []byte("q")); !errors.Is(err, ErrBusy) {
		t.Fatalf("third call: %v", err)
	}
	close(release)
	wg.Wait()
}

// The spec's vector (spec/linkrpc.md §1).
func TestSpecVector(t *testing.T) {
	c := cell.New(0, cell.CmdDHT)
	defer c.Free()
	putFragment(c.Body(), fragment{id: 1, data: []byte("hi")})
	if got := fmt.Sprintf("%x", c.Body()[:9]); got != "00000001000002"+"6869" {
		t.Fatalf("request %s", got)
	}
	clear(c.Body())
	putFragment(c.Body(), fragment{id: 1, flags: flagResponse | flagRefused})
	if got := fmt.Sprintf("%x", c.Body()[:7]); got != "00000001050000" {
		t.Fatalf("refusal %s", got)
	}
}
