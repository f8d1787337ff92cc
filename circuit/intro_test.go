package circuit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/protover"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

// introProtocols is what an introduction point advertises in these tests.
var introProtocols = fullProtocols.With(protover.Intro, 1)

// testClock is an injected clock for the intro point's token buckets.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}
func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// introTestNet is a fake network with one introduction point, guards in
// front of it, a service node and a client node.
type introTestNet struct {
	n        *fakeNet
	ip       *fakeNode // the introduction point
	svc, cli *fakeNode // a service's node and a client's node
	guards   []*fakeNode
	clock    *testClock
}

// newIntroNet builds an introTestNet whose intro point's IntroConfig tune
// may change (its clock is the net's, frozen until advanced).
func newIntroNet(t *testing.T, tune func(*IntroConfig)) *introTestNet {
	t.Helper()
	in := &introTestNet{n: newFakeNet(), clock: newTestClock()}
	t.Cleanup(in.n.close)
	in.svc = in.n.addNode(t, "service:1", nil)
	in.cli = in.n.addNode(t, "client:1", nil)
	for _, name := range []string{"guard1:1", "guard2:1"} {
		g := in.n.addNode(t, name, nil)
		g.protocols = fullProtocols
		in.guards = append(in.guards, g)
	}
	in.ip = in.n.addNodeWith(t, "intro:1", nil, func(c *Config) {
		ic := &IntroConfig{Now: in.clock.now}
		if tune != nil {
			tune(ic)
		}
		c.Intro = ic
	})
	in.ip.protocols = introProtocols
	return in
}

// circuit builds a circuit from node from to the intro point through
// guard g (nil: a one-hop circuit).
func (in *introTestNet) circuit(t *testing.T, from, g *fakeNode) *ClientCirc {
	t.Helper()
	p := []*fakeNode{in.ip}
	if g != nil {
		p = []*fakeNode{g, in.ip}
	}
	cc, err := from.sw.BuildCircuit(ctxT(t), path(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// introService is a service's intro circuit and what arrived on it.
type introService struct {
	cc  *ClientCirc
	key [32]byte
	mu  sync.Mutex
	got [][]byte
}

func (s *introService) bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

// establish makes a new service circuit (through the first guard) the
// intro circuit of a new auth key, or of auth if given.
func (in *introTestNet) establish(t *testing.T, auth ed25519.PrivateKey, rate, burst uint16) *introService {
	t.Helper()
	if auth == nil {
		auth = newAuthKey(t)
	}
	s := &introService{cc: in.circuit(t, in.svc, in.guards[0])}
	copy(s.key[:], auth.Public().(ed25519.PublicKey))
	err := s.cc.EstablishIntro(ctxT(t), auth, "test", in.ip.keys.NodeID(), rate, burst, func(body []byte) {
		s.mu.Lock()
		s.got = append(s.got, append([]byte(nil), body...))
		s.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// introduce sends one INTRODUCE1 on a new client circuit (through the
// second guard, or one hop when direct) and returns the ACK status.
func (in *introTestNet) introduce(t *testing.T, key [32]byte, enc []byte, direct bool) byte {
	t.Helper()
	g := in.guards[1]
	if direct {
		g = nil
	}
	cc := in.circuit(t, in.cli, g)
	st, err := cc.Introduce(ctxT(t), key, enc)
	if err != nil {
		t.Fatal(err)
	}
	cc.Close()
	return st
}

func newAuthKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// destroyedWith waits for cc to die and checks that its last hop
// destroyed it with reason: the client sees that reason from a one-hop
// circuit, else 8 (DESTROYED), while the hop before the last saw reason.
func destroyedWith(t *testing.T, n *fakeNet, cc *ClientCirc, reason byte) {
	t.Helper()
	select {
	case <-cc.Done():
	case <-ctxT(t).Done():
		t.Fatal("circuit not destroyed")
	}
	hops := cc.Hops()
	want := reason
	if len(hops) > 1 {
		want = cell.DestroyDestroyed
		name := func(h Hop) string {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, fn := range n.nodes {
				if fn.keys.Identity.Public() == h.Identity {
					return fn.name
				}
			}
			return ""
		}
		last, prev := name(hops[len(hops)-1]), name(hops[len(hops)-2])
		waitFor(t, func() bool {
			seen := n.destroysSeen(last, prev)
			return len(seen) > 0 && seen[len(seen)-1] == reason
		}, "the last hop's DESTROY with the reason")
	}
	var de *DestroyedError
	if !errors.As(cc.Err(), &de) || de.Reason != want {
		t.Fatalf("circuit died with %v, want reason %d", cc.Err(), want)
	}
}

// An introduction reaches the service byte-identical as INTRODUCE2, and
// the client gets status 0; a largest one does too.
func TestIntroEndToEnd(t *testing.T) {
	in := newIntroNet(t, nil)
	s := in.establish(t, nil, 0, 0)
	if st := in.ip.sw.Stats(); st.IntroCircuits != 1 {
		t.Fatalf("IntroCircuits = %d", st.IntroCircuits)
	}
	small := []byte("encrypted introduction")
	big := make([]byte, MaxIntroduceEncrypted)
	rand.Read(big)
	for _, enc := range [][]byte{small, big} {
		if st := in.introduce(t, s.key, enc, false); st != IntroStatusPassed {
			t.Fatalf("status %d", st)
		}
	}
	waitFor(t, func() bool { return len(s.bodies()) == 2 }, "two INTRODUCE2")
	for i, enc := range [][]byte{small, big} {
		want := append(s.key[:len(s.key):len(s.key)], enc...)
		if !bytes.Equal(s.bodies()[i], want) {
			t.Fatalf("INTRODUCE2 %d differs from the INTRODUCE1 body", i)
		}
	}
	if st := in.ip.sw.Stats(); st.Introduced != 2 || st.IntroRateLimited != 0 || st.IntroUnknown != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The client refuses what the relay would destroy the circuit for.
	cc := in.circuit(t, in.cli, nil)
	if _, err := cc.Introduce(ctxT(t), s.key, nil); err == nil {
		t.Fatal("INTRODUCE1 without an encrypted part sent")
	}
	if _, err := cc.Introduce(ctxT(t), s.key, make([]byte, MaxIntroduceEncrypted+1)); err == nil {
		t.Fatal("INTRODUCE1 beyond MaxData sent")
	}
}

// An INTRODUCE1 for an auth key without an intro circuit gets status 1,
// and one without an encrypted part status 3.
func TestIntroUnknownKeyAndMalformed(t *testing.T) {
	in := newIntroNet(t, nil)
	s := in.establish(t, nil, 0, 0)
	if st := in.introduce(t, [32]byte{1, 2, 3}, []byte("x"), false); st != IntroStatusUnknown {
		t.Fatalf("unknown key: status %d", st)
	}
	cc := in.circuit(t, in.cli, nil)
	cc.mu.Lock()
	ack := make(chan byte, 1)
	cc.intro = introState{role: roleClient, ack: ack}
	cc.mu.Unlock()
	if err := cc.sendTo(0, cell.RelayIntroduce1, 0, s.key[:], nil); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-ack:
		if st != IntroStatusMalformed {
			t.Fatalf("INTRODUCE1 of the auth key alone: status %d", st)
		}
	case <-cc.Done():
		t.Fatalf("circuit died: %v", cc.Err())
	}
	if st := in.ip.sw.Stats(); st.IntroUnknown != 1 || st.Introduced != 0 || len(s.bodies()) != 0 {
		t.Fatalf("stats %+v, %d INTRODUCE2", st, len(s.bodies()))
	}
}

// A bad ESTABLISH_INTRO (another key's signature, a signature for another
// intro point or network, a wrong size, a relay that is no intro point, a
// circuit in use) destroys its circuit with reason 1, never the relay: an
// honest service establishes and is introduced to afterwards.
func TestIntroBadEstablish(t *testing.T) {
	in := newIntroNet(t, nil)
	plain := in.n.addNode(t, "plain:1", nil)
	plain.protocols = fullProtocols
	auth, other := newAuthKey(t), newAuthKey(t)
	self := in.ip.keys.NodeID()
	forged := marshalEstablishIntro(auth, "test", self, 0, 0)
	copy(forged[36:], ed25519.Sign(other, IntroSignedBytes("test", self, [32]byte(auth.Public().(ed25519.PublicKey)), 0, 0)))
	for _, tc := range []struct {
		name string
		body []byte
		to   *fakeNode
		use  func(*ClientCirc) error
	}{
		{name: "signed by another key", body: forged},
		{name: "for another intro point", body: marshalEstablishIntro(auth, "test", plain.keys.NodeID(), 0, 0)},
		{name: "for another network", body: marshalEstablishIntro(auth, "other", self, 0, 0)},
		{name: "rate changed after signing", body: func() []byte {
			b := marshalEstablishIntro(auth, "test", self, 10, 10)
			b[33]++
			return b
		}()},
		{name: "short", body: marshalEstablishIntro(auth, "test", self, 0, 0)[:EstablishIntroLen-1]},
		{name: "long", body: append(marshalEstablishIntro(auth, "test", self, 0, 0), 0)},
		{name: "to a relay that is no intro point", body: marshalEstablishIntro(auth, "test", plain.keys.NodeID(), 0, 0), to: plain},
		{name: "on a circuit with a stream", body: marshalEstablishIntro(auth, "test", self, 0, 0), use: func(cc *ClientCirc) error {
			_, err := cc.OpenDirStream(ctxT(t))
			return err
		}},
		{name: "on a circuit that introduced", body: marshalEstablishIntro(auth, "test", self, 0, 0), use: func(cc *ClientCirc) error {
			_, err := cc.Introduce(ctxT(t), [32]byte{9}, []byte("x"))
			return err
		}},
		{name: "twice on one circuit", body: marshalEstablishIntro(auth, "test", self, 0, 0), use: func(cc *ClientCirc) error {
			return cc.EstablishIntro(ctxT(t), newAuthKey(t), "test", self, 0, 0, func([]byte) {})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := in.ip
			if tc.to != nil {
				to = tc.to
			}
			cc, err := in.svc.sw.BuildCircuit(ctxT(t), path([]*fakeNode{in.guards[0], to}))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if tc.use != nil {
				if err := tc.use(cc); err != nil {
					t.Fatal(err)
				}
			}
			if err := cc.sendTo(1, cell.RelayEstablishIntro, 0, tc.body, nil); err != nil {
				t.Fatal(err)
			}
			destroyedWith(t, in.n, cc, cell.DestroyProtocol)
		})
	}
	// The client side refuses a relay that does not list Intro.
	cc, err := in.svc.sw.BuildCircuit(ctxT(t), path([]*fakeNode{plain}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.EstablishIntro(ctxT(t), auth, "test", plain.keys.NodeID(), 0, 0, func([]byte) {}); err == nil {
		t.Fatal("ESTABLISH_INTRO sent to a relay without Intro")
	}
	// EstablishIntro's own signature for the wrong intro point is refused
	// the same way.
	bad := in.circuit(t, in.svc, in.guards[0])
	if err := bad.EstablishIntro(ctxT(t), auth, "test", plain.keys.NodeID(), 0, 0, func([]byte) {}); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("EstablishIntro naming another intro point: %v", err)
	}
	// Only the "twice" case left an intro circuit (its first key).
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == 0 }, "no intro circuits left")
	s := in.establish(t, auth, 0, 0)
	if st := in.introduce(t, s.key, []byte("after the attacks"), false); st != IntroStatusPassed {
		t.Fatalf("status %d", st)
	}
	waitFor(t, func() bool { return len(s.bodies()) == 1 }, "INTRODUCE2")
}

// A circuit carries one INTRODUCE1: a second destroys it (reason 1), and
// the client refuses to send one. An intro circuit takes no INTRODUCE1 and
// no streams.
func TestIntroduceOncePerCircuit(t *testing.T) {
	in := newIntroNet(t, nil)
	s := in.establish(t, nil, 0, 0)
	cc := in.circuit(t, in.cli, in.guards[1])
	if st, err := cc.Introduce(ctxT(t), s.key, []byte("one")); err != nil || st != IntroStatusPassed {
		t.Fatalf("first: %d %v", st, err)
	}
	if _, err := cc.Introduce(ctxT(t), s.key, []byte("two")); !errors.Is(err, errIntroUsed) {
		t.Fatalf("second Introduce: %v", err)
	}
	if err := cc.sendTo(1, cell.RelayIntroduce1, 0, append(s.key[:], "two"...), nil); err != nil {
		t.Fatal(err)
	}
	destroyedWith(t, in.n, cc, cell.DestroyProtocol)
	// The ACK and the INTRODUCE2 travel on different links: wait for the
	// one passed on, then make sure no second one follows.
	waitFor(t, func() bool { return len(s.bodies()) >= 1 }, "the INTRODUCE2")
	if got := len(s.bodies()); got != 1 {
		t.Fatalf("%d INTRODUCE2, want 1", got)
	}

	// The service's circuit cannot introduce or open streams.
	if err := s.cc.sendTo(1, cell.RelayIntroduce1, 0, append(s.key[:], "x"...), nil); err != nil {
		t.Fatal(err)
	}
	destroyedWith(t, in.n, s.cc, cell.DestroyProtocol)
	s2 := in.establish(t, nil, 0, 0)
	if _, err := s2.cc.OpenDirStream(ctxT(t)); err == nil {
		t.Fatal("a stream opened on an intro circuit")
	}
	destroyedWith(t, in.n, s2.cc, cell.DestroyProtocol)
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == 0 }, "the keys forgotten")
}

// A second ESTABLISH_INTRO with the same auth key replaces the first
// circuit, which is forgotten but not destroyed; the key is forgotten when
// the newer circuit dies.
func TestIntroReplaceKey(t *testing.T) {
	in := newIntroNet(t, nil)
	auth := newAuthKey(t)
	old := in.establish(t, auth, 0, 0)
	cur := in.establish(t, auth, 0, 0)
	if st := in.ip.sw.Stats(); st.IntroCircuits != 1 {
		t.Fatalf("IntroCircuits = %d, want 1", st.IntroCircuits)
	}
	if st := in.introduce(t, cur.key, []byte("to the newer"), false); st != IntroStatusPassed {
		t.Fatalf("status %d", st)
	}
	waitFor(t, func() bool { return len(cur.bodies()) == 1 }, "INTRODUCE2 on the newer circuit")
	if len(old.bodies()) != 0 {
		t.Fatal("the replaced circuit got an INTRODUCE2")
	}
	if isDone(old.cc.Done()) {
		t.Fatal("the replaced circuit was destroyed")
	}
	old.cc.Close() // the old circuit's death does not forget the key
	waitFor(t, func() bool { return in.ip.sw.Circuits() == 1 }, "only the newer circuit left at the intro point")
	if st := in.introduce(t, cur.key, []byte("still"), false); st != IntroStatusPassed {
		t.Fatalf("after the old circuit died: status %d", st)
	}
	cur.cc.Close()
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == 0 }, "the key forgotten")
	if st := in.introduce(t, cur.key, []byte("gone"), false); st != IntroStatusUnknown {
		t.Fatalf("after the intro circuit died: status %d", st)
	}
}

// When an intro circuit dies anywhere (here its guard's link), its key is
// forgotten: the next INTRODUCE1 gets status 1.
func TestIntroCircuitDeathForgetsKey(t *testing.T) {
	in := newIntroNet(t, nil)
	s := in.establish(t, nil, 0, 0)
	in.n.mu.Lock()
	link := in.n.chans[[2]string{"guard1:1", "intro:1"}]
	in.n.mu.Unlock()
	link.close()
	<-s.cc.Done()
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == 0 }, "the key forgotten")
	if st := in.introduce(t, s.key, []byte("x"), false); st != IntroStatusUnknown {
		t.Fatalf("status %d", st)
	}
}

// A flood of INTRODUCE1 for one intro circuit from many circuits passes at
// most its (capped) burst, then its rate, to the service; the rest is
// dropped with status 2 and counted, while an introduction to another
// service at the same relay still passes.
func TestIntroFloodBounded(t *testing.T) {
	const maxBurst, maxRate = 20, 5
	in := newIntroNet(t, func(c *IntroConfig) { c.MaxBurst, c.MaxRate = maxBurst, maxRate })
	victim := in.establish(t, nil, 65535, 65535) // asks for more than the caps
	other := in.establish(t, nil, 0, 0)
	flood := func(n int) (passed, limited int) {
		ctx := ctxT(t)
		var wg sync.WaitGroup
		var p, l atomic.Int32
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cc, err := in.cli.sw.BuildCircuit(ctx, path([]*fakeNode{in.ip}))
				if err != nil {
					errs <- err
					return
				}
				defer cc.Close()
				st, err := cc.Introduce(ctx, victim.key, []byte{byte(i)})
				switch {
				case err != nil:
					errs <- err
				case st == IntroStatusPassed:
					p.Add(1)
				case st == IntroStatusLimited:
					l.Add(1)
				default:
					errs <- errors.New("unexpected status")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return int(p.Load()), int(l.Load())
	}
	if p, l := flood(3 * maxBurst); p != maxBurst || l != 2*maxBurst {
		t.Fatalf("frozen clock: %d passed, %d limited; want the burst %d", p, l, maxBurst)
	}
	if st := in.introduce(t, other.key, []byte("legitimate"), false); st != IntroStatusPassed {
		t.Fatalf("the other service's introduction: status %d", st)
	}
	in.clock.advance(time.Second)
	if p, l := flood(4 * maxRate); p != maxRate || l != 3*maxRate {
		t.Fatalf("one second later: %d passed, %d limited; want the rate %d", p, l, maxRate)
	}
	// Every INTRODUCE2 left the relay before its ACK: Introduced counts
	// all the flooded service will ever get.
	st := in.ip.sw.Stats()
	waitFor(t, func() bool { return len(victim.bodies()) == maxBurst+maxRate }, "the passed INTRODUCE2")
	waitFor(t, func() bool { return len(other.bodies()) == 1 }, "the legitimate INTRODUCE2")
	if st.IntroRateLimited != 2*maxBurst+3*maxRate || st.Introduced != maxBurst+maxRate+1 {
		t.Fatalf("stats %+v", st)
	}
}

// The relay's total bucket bounds the introductions over all intro
// circuits, whatever each one's bucket allows.
func TestIntroTotalBound(t *testing.T) {
	const total = 6
	in := newIntroNet(t, func(c *IntroConfig) { c.TotalBurst = total })
	var svcs []*introService
	for range 3 {
		svcs = append(svcs, in.establish(t, nil, 0, 0))
	}
	passed := 0
	for i := range 12 {
		switch st := in.introduce(t, svcs[i%3].key, []byte{byte(i)}, true); st {
		case IntroStatusPassed:
			passed++
		case IntroStatusLimited:
		default:
			t.Fatalf("status %d", st)
		}
	}
	if passed != total {
		t.Fatalf("%d passed, total burst is %d", passed, total)
	}
	if st := in.ip.sw.Stats(); st.IntroRateLimited != 12-total {
		t.Fatalf("IntroRateLimited = %d", st.IntroRateLimited)
	}
}

// At MaxIntroCircuits a further ESTABLISH_INTRO destroys its circuit with
// reason 5, while the established ones keep working and a key already
// held can still move to a new circuit.
func TestIntroMaxCircuits(t *testing.T) {
	const max = 3
	in := newIntroNet(t, func(c *IntroConfig) { c.MaxIntroCircuits = max })
	var svcs []*introService
	auths := make([]ed25519.PrivateKey, max)
	for i := range max {
		auths[i] = newAuthKey(t)
		svcs = append(svcs, in.establish(t, auths[i], 0, 0))
	}
	cc := in.circuit(t, in.svc, in.guards[0])
	if err := cc.EstablishIntro(ctxT(t), newAuthKey(t), "test", in.ip.keys.NodeID(), 0, 0, func([]byte) {}); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("beyond the bound: %v", err)
	}
	destroyedWith(t, in.n, cc, cell.DestroyResource)
	if st := in.ip.sw.Stats(); st.IntroCircuits != max {
		t.Fatalf("IntroCircuits = %d", st.IntroCircuits)
	}
	moved := in.establish(t, auths[0], 0, 0) // replaces, at the bound
	if st := in.introduce(t, moved.key, []byte("x"), false); st != IntroStatusPassed {
		t.Fatalf("status %d", st)
	}
	if st := in.introduce(t, svcs[1].key, []byte("y"), false); st != IntroStatusPassed {
		t.Fatalf("status %d", st)
	}
	svcs[2].cc.Close()
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == max-1 }, "a key freed")
	in.establish(t, nil, 0, 0)
}

// When the service's link already queues MaxQueued cells for the intro
// circuit, an introduction is dropped with status 2 instead of waiting or
// overflowing the queue, and the intro circuit lives on.
func TestIntroServiceQueueFull(t *testing.T) {
	in := newIntroNet(t, func(c *IntroConfig) { c.MaxQueued = 8 })
	s := in.establish(t, nil, 0, 0)
	in.n.mu.Lock()
	toSvc := in.n.chans[[2]string{"intro:1", "guard1:1"}]
	in.n.mu.Unlock()
	toSvc.circQueue.Store(8)
	if st := in.introduce(t, s.key, []byte("x"), false); st != IntroStatusLimited {
		t.Fatalf("full queue: status %d", st)
	}
	toSvc.circQueue.Store(7)
	if st := in.introduce(t, s.key, []byte("y"), false); st != IntroStatusPassed {
		t.Fatalf("queue below the bound: status %d", st)
	}
	waitFor(t, func() bool { return len(s.bodies()) == 1 }, "INTRODUCE2")
	if string(s.bodies()[0][32:]) != "y" || isDone(s.cc.Done()) {
		t.Fatal("the dropped introduction arrived, or the intro circuit died")
	}
	if st := in.ip.sw.Stats(); st.IntroRateLimited != 1 {
		t.Fatalf("IntroRateLimited = %d", st.IntroRateLimited)
	}
	// A channel without CircuitQueueLen that refuses the INTRODUCE2 costs
	// the service its intro circuit (its cell counters moved on), never
	// the reader a wait: status 2, the circuit destroyed with reason 5,
	// the key forgotten.
	toSvc.failNext.Store(true)
	if st := in.introduce(t, s.key, []byte("z"), false); st != IntroStatusLimited {
		t.Fatalf("refused INTRODUCE2: status %d", st)
	}
	destroyedWith(t, in.n, s.cc, cell.DestroyResource)
	waitFor(t, func() bool { return in.ip.sw.Stats().IntroCircuits == 0 }, "the key forgotten")
}

// The signed bytes follow spec/circuits.md §9 exactly.
func TestIntroSignedBytesLayout(t *testing.T) {
	var id keys.NodeID
	id[0], id[31] = 0xaa, 0xbb
	var key [32]byte
	key[0] = 0xcc
	b := IntroSignedBytes("net", id, key, 0x0102, 0x0304)
	want := append([]byte("darkmatter establish intro v1\x00\x03net"), id[:]...)
	want = append(append(want, key[:]...), 1, 2, 3, 4)
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x\nwant %x", b, want)
	}
}

// KeepAlive resets the idle timer of every hop of an intro circuit.
func TestIntroKeepAlive(t *testing.T) {
	in := newIntroNet(t, nil)
	s := in.establish(t, nil, 0, 0)
	var rcs []*relayCirc
	for _, fn := range []*fakeNode{in.guards[0], in.ip} {
		rcs = append(rcs, fn.sw.relayCircuits()...)
	}
	if len(rcs) != 2 {
		t.Fatalf("%d relay circuits, want 2", len(rcs))
	}
	for _, rc := range rcs {
		rc.idle.Store(5)
	}
	if err := s.cc.KeepAlive(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return rcs[0].idle.Load() == 0 && rcs[1].idle.Load() == 0 }, "both hops saw traffic")
	if isDone(s.cc.Done()) {
		t.Fatal("DROP killed the intro circuit")
	}
}
