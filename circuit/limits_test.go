package circuit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// These tests play a hostile peer against one relay: each checks one
// limit of spec/circuits.md §5.4.

// rawReplies collects what a relay sends back on a raw channel.
type rawReplies struct {
	mu  sync.Mutex
	got []rawReply
}

type rawReply struct {
	id     uint32
	cmd    cell.Command
	reason byte // DESTROY's
}

func (r *rawReplies) handle(c *cell.Cell) {
	r.mu.Lock()
	r.got = append(r.got, rawReply{c.Circ(), c.Cmd(), c.Body()[0]})
	r.mu.Unlock()
	c.Free()
}

func (r *rawReplies) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// count returns how many replies were cmd, for DESTROY with reason.
func (r *rawReplies) count(cmd cell.Command, reason byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if g.cmd == cmd && (cmd != cell.CmdDestroy || g.reason == reason) {
			n++
		}
	}
	return n
}

// rawID is the k-th circuit ID of a raw peer, which opened the link and so
// allocates IDs with the high bit set.
func rawID(k int) uint32 { return 1<<31 | uint32(k) }

// sendCreate sends CREATE with msg on id.
func sendCreate(t testing.TB, ch *fakeChan, id uint32, msg []byte) {
	t.Helper()
	c := cell.New(id, cell.CmdCreate)
	c.SetPayload(msg)
	if err := ch.Send(c); err != nil {
		t.Fatal(err)
	}
}

// junkCreate is a message 1 of the right size that fails the handshake
// after the relay's first X25519 operation.
func junkCreate() []byte {
	m := make([]byte, onionhs.ClientMessageSize)
	rand.Read(m)
	return m
}

// goodCreate is a fresh, valid message 1 for fn.
func goodCreate(t testing.TB, fn *fakeNode) []byte {
	t.Helper()
	_, msg, err := onionhs.ClientStart(nil, "test", onionhs.RelayKeys{Onion: fn.keys.Onion.Public(), KEM: fn.keys.KEM.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func eventually(t *testing.T, f func() bool, what string) {
	t.Helper()
	waitFor(t, f, what)
}

// tokenRandom lets one read through per token, or all once closed: a
// relay's handshake workers stop inside each handshake until the test
// hands them a token, so the test decides how fast handshakes run and can
// queue CREATEs behind them.
type tokenRandom chan struct{}

func (g tokenRandom) Read(p []byte) (int, error) {
	<-g
	return rand.Read(p)
}

// A CREATE flood on one channel does not hold up another channel's
// CREATE: the handshake workers serve channels round robin, so the honest
// CREATE is answered after about one flood CREATE per worker, not after
// the flood. (With one FIFO for every channel it waited for the whole
// flood.)
func TestCreateFloodDoesNotStarveOtherChannels(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	client := n.addNode(t, "client", nil)
	tokens := make(tokenRandom)
	r := n.addNodeWith(t, "relay", nil, func(c *Config) {
		// Only the queues limit the flood here, not the rate.
		c.CreateRate, c.CreateBurst = 1e9, 1e9
		c.Handshakes = 1
		c.Random = tokens
	})
	defer close(tokens) // before n.close: let the worker finish
	const flood = 200
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	for k := range flood {
		sendCreate(t, ch, rawID(k+1), goodCreate(t, r))
	}
	// The worker holds the first; the others queue.
	eventually(t, func() bool { return r.sw.Stats().PendingCreates == flood-1 }, "flood queued")
	built := make(chan error, 1)
	var cc *ClientCirc
	go func() {
		var err error
		cc, err = client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{r}))
		built <- err
	}()
	eventually(t, func() bool { return r.sw.Stats().PendingCreates == flood }, "honest CREATE queued")
	// answered counts the handshakes done, as the relay sees them.
	floodEnd := ch.other
	answered := func() (flood int, honest bool) {
		for _, rc := range r.sw.relayCircuits() {
			rc.mu.Lock()
			keyed := rc.layer != nil
			rc.mu.Unlock()
			if keyed && rc.prev == floodEnd {
				flood++
			} else if keyed {
				honest = true
			}
		}
		return flood, honest
	}
	// One token at a time: a token is taken only when the worker reached
	// its next handshake, so at most one flood handshake runs past the
	// honest one.
	for {
		if _, honest := answered(); honest {
			break
		}
		tokens <- struct{}{}
	}
	floodDone, _ := answered()
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// The flood CREATE the worker held, the one whose turn came before
	// the honest channel's, and maybe one begun meanwhile.
	if floodDone > 3 {
		t.Fatalf("the honest CREATE waited for %d of %d flood handshakes", floodDone, flood)
	}
}

// CREATEs beyond a channel's token bucket are refused with DESTROY 5
// before any handshake work.
func TestCreateRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.CreateRate, c.CreateBurst = 10, 20 })
		var replies rawReplies
		ch := n.rawChannel(r, replies.handle)
		for k := range 100 {
			sendCreate(t, ch, rawID(k+1), junkCreate())
		}
		synctest.Wait()
		if got := replies.count(cell.CmdDestroy, cell.DestroyResource); got != 80 {
			t.Fatalf("%d CREATEs refused for the rate, want 80", got)
		}
		st := r.sw.Stats()
		if st.CreateRateLimited != 80 || st.HandshakeFailed != 20 {
			t.Fatalf("stats %+v: want 80 rate-limited, 20 handshakes tried", st)
		}
		time.Sleep(time.Second) // 10 tokens
		for k := range 20 {
			sendCreate(t, ch, rawID(200+k), junkCreate())
		}
		synctest.Wait()
		if st := r.sw.Stats(); st.CreateRateLimited != 90 || st.HandshakeFailed != 30 {
			t.Fatalf("a second later: %+v, want 90 rate-limited, 30 handshakes", st)
		}
	})
}

// The same message 1 makes one circuit, however often and on whichever
// channel it is replayed.
func TestReplayedCreateRefused(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	r := n.addNode(t, "relay", nil)
	msg := goodCreate(t, r)
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	// Two at once: both pass admission, the second to finish is refused.
	sendCreate(t, ch, rawID(1), msg)
	sendCreate(t, ch, rawID(2), msg)
	eventually(t, func() bool { return replies.len() == 2 }, "two answers")
	// Later ones are refused at admission, on any channel.
	sendCreate(t, ch, rawID(3), msg)
	var other rawReplies
	sendCreate(t, n.rawChannel(r, other.handle), rawID(1), msg)
	eventually(t, func() bool { return replies.len() == 3 && other.len() == 1 }, "answers to the replays")
	if c, d := replies.count(cell.CmdCreated, 0), replies.count(cell.CmdDestroy, cell.DestroyHandshake); c != 1 || d != 2 {
		t.Fatalf("%d CREATED and %d DESTROY 6 for one message sent three times, want 1 and 2", c, d)
	}
	if other.count(cell.CmdDestroy, cell.DestroyHandshake) != 1 {
		t.Fatalf("replay on another channel: %+v", other.got)
	}
	if got := r.sw.Stats().Replays; got != 3 {
		t.Fatalf("%d replays counted, want 3", got)
	}
	if got := r.sw.Circuits(); got != 1 {
		t.Fatalf("%d circuits, want 1", got)
	}
}

// The replay filter holds at most its size and forgets keys after two
// windows.
func TestReplayFilterBoundsAndAges(t *testing.T) {
	f := newReplayFilter(4, time.Hour)
	now := time.Unix(1e9, 0)
	key := func(i byte) *[32]byte { return &[32]byte{i} }
	for i := byte(1); i <= 3; i++ {
		if !f.add(key(i), now) {
			t.Fatalf("fresh key %d refused", i)
		}
	}
	if f.add(key(1), now) || !f.seen(key(2), now) {
		t.Fatal("a recent key was forgotten")
	}
	f.add(key(4), now)
	f.add(key(5), now) // generations of 2: key 1 and 2 are out
	if f.seen(key(1), now) || len(f.cur)+len(f.old) > 4 {
		t.Fatalf("filter holds %d keys, remembers key 1", len(f.cur)+len(f.old))
	}
	if !f.seen(key(5), now.Add(time.Hour)) {
		t.Fatal("a key forgotten after one window")
	}
	if f.seen(key(5), now.Add(3*time.Hour)) || f.old != nil {
		t.Fatal("a key remembered after two windows")
	}
}

// A channel carries at most MaxCircuitsPerChannel circuits in each half of
// its ID space, and a relay at most MaxCircuits that peers opened.
func TestCircuitLimits(t *testing.T) {
	t.Run("peer half", func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.MaxCircuitsPerChannel = 4 })
		var replies rawReplies
		ch := n.rawChannel(r, replies.handle)
		for k := range 6 {
			sendCreate(t, ch, rawID(k+1), goodCreate(t, r))
		}
		eventually(t, func() bool { return replies.len() == 6 }, "answers")
		if c, d := replies.count(cell.CmdCreated, 0), replies.count(cell.CmdDestroy, cell.DestroyResource); c != 4 || d != 2 {
			t.Fatalf("%d CREATED, %d refused; want 4 and 2", c, d)
		}
	})
	t.Run("relay", func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.MaxCircuits = 3 })
		var a, b rawReplies
		cha, chb := n.rawChannel(r, a.handle), n.rawChannel(r, b.handle)
		sendCreate(t, cha, rawID(1), goodCreate(t, r))
		sendCreate(t, cha, rawID(2), goodCreate(t, r))
		eventually(t, func() bool { return a.count(cell.CmdCreated, 0) == 2 }, "two circuits")
		sendCreate(t, chb, rawID(1), goodCreate(t, r))
		sendCreate(t, chb, rawID(2), goodCreate(t, r))
		eventually(t, func() bool { return b.len() == 2 }, "answers")
		if b.count(cell.CmdCreated, 0) != 1 || b.count(cell.CmdDestroy, cell.DestroyResource) != 1 {
			t.Fatalf("second channel: %+v, want one circuit and one refusal", b.got)
		}
	})
	t.Run("per source", func(t *testing.T) {
		// Two links from one address share its bound; another address
		// still gets circuits.
		n := newFakeNet()
		defer n.close()
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.MaxCircuitsPerSource = 3 })
		var a, b, c rawReplies
		cha := n.rawChannelFrom(r, "198.51.100.7", a.handle)
		chb := n.rawChannelFrom(r, "198.51.100.7", b.handle)
		chc := n.rawChannelFrom(r, "203.0.113.9", c.handle)
		for k := range 2 {
			sendCreate(t, cha, rawID(k+1), goodCreate(t, r))
		}
		eventually(t, func() bool { return a.count(cell.CmdCreated, 0) == 2 }, "two circuits")
		for k := range 2 {
			sendCreate(t, chb, rawID(k+1), goodCreate(t, r))
			sendCreate(t, chc, rawID(k+1), goodCreate(t, r))
		}
		eventually(t, func() bool { return b.len() == 2 && c.len() == 2 }, "answers")
		if b.count(cell.CmdCreated, 0) != 1 || b.count(cell.CmdDestroy, cell.DestroyResource) != 1 {
			t.Fatalf("second link of the source: %+v, want one circuit and one refusal", b.got)
		}
		if c.count(cell.CmdCreated, 0) != 2 {
			t.Fatalf("another source: %+v, want two circuits", c.got)
		}
		// A closed link gives its source's circuits back.
		cha.close()
		eventually(t, func() bool {
			r.sw.mu.Lock()
			defer r.sw.mu.Unlock()
			return r.sw.sourceCircs["198.51.100.7"] == 1
		}, "the closed link's circuits released")
	})
	t.Run("own half", func(t *testing.T) {
		// The guard's EXTENDs share its half of the guard–middle link.
		n := newFakeNet()
		defer n.close()
		c1 := n.addNode(t, "client1", nil)
		c2 := n.addNode(t, "client2", nil)
		g := n.addNodeWith(t, "guard", nil, func(c *Config) { c.MaxCircuitsPerChannel = 2 })
		m := n.addNode(t, "middle", nil)
		for range 2 {
			if _, err := c1.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m})); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c2.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m}))
		var de *DestroyedError
		if !errors.As(err, &de) || de.Reason != cell.DestroyResource {
			t.Fatalf("third EXTEND over a full link: %v, want DESTROY 5", err)
		}
	})
}

// A cell for an unknown circuit draws at most one DESTROY per ID, within
// the channel's DESTROY rate; cells for a circuit just destroyed draw none.
func TestUnknownCircuitDestroyOncePerIDAndRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.DestroyReplyRate, c.DestroyReplyBurst = 10, 20 })
		relay := func(ch *fakeChan, id uint32) {
			if err := ch.Send(cell.New(id, cell.CmdRelay)); err != nil {
				t.Fatal(err)
			}
		}
		var replies rawReplies
		ch := n.rawChannel(r, replies.handle)
		for range 5 {
			relay(ch, 7)
		}
		synctest.Wait()
		if got := replies.count(cell.CmdDestroy, cell.DestroyProtocol); got != 1 {
			t.Fatalf("%d DESTROYs for 5 cells on one unknown circuit, want 1", got)
		}
		for k := range 100 {
			relay(ch, uint32(1000+k))
		}
		synctest.Wait()
		if got := replies.len(); got != 20 {
			t.Fatalf("%d DESTROYs, want the burst of 20", got)
		}
		time.Sleep(time.Second)
		for k := range 20 {
			relay(ch, uint32(2000+k))
		}
		synctest.Wait()
		if got := replies.len(); got != 30 {
			t.Fatalf("%d DESTROYs a second later, want 30", got)
		}
		if st := r.sw.Stats(); st.DestroyReplies != 30 || st.UnknownCircuitDropped != 125-30 {
			t.Fatalf("stats %+v", st)
		}

		// A circuit the peer destroyed: its late cells draw nothing.
		var other rawReplies
		ch2 := n.rawChannel(r, other.handle)
		sendCreate(t, ch2, rawID(1), goodCreate(t, r))
		synctest.Wait()
		d := cell.New(rawID(1), cell.CmdDestroy)
		ch2.Send(d)
		relay(ch2, rawID(1))
		synctest.Wait()
		if other.len() != 1 || other.count(cell.CmdCreated, 0) != 1 {
			t.Fatalf("replies %+v, want CREATED only", other.got)
		}
	})
}

// A DESTROY is passed on with reason 8 (DESTROYED) whatever reason it
// carried, in both directions and across a joint: hops cannot signal each
// other through the reason.
func TestDestroyReasonNotPassedOn(t *testing.T) {
	t.Run("backward", func(t *testing.T) {
		n, client, relays := threeHops(t)
		defer n.close()
		cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
		if err != nil {
			t.Fatal(err)
		}
		relays[2].sw.killAll(0x42)
		<-cc.Done()
		var de *DestroyedError
		if !errors.As(cc.Err(), &de) || de.Reason != cell.DestroyDestroyed {
			t.Fatalf("client: %v, want reason 8", cc.Err())
		}
		for _, hop := range [][3]string{{"exit:1", "middle:1", "\x42"}, {"middle:1", "guard:1", "\x08"}, {"guard:1", "client:1", "\x08"}} {
			if got := string(n.destroysSeen(hop[0], hop[1])); got != hop[2] {
				t.Errorf("%s → %s: reasons %x, want %x", hop[0], hop[1], got, hop[2])
			}
		}
	})
	t.Run("forward", func(t *testing.T) {
		n, client, relays := threeHops(t)
		defer n.close()
		cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
		if err != nil {
			t.Fatal(err)
		}
		cc.Close()
		waitFor(t, func() bool { return totalCircuits(n) == 0 }, "circuit gone")
		for _, hop := range [][3]string{{"client:1", "guard:1", "\x00"}, {"guard:1", "middle:1", "\x08"}, {"middle:1", "exit:1", "\x08"}} {
			if got := string(n.destroysSeen(hop[0], hop[1])); got != hop[2] {
				t.Errorf("%s → %s: reasons %x, want %x", hop[0], hop[1], got, hop[2])
			}
		}
	})
	t.Run("joint", func(t *testing.T) {
		n, _, x, y, _ := jointNet(t)
		// A plain stream message on a joined circuit: the joint destroys
		// X's circuit (reason 1) and Y's with reason 8.
		x.sendTo(1, cell.RelayData, 1, []byte("plain"), nil)
		<-y.Done()
		waitFor(t, func() bool { return totalCircuits(n) == 0 }, "both circuits gone")
		if got := n.destroysSeen("rendezvous:1", "guard2:1"); string(got) != "\x08" {
			t.Fatalf("the joint sent %x to Y's side, want 08", got)
		}
		if got := n.destroysSeen("rendezvous:1", "guard1:1"); string(got) != "\x01" {
			t.Fatalf("the joint sent %x to X's side, want 01", got)
		}
	})
}

// A relay refuses (DESTROY 9) an EXTEND to itself, back to the previous
// hop, or that its Extender refuses; a client refuses a path holding a
// relay twice.
func TestExtendRefused(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	client := n.addNode(t, "client", nil)
	g := n.addNode(t, "guard", nil)
	m := n.addNode(t, "middle", nil)

	cc, err := client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g}))
	if err != nil {
		t.Fatal(err)
	}
	err = cc.extendTo(ctxT(t), 1, g.hop())
	var de *DestroyedError
	if !errors.As(err, &de) || de.Reason != cell.DestroyExtendRefused {
		t.Fatalf("EXTEND to the relay itself: %v, want DESTROY 9", err)
	}

	cc, err = client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cc.extendTo(ctxT(t), 2, g.hop()); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("EXTEND back to the previous hop: %v", err)
	}
	if got := m.sw.Stats().ExtendRefused; got != 1 {
		t.Fatalf("middle refused %d EXTENDs, want 1", got)
	}

	g.refuse = func(addr string) error { return fmt.Errorf("not a relay's address: %w", ErrExtendRefused) }
	_, err = client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m}))
	var be *BuildError
	if !errors.As(err, &be) || be.Hop != 1 || !errors.As(err, &de) || de.Reason != cell.DestroyExtendRefused {
		t.Fatalf("EXTEND the Extender refuses: %v, want DESTROY 9 at hop 2", err)
	}
	g.refuse = nil

	if _, err := client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{g, m, g})); err == nil {
		t.Fatal("a path with one relay twice was built")
	}
	waitFor(t, func() bool { return g.sw.Circuits() == 0 && m.sw.Circuits() == 0 }, "refused circuits freed")
}

// A circuit on which no cell passes for CircuitIdleTimeout is destroyed;
// one with a keepalive (DROP) lives on.
func TestIdleCircuitExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		client := n.addNode(t, "client", nil)
		r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.CircuitIdleTimeout = time.Minute })
		idle, err := client.sw.BuildCircuit(t.Context(), path([]*fakeNode{r}))
		if err != nil {
			t.Fatal(err)
		}
		busy, err := client.sw.BuildCircuit(t.Context(), path([]*fakeNode{r}))
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		for range 9 {
			time.Sleep(20 * time.Second)
			if err := busy.sendTo(0, cell.RelayDrop, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		var de *DestroyedError
		if !errors.As(idle.Err(), &de) || de.Reason != cell.DestroyResource {
			t.Fatalf("idle circuit after 3 minutes: %v, want DESTROY 5", idle.Err())
		}
		if busy.Err() != nil {
			t.Fatalf("circuit with keepalives: %v", busy.Err())
		}
		if got := r.sw.Stats().IdleExpired; got != 1 {
			t.Fatalf("%d circuits expired, want 1", got)
		}
	})
}

// DropCircuit destroys a circuit with reason 5 towards both sides.
func TestDropCircuit(t *testing.T) {
	n, client, relays := threeHops(t)
	defer n.close()
	cc, err := client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	mid := relays[1].sw
	rcs := mid.relayCircuits()
	if len(rcs) != 1 {
		t.Fatalf("%d circuits at the middle", len(rcs))
	}
	mid.DropCircuit(rcs[0].prev, rcs[0].prevID)
	<-cc.Done()
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "circuit freed everywhere")
	if got := n.destroysSeen("middle:1", "exit:1"); string(got) != "\x05" {
		t.Fatalf("exit got %x, want 05", got)
	}
	if got := n.destroysSeen("middle:1", "guard:1"); string(got) != "\x05" {
		t.Fatalf("guard got %x, want 05", got)
	}
	if mid.Stats().Dropped != 1 {
		t.Fatal("drop not counted")
	}
	// At the client's own end.
	cc, err = client.sw.BuildCircuit(ctxT(t), path(relays))
	if err != nil {
		t.Fatal(err)
	}
	client.sw.DropCircuit(cc.ch, cc.id)
	var de *DestroyedError
	if !errors.As(cc.Err(), &de) || de.Reason != cell.DestroyResource {
		t.Fatalf("client circuit: %v", cc.Err())
	}
	waitFor(t, func() bool { return totalCircuits(n) == 0 }, "circuit freed everywhere")
	mid.DropCircuit(rcs[0].prev, 12345) // unknown: ignored
}

// A RELAY cell for a circuit whose handshake has not finished is a
// protocol error (its sender cannot have the keys): it destroys the
// circuit without blocking the channel's reader, and the pending
// handshake is skipped.
func TestRelayBeforeCreated(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	tokens := make(tokenRandom)
	r := n.addNodeWith(t, "relay", nil, func(c *Config) { c.Handshakes = 1; c.Random = tokens })
	defer close(tokens)
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	sendCreate(t, ch, rawID(1), goodCreate(t, r)) // the worker stops in it
	sendCreate(t, ch, rawID(2), goodCreate(t, r)) // waits in the queue
	ch.Send(cell.New(rawID(2), cell.CmdRelay))
	eventually(t, func() bool { return replies.len() == 1 }, "an answer")
	if replies.count(cell.CmdDestroy, cell.DestroyProtocol) != 1 {
		t.Fatalf("replies %+v, want DESTROY 1", replies.got)
	}
	tokens <- struct{}{}
	eventually(t, func() bool { return replies.len() == 2 && r.sw.Stats().PendingCreates == 0 }, "CREATED for the first")
	if replies.count(cell.CmdCreated, 0) != 1 || r.sw.Circuits() != 1 {
		t.Fatalf("replies %+v, %d circuits", replies.got, r.sw.Circuits())
	}
}

// MaxStreams bounds the open streams at every end that serves them: an
// exit, and a client end serving streams across a joint.
func TestMaxStreamsAtEveryEnd(t *testing.T) {
	t.Run("exit", func(t *testing.T) {
		n := newFakeNet()
		defer n.close()
		client := n.addNode(t, "client", nil)
		e := n.addNodeWith(t, "exit", loopbackExit(), func(c *Config) { c.MaxStreams = 2 })
		addr, stop := echoServer(t)
		defer stop()
		cc, err := client.sw.BuildCircuit(ctxT(t), path([]*fakeNode{e}))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		for i := range 2 {
			st, err := cc.OpenStream(ctxT(t), addr)
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			defer st.Close()
		}
		if _, err := cc.OpenStream(ctxT(t), addr); streamerr.ReasonOf(err) != streamerr.ResourceLimit {
			t.Fatalf("third stream: %v, want RESOURCE_LIMIT", err)
		}
	})
	t.Run("client end", func(t *testing.T) {
		_, _, x, _, ln := jointNetWith(t, func(c *Config) { c.MaxStreams = 2 })
		go func() {
			for {
				if _, err := ln.Accept(); err != nil {
					return
				}
			}
		}()
		for i := range 2 {
			if _, err := x.OpenStream(ctxT(t), "service:80"); err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
		}
		if _, err := x.OpenStream(ctxT(t), "service:80"); streamerr.ReasonOf(err) != streamerr.ResourceLimit {
			t.Fatalf("third stream: %v, want RESOURCE_LIMIT", err)
		}
	})
}
