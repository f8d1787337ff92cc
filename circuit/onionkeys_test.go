package circuit

import (
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/onionhs"
)

// createFor is a fresh message 1 for the onion pair p.
func createFor(t testing.TB, p keys.OnionPair) []byte {
	t.Helper()
	_, msg, err := onionhs.ClientStart(nil, "test", onionhs.RelayKeys{Onion: p.Onion.Public(), KEM: p.KEM.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// rotatingRelay adds a relay whose switch takes its onion keys from a
// keyring that starts with the node's own pair.
func rotatingRelay(t testing.TB, n *fakeNet) (*fakeNode, *keys.OnionKeyring) {
	var ring *keys.OnionKeyring
	r := n.addNodeWith(t, "relay", nil, func(c *Config) {
		ring = keys.NewOnionKeyring(keys.OnionPair{Onion: c.Onion, KEM: c.KEM})
		c.OnionKeys, c.Onion, c.KEM = ring, nil, nil
	})
	return r, ring
}

func newPair(t testing.TB) keys.OnionPair {
	t.Helper()
	p, err := keys.GenerateOnionPair(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// After a rotation, a CREATE made for the previous pair is answered until
// the pair is retired, then refused with DESTROY reason 6 (handshake), and
// the retired pair's private keys are zeroed. A CREATE for the new pair is
// answered throughout.
func TestCreateWithPreviousOnionKey(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	r, ring := rotatingRelay(t, n)
	old := ring.Current()
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	id := 0
	create := func(p keys.OnionPair) {
		id++
		sendCreate(t, ch, rawID(id), createFor(t, p))
	}
	waitReplies := func(k int) {
		eventually(t, func() bool { return replies.len() == k }, "replies")
	}

	create(old)
	waitReplies(1)
	next := newPair(t)
	ring.Rotate(next)
	create(old)  // previous pair, during the overlap
	create(next) // current pair
	waitReplies(3)
	if got := replies.count(cell.CmdCreated, 0); got != 3 {
		t.Fatalf("%d CREATED of 3 during the overlap: %+v", got, replies.got)
	}

	oldMsg := createFor(t, old)
	ring.Retire()
	if !old.Onion.Erased() || !old.KEM.Erased() || old.Onion.Bytes() != [32]byte{} || old.KEM.Seed() != [keys.KEMSeedSize]byte{} {
		t.Fatal("retired pair not zeroed")
	}
	id++
	sendCreate(t, ch, rawID(id), oldMsg) // made before the retirement
	create(next)
	waitReplies(5)
	if got := replies.count(cell.CmdCreated, 0); got != 4 {
		t.Fatalf("%d CREATED of 4 expected after the retirement: %+v", got, replies.got)
	}
	if got := replies.count(cell.CmdDestroy, cell.DestroyHandshake); got != 1 {
		t.Fatalf("%d DESTROY(handshake), want 1 for the retired key", got)
	}
}

// The replay filter covers both pairs: a message 1 answered with the
// previous pair is refused when replayed, with either pair in place.
func TestReplayAcrossOnionKeys(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	r, ring := rotatingRelay(t, n)
	old := ring.Current()
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	msgOld := createFor(t, old)
	sendCreate(t, ch, rawID(1), msgOld)
	eventually(t, func() bool { return replies.len() == 1 }, "first reply")
	ring.Rotate(newPair(t))
	sendCreate(t, ch, rawID(2), msgOld) // same message, now for the previous pair
	msgNew := createFor(t, ring.Current())
	sendCreate(t, ch, rawID(3), msgNew)
	eventually(t, func() bool { return replies.len() == 3 }, "replies")
	sendCreate(t, ch, rawID(4), msgNew)
	eventually(t, func() bool { return replies.len() == 4 }, "replies")
	if got := replies.count(cell.CmdCreated, 0); got != 2 {
		t.Fatalf("%d CREATED, want 2: %+v", got, replies.got)
	}
	if st := r.sw.Stats(); st.Replays != 2 {
		t.Fatalf("Replays = %d, want 2", st.Replays)
	}
}

// A switch configured with Onion and KEM only answers as before (a single
// pair that never rotates).
func TestFixedOnionKeys(t *testing.T) {
	n := newFakeNet()
	defer n.close()
	r := n.addNode(t, "relay", nil)
	var replies rawReplies
	ch := n.rawChannel(r, replies.handle)
	sendCreate(t, ch, rawID(1), goodCreate(t, r))
	sendCreate(t, ch, rawID(2), createFor(t, newPair(t)))
	eventually(t, func() bool { return replies.len() == 2 }, "replies")
	if replies.count(cell.CmdCreated, 0) != 1 || replies.count(cell.CmdDestroy, cell.DestroyHandshake) != 1 {
		t.Fatalf("replies %+v", replies.got)
	}
}

// benchRespond measures the relay's handshake (Switch.respond) for a
// CREATE made for the current pair (previous false) or the previous one.
func benchRespond(b *testing.B, previous bool) {
	k, err := keys.GenerateNodeKeys(nil)
	if err != nil {
		b.Fatal(err)
	}
	fn := &fakeNode{keys: k, net: newFakeNet()}
	cur := newPair(b)
	prev := keys.OnionPair{Onion: k.Onion, KEM: k.KEM}
	ring := keys.NewOnionKeyring(prev)
	ring.Rotate(cur)
	s, err := NewSwitch(Config{Network: "test", OnionKeys: ring, Linker: fn, Extender: fn})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	target := cur
	if previous {
		target = prev
	}
	msgs := make([][]byte, 256)
	for i := range msgs {
		msgs[i] = createFor(b, target)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.respond(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCreateCurrentKey is the handshake of a CREATE made for the
// relay's current onion pair.
func BenchmarkCreateCurrentKey(b *testing.B) { benchRespond(b, false) }

// BenchmarkCreatePreviousKey is the same for the previous pair, during the
// overlap: one failed attempt with the current pair first.
func BenchmarkCreatePreviousKey(b *testing.B) { benchRespond(b, true) }
