package circuit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// testE2E is a test-only end-to-end layer: AES-256-GCM with one key per
// direction and counter nonces. Hidden services bring the real one.
type testE2E struct {
	seal, open cipher.AEAD
	sn, on     uint64
}

func newTestE2EPair(t testing.TB) (a, b *testE2E) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	rand.Read(k1)
	rand.Read(k2)
	g := func(k []byte) cipher.AEAD {
		blk, err := aes.NewCipher(k)
		if err != nil {
			t.Fatal(err)
		}
		a, err := cipher.NewGCM(blk)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return &testE2E{seal: g(k1), open: g(k2)}, &testE2E{seal: g(k2), open: g(k1)}
}

func (x *testE2E) Overhead() int { return 16 }
func (x *testE2E) Seal(dst, pt []byte) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], x.sn)
	x.sn++
	return x.seal.Seal(dst, n[:], pt, nil)
}
func (x *testE2E) Open(dst, ct []byte) ([]byte, error) {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], x.on)
	x.on++
	return x.open.Open(dst, n[:], ct, nil)
}

// jointNet builds two clients with a 2-hop circuit each to one rendezvous
// relay and joins them: X established, Y joined. Y serves KindTCP streams
// with the returned listener.
func jointNet(t *testing.T) (n *fakeNet, rp *fakeNode, x, y *ClientCirc, ln *StreamListener) {
	t.Helper()
	return jointNetWith(t, nil)
}

// jointNetWith is jointNet with client Y's switch config changed by tuneY.
func jointNetWith(t *testing.T, tuneY func(*Config)) (n *fakeNet, rp *fakeNode, x, y *ClientCirc, ln *StreamListener) {
	t.Helper()
	n = newFakeNet()
	t.Cleanup(n.close)
	cx := n.addNode(t, "clientx:1", nil)
	cy := n.addNodeWith(t, "clienty:1", nil, tuneY)
	g1 := n.addNode(t, "guard1:1", nil)
	g2 := n.addNode(t, "guard2:1", nil)
	rp = n.addNode(t, "rendezvous:1", nil)
	for _, fn := range []*fakeNode{g1, g2, rp} {
		fn.protocols = fullProtocols
	}
	var err error
	if x, err = cx.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g1, rp})); err != nil {
		t.Fatal(err)
	}
	if y, err = cy.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g2, rp})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close(); y.Close() })
	lx, ly := newTestE2EPair(t)
	var cookie [cell.CookieLen]byte
	rand.Read(cookie[:])
	var gotPayload []byte
	if err := x.EstablishJoint(ctxT(t), cookie, func(p []byte) (E2ELayer, error) {
		gotPayload = append([]byte(nil), p...)
		return lx, nil
	}); err != nil {
		t.Fatal(err)
	}
	if w, j, _ := stats(rp); w != 1 || j != 0 {
		t.Fatalf("after JOIN_ESTABLISH: %d waiting, %d joints", w, j)
	}
	ln = NewStreamListener(16, nil)
	t.Cleanup(func() { ln.Close() })
	y.Handle(KindTCP, ln)
	if err := y.Join(ctxT(t), cookie, []byte("hello from y"), ly); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitJoined(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if string(gotPayload) != "hello from y" {
		t.Fatalf("JOINED payload %q", gotPayload)
	}
	if w, j, _ := stats(rp); w != 0 || j != 1 {
		t.Fatalf("after JOIN: %d waiting, %d joints", w, j)
	}
	return n, rp, x, y, ln
}

func stats(fn *fakeNode) (waiting, joints, buffered int) {
	s := fn.sw.Stats()
	return s.JointsWaiting, s.Joints, s.JointBuffered
}

// A joint carries 64 MiB each way, byte-identical, on streams the joining
// client accepts; the relay at the joint sees only end-to-end ciphertext.
func TestJointCarries64MiBEachWay(t *testing.T) {
	n, rp, x, _, ln := jointNet(t)
	const size = 64 << 20
	marker := bytes.Repeat([]byte("PLAINTEXT-MARKER"), 4)
	var leaked atomic.Bool
	rp.sw.SetJointHook(func(b []byte) {
		if bytes.Contains(b, marker[:16]) {
			leaked.Store(true)
		}
	})
	up := make([]byte, size)
	rand.Read(up)
	copy(up, marker)
	down := make([]byte, size)
	rand.Read(down)
	copy(down[size/2:], marker)

	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(down)
			wrote <- err
		}()
		h := sha256.New()
		if _, err := io.CopyN(h, c, size); err != nil {
			srvErr <- err
			return
		}
		if err := <-wrote; err != nil {
			srvErr <- err
			return
		}
		if !bytes.Equal(h.Sum(nil), sum(up)) {
			srvErr <- errors.New("upload differs at the joined end")
			return
		}
		srvErr <- nil
	}()
	st, err := x.OpenStream(ctxT(t), "service:80")
	if err != nil {
		t.Fatal(err)
	}
	go st.Write(up)
	h := sha256.New()
	if _, err := io.CopyN(h, st, size); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), sum(down)) {
		t.Fatal("download differs")
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	if leaked.Load() {
		t.Fatal("the relay at the joint saw plaintext")
	}
	st.Close()
	x.Close()
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "both circuits torn down everywhere after one side closed")
}

func sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// A client that stops reading stalls the other after bounded buffering:
// the joint holds at most one circuit window, and nothing is lost.
func TestJointStalledReaderBoundsBuffering(t *testing.T) {
	n, rp, x, _, ln := jointNet(t)
	// Stop the joining client's node from reading its link to its guard.
	n.mu.Lock()
	yIn := n.chans[[2]string{"clienty:1", "guard2:1"}]
	n.mu.Unlock()
	const streams = 6 // 6 stream windows exceed two circuit windows
	const per = 2 << 20
	var wg sync.WaitGroup
	var written atomic.Int64
	var accepted []io.ReadCloser
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for range streams {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted = append(accepted, c)
		}
	}()
	sts := make([]*Stream, streams)
	for i := range sts {
		st, err := x.OpenStream(ctxT(t), "service:80")
		if err != nil {
			t.Fatal(err)
		}
		sts[i] = st
	}
	<-acceptDone
	hold := make(chan struct{})
	yIn.hold.Store(&hold)
	for i, st := range sts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := bytes.Repeat([]byte{byte(i)}, per)
			k, _ := st.Write(b)
			written.Add(int64(k))
		}()
	}
	waitFor(t, func() bool { _, _, b := stats(rp); return b >= CircWindow }, "the joint's buffer to fill")
	before := written.Load()
	time.Sleep(200 * time.Millisecond)
	if _, _, b := stats(rp); b > CircWindow {
		t.Fatalf("joint buffers %d messages, bound is %d", b, CircWindow)
	}
	if written.Load() != before {
		t.Fatal("the writer kept going while the reader was stalled")
	}
	// At most the two circuits' windows are in flight.
	maxData := cell.MaxData - cell.RelayHeaderLen - 16
	if w := written.Load(); w > int64(2*CircWindow*maxData) {
		t.Fatalf("%d bytes written with a stalled reader, more than two windows", w)
	}
	yIn.hold.Store(nil)
	close(hold)
	for i, c := range accepted {
		got, err := io.ReadAll(io.LimitReader(c, per))
		if err != nil || len(got) != per {
			t.Fatalf("stream %d: %d bytes, %v", i, len(got), err)
		}
	}
	wg.Wait()
	if _, _, b := stats(rp); b != 0 {
		t.Fatalf("joint still buffers %d messages", b)
	}
}

// A modified E2E message is detected at the other end of the joint.
func TestJointTamperingDetected(t *testing.T) {
	n, rp, x, _, ln := jointNet(t)
	rp.sw.SetJointHook(func(b []byte) { b[len(b)/2] ^= 1 })
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	_, err := x.OpenStream(ctxT(t), "service:80")
	if err == nil {
		t.Fatal("stream opened through a tampering joint")
	}
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "both circuits destroyed")
}

// JOIN with a cookie nobody established destroys the circuit; a circuit
// that waits is freed when it dies.
func TestJoinUnknownCookie(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	c := n.addNode(t, "client:1", nil)
	rp := n.addNode(t, "rendezvous:1", nil)
	rp.protocols = fullProtocols
	cc, err := c.sw.BuildCircuit(ctxT(t), path([]*fakeNode{rp}))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newTestE2EPair(t)
	if err := cc.Join(ctxT(t), [cell.CookieLen]byte{1}, nil, a); err != nil {
		t.Fatal(err)
	}
	<-cc.Done()
	var de *DestroyedError
	if !errors.As(cc.Err(), &de) || de.Reason != cell.DestroyProtocol {
		t.Fatalf("got %v", cc.Err())
	}
	w, err := c.sw.BuildCircuit(ctxT(t), path([]*fakeNode{rp}))
	if err != nil {
		t.Fatal(err)
	}
	noLayer := func([]byte) (E2ELayer, error) { return nil, errors.New("unused") }
	if err := w.EstablishJoint(ctxT(t), [cell.CookieLen]byte{2}, noLayer); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, func() bool { ws, _, _ := stats(rp); return ws == 0 && totalCircuits(n) == 0 }, "waiting circuit freed")
}

// A relay that does not list Joint is never sent JOIN_ESTABLISH.
func TestJoinNeedsAdvertisedJoint(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	c := n.addNode(t, "client:1", nil)
	r := n.addNode(t, "relay:1", nil)
	r.protocols = protover.New(map[protover.ID]string{protover.Relay: "1-2", protover.Exit: "1"})
	cc, err := c.sw.BuildCircuit(ctxT(t), path([]*fakeNode{r}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.EstablishJoint(ctxT(t), [cell.CookieLen]byte{1}, func([]byte) (E2ELayer, error) { return nil, nil }); err == nil {
		t.Fatal("JOIN_ESTABLISH sent to a relay without Joint")
	}
	if _, err := cc.OpenDirStream(ctxT(t)); !errors.Is(err, streamerr.New(streamerr.Unsupported)) {
		t.Fatalf("BEGIN_DIR to a relay without Dir=2: %v", err)
	}
	if w, _, _ := stats(r); w != 0 {
		t.Fatal("the relay got a JOIN_ESTABLISH")
	}
}
