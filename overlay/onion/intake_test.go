package onion

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func pend(effort uint32, n uint64) *pending {
	return &pending{in: hs.Intro{PoWEffort: effort}, n: n}
}

func (q queue) summary() [][2]uint64 {
	var out [][2]uint64
	for _, p := range q {
		out = append(out, [2]uint64{uint64(p.in.PoWEffort), p.n})
	}
	return out
}

// The queue serves the highest effort first and, among equal efforts, the
// oldest first.
func TestQueueOrder(t *testing.T) {
	var q queue
	in := []*pending{pend(0, 1), pend(5, 2), pend(0, 3), pend(9, 4), pend(5, 5), pend(0, 6), pend(9, 7)}
	for _, p := range in {
		heap.Push(&q, p)
	}
	var got [][2]uint64
	for q.Len() > 0 {
		p := heap.Pop(&q).(*pending)
		got = append(got, [2]uint64{uint64(p.in.PoWEffort), p.n})
	}
	want := [][2]uint64{{9, 4}, {9, 7}, {5, 2}, {5, 5}, {0, 1}, {0, 3}, {0, 6}}
	if !slices.Equal(got, want) {
		t.Fatalf("pop order %v, want %v", got, want)
	}
}

// removeLowestLocked drops the lowest effort, the newest among equals, and
// leaves a valid heap.
func TestRemoveLowest(t *testing.T) {
	in := &intake{}
	for _, p := range []*pending{pend(5, 1), pend(0, 2), pend(3, 3), pend(0, 4), pend(5, 5)} {
		heap.Push(&in.q, p)
	}
	var removed [][2]uint64
	for in.q.Len() > 0 {
		before := in.q.summary()
		in.removeLowestLocked()
		after := in.q.summary()
		for _, x := range before {
			if !slices.Contains(after, x) {
				removed = append(removed, x)
			}
		}
		// The rest still pops in priority order.
		c := slices.Clone(in.q)
		for i := 1; i < len(c); i++ {
			if c.Less(i, (i-1)/2) {
				t.Fatalf("heap order broken after a removal: %v", c.summary())
			}
		}
	}
	want := [][2]uint64{{0, 4}, {0, 2}, {3, 3}, {5, 5}, {5, 1}}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
}

// The replay cache forgets the oldest value first and never holds more
// than its bound.
func TestReplayCacheEviction(t *testing.T) {
	c := newReplayCache(3)
	v := func(b byte) [32]byte { return [32]byte{b} }
	for _, b := range []byte{1, 2, 3} {
		if !c.add(v(b)) {
			t.Fatalf("%d is new", b)
		}
	}
	if c.add(v(1)) || c.add(v(3)) {
		t.Fatal("a remembered value counts as new")
	}
	if !c.add(v(4)) { // forgets 1, the oldest
		t.Fatal("4 is new")
	}
	if c.add(v(2)) || c.add(v(3)) || c.add(v(4)) {
		t.Fatal("2, 3 and 4 are still remembered")
	}
	if !c.add(v(1)) { // forgets 2
		t.Fatal("1 was forgotten first")
	}
	if !c.add(v(2)) { // forgets 3
		t.Fatal("2 was forgotten second")
	}
	if c.add(v(4)) || c.add(v(1)) || c.add(v(2)) {
		t.Fatal("the three newest are remembered")
	}
	big := newReplayCache(16)
	for i := range 1000 {
		big.add([32]byte{byte(i), byte(i >> 8)})
		if len(big.seen) > 16 || len(big.ring) > 16 {
			t.Fatalf("cache holds %d values, bound 16", len(big.seen))
		}
	}
	if len(big.seen) != 16 {
		t.Fatalf("cache holds %d values, want 16", len(big.seen))
	}
}

// handle queues a valid introduction and drops replays, unknown auth keys,
// garbage, bad proofs of work and reused proofs, counting each.
func TestIntakeHandle(t *testing.T) {
	env := newFakeEnv()
	now := time.Now()
	s := newTestService(t, env, ServiceConfig{Now: func() time.Time { return now }})
	ip := s.addIntro(t)
	in := s.intake
	rp := randomNodeID()
	check := func(what string, queued int, want ServiceStats) {
		t.Helper()
		st := s.Stats()
		if len(in.q) != queued || st.Introductions != want.Introductions || st.Dropped != want.Dropped || st.Replays != want.Replays {
			t.Fatalf("%s: queued %d, stats %+v; want queued %d, %+v", what, len(in.q), st, queued, want)
		}
		if len(in.ready) != len(in.q) {
			t.Fatalf("%s: %d worker tokens for %d queued", what, len(in.ready), len(in.q))
		}
	}

	body := introduce(t, s, ip, intro(rp, 0))
	in.handle(body)
	check("valid", 1, ServiceStats{Introductions: 1})
	in.handle(body)
	check("replay", 1, ServiceStats{Introductions: 2, Dropped: 1, Replays: 1})

	stranger, _, _ := ed25519.GenerateKey(rand.Reader)
	other := append([]byte(nil), body...)
	copy(other, stranger)
	in.handle(other)
	check("unknown auth key", 1, ServiceStats{Introductions: 2, Dropped: 2, Replays: 1})
	in.handle(body[:32])
	check("no encrypted part", 1, ServiceStats{Introductions: 2, Dropped: 3, Replays: 1})
	garbage := append([]byte(nil), body...)
	garbage[100] ^= 1
	in.handle(garbage)
	check("modified", 1, ServiceStats{Introductions: 3, Dropped: 4, Replays: 1})

	// A claimed effort needs a valid proof.
	bk := s.blindedKeys()[0]
	bad := intro(rp, 1000)
	for hs.CheckPoW(in.seed, bk, bad.PoWEffort, bad.PoWNonce) {
		bad.PoWNonce[0]++
	}
	in.handle(introduce(t, s, ip, bad))
	check("bad proof of work", 1, ServiceStats{Introductions: 4, Dropped: 5, Replays: 1})
	// A proof for another seed is no proof either.
	otherSeed := in.seed
	otherSeed[0] ^= 1
	wrongSeed := intro(rp, 1000)
	for {
		n, err := hs.SolvePoW(t.Context(), otherSeed, bk, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !hs.CheckPoW(in.seed, bk, 1000, n) {
			wrongSeed.PoWNonce = n
			break
		}
	}
	in.handle(introduce(t, s, ip, wrongSeed))
	check("proof for another seed", 1, ServiceStats{Introductions: 5, Dropped: 6, Replays: 1})

	good := intro(rp, 1000)
	var err error
	if good.PoWNonce, err = hs.SolvePoW(t.Context(), in.seed, bk, good.PoWEffort); err != nil {
		t.Fatal(err)
	}
	in.handle(introduce(t, s, ip, good))
	check("valid proof of work", 2, ServiceStats{Introductions: 6, Dropped: 6, Replays: 1})
	if in.q[0].in.PoWEffort != 1000 {
		t.Fatalf("the solved introduction is not first: %v", in.q.summary())
	}
	// The same solution in a new handshake is a replay too: one solution
	// buys one introduction.
	reuse := good
	rand.Read(reuse.Cookie[:])
	in.handle(introduce(t, s, ip, reuse))
	check("reused proof of work", 2, ServiceStats{Introductions: 7, Dropped: 7, Replays: 2})
}

// Introductions through a replaced introduction point are accepted until
// the descriptors naming it have expired.
func TestIntakeRetiredAuthKey(t *testing.T) {
	now := time.Now()
	s := newTestService(t, newFakeEnv(), ServiceConfig{DescriptorTTL: time.Hour, Now: func() time.Time { return now }})
	ip := s.addIntro(t)
	body1 := introduce(t, s, ip, intro(randomNodeID(), 0))
	body2 := introduce(t, s, ip, intro(randomNodeID(), 0))
	s.mu.Lock()
	s.intros = nil
	s.retired[ip.pub] = now.Add(time.Hour)
	s.mu.Unlock()
	s.intake.handle(body1)
	if st := s.Stats(); st.Dropped != 0 || len(s.intake.q) != 1 {
		t.Fatalf("retired key refused: %+v", st)
	}
	now = now.Add(time.Hour + time.Second)
	s.intake.handle(body2)
	if st := s.Stats(); st.Dropped != 1 || len(s.intake.q) != 1 {
		t.Fatalf("expired key accepted: %+v", st)
	}
	if len(s.retired) != 0 {
		t.Fatal("the expired key is still remembered")
	}
}

// A full queue drops its lowest effort, the newest among equals, and marks
// the intake overloaded; a full inbox drops what arrives.
func TestIntakeQueueBound(t *testing.T) {
	s := newTestService(t, newFakeEnv(), ServiceConfig{PoW: PoWConfig{QueueLen: 2, InboxLen: 1}})
	ip := s.addIntro(t)
	in := s.intake
	bk := s.blindedKeys()[0]
	var cookies [][hs.CookieLen]byte
	for range 3 {
		x := intro(randomNodeID(), 0)
		cookies = append(cookies, x.Cookie)
		in.handle(introduce(t, s, ip, x))
	}
	if len(in.q) != 2 || s.Stats().Dropped != 1 || !in.overloaded || len(in.ready) != 2 {
		t.Fatalf("queue %d, stats %+v, overloaded %v", len(in.q), s.Stats(), in.overloaded)
	}
	hi := intro(randomNodeID(), 50)
	var err error
	if hi.PoWNonce, err = hs.SolvePoW(t.Context(), in.seed, bk, 50); err != nil {
		t.Fatal(err)
	}
	in.handle(introduce(t, s, ip, hi))
	if len(in.q) != 2 || s.Stats().Dropped != 2 {
		t.Fatalf("queue %d, stats %+v", len(in.q), s.Stats())
	}
	first := heap.Pop(&in.q).(*pending)
	second := heap.Pop(&in.q).(*pending)
	if first.in.Cookie != hi.Cookie || second.in.Cookie != cookies[0] {
		t.Fatal("the queue kept the wrong introductions: want the solved one, then the oldest")
	}

	in.overloaded = false
	in.offer(introduce(t, s, ip, intro(randomNodeID(), 0)))
	in.offer(introduce(t, s, ip, intro(randomNodeID(), 0)))
	if len(in.inbox) != 1 || s.Stats().Dropped != 3 || !in.overloaded {
		t.Fatalf("inbox %d, stats %+v, overloaded %v", len(in.inbox), s.Stats(), in.overloaded)
	}
}

// Workers serve the queue highest effort first and in arrival order among
// equal efforts: the rendezvous relays are asked for in that order.
func TestIntakeServesByEffort(t *testing.T) {
	env := newFakeEnv()
	s := newTestService(t, env, ServiceConfig{Workers: 1})
	ip := s.addIntro(t)
	in := s.intake
	bk := s.blindedKeys()[0]
	efforts := []uint32{0, 20, 0, 40, 20, 0}
	var rps []keys.NodeID
	for _, e := range efforts {
		x := intro(randomNodeID(), e)
		var err error
		if x.PoWNonce, err = hs.SolvePoW(t.Context(), in.seed, bk, e); err != nil {
			t.Fatal(err)
		}
		rps = append(rps, x.Rendezvous)
		in.handle(introduce(t, s, ip, x))
	}
	in.wg.Go(in.work)
	deadline := time.Now().Add(10 * time.Second)
	for len(env.built()) < len(efforts) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	want := []keys.NodeID{rps[3], rps[1], rps[4], rps[0], rps[2], rps[5]}
	if got := env.built(); !slices.Equal(got, want) {
		t.Fatalf("rendezvous served in the wrong order (%d of %d)", len(got), len(want))
	}
}

// The effort doubles (from MinEffort, up to MaxEffort) after an interval in
// which introductions were dropped or the queue stayed over half full,
// halves after an idle interval, falls to 0 below MinEffort, holds
// otherwise, and asks for a republication whenever it changes.
func TestEffortUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const update = 200 * time.Millisecond
		s := newTestService(t, newFakeEnv(), ServiceConfig{PoW: PoWConfig{Update: update, QueueLen: 8, MinEffort: 64, MaxEffort: 200}})
		in := s.intake
		in.wg.Go(in.updateLoop)
		time.Sleep(update / 2) // act between ticks
		step := func(overloaded bool, queued int, want uint32) {
			t.Helper()
			in.mu.Lock()
			in.overloaded = overloaded
			in.q = nil
			for i := range queued {
				heap.Push(&in.q, pend(0, uint64(i)))
			}
			in.mu.Unlock()
			before := in.effort()
			<-drain(s.wake)
			time.Sleep(update)
			synctest.Wait()
			if got := in.effort(); got != want {
				t.Fatalf("overloaded %v, %d queued: effort %d -> %d, want %d", overloaded, queued, before, got, want)
			}
			woke := len(s.wake) == 1
			if woke != (before != want) {
				t.Fatalf("effort %d -> %d: republication asked %v", before, want, woke)
			}
		}
		step(false, 0, 0)   // idle stays 0
		step(false, 3, 0)   // a short queue is no attack
		step(true, 0, 64)   // dropped: MinEffort
		step(false, 5, 128) // over half full: double
		step(false, 3, 128) // under half, not empty: hold
		step(true, 0, 200)  // capped at MaxEffort
		step(true, 8, 200)
		step(false, 0, 100) // idle: halve
		step(false, 1, 100)
		step(false, 0, 0) // 50 < MinEffort: off
		in.stop()
	})
}

// drain empties a wake channel and returns a closed channel.
func drain(c chan struct{}) <-chan struct{} {
	select {
	case <-c:
	default:
	}
	done := make(chan struct{})
	close(done)
	return done
}

// With the puzzle disabled the effort never rises.
func TestEffortDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, newFakeEnv(), ServiceConfig{PoW: PoWConfig{Disable: true, Update: time.Second}})
		in := s.intake
		in.start()
		in.mu.Lock()
		in.overloaded = true
		in.mu.Unlock()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if in.effort() != 0 {
			t.Fatalf("effort %d with the puzzle disabled", in.effort())
		}
		in.stop()
	})
}
