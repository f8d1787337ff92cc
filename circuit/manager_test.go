package circuit

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// The policy tests run the Manager against a fakeBuilder under
// testing/synctest: no crypto, no sockets, and the clock the Manager reads
// is the bubble's virtual one, so minutes pass at once. synctest.Test also
// fails a test that leaves a goroutine of its bubble blocked.

// dial opens a stream through m and fails the test on error.
func dial(t *testing.T, m *Manager, target, isolation string) net.Conn {
	t.Helper()
	c, err := m.DialStream(t.Context(), target, isolation)
	if err != nil {
		t.Fatalf("DialStream(%q, %q): %v", target, isolation, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Streams with one isolation key share a circuit; streams with different
// keys never do; a dead circuit is never reused.
func TestManagerReusesByIsolationKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{})

		a1 := circuitOf(t, dial(t, m, "example.com:80", "alice"))
		a2 := circuitOf(t, dial(t, m, "example.org:443", "alice"))
		if a1 != a2 || b.builds() != 1 {
			t.Fatalf("one key: %d builds, same circuit %v; want 1 build, one circuit", b.builds(), a1 == a2)
		}
		if n := a1.Streams(); n != 2 {
			t.Fatalf("alice's circuit carries %d streams, want 2", n)
		}

		seen := map[*fakeCircuit]string{a1: "alice"}
		for _, key := range []string{"bob", "", "alice\x00", "Alice", "carol"} {
			c := circuitOf(t, dial(t, m, "example.com:80", key))
			if other, ok := seen[c]; ok {
				t.Fatalf("keys %q and %q share a circuit", key, other)
			}
			seen[c] = key
		}
		if b.builds() != 6 || m.Circuits() != 6 {
			t.Fatalf("six keys: %d builds, %d circuits; want 6 and 6", b.builds(), m.Circuits())
		}

		// A dirty circuit with no open streams still takes new ones.
		for c, key := range seen {
			if c.Streams() == 0 {
				t.Fatalf("%q's circuit carries no stream", key)
			}
		}
		if c := circuitOf(t, dial(t, m, "example.net:80", "bob")); seen[c] != "bob" {
			t.Fatalf("bob's second stream went to %q's circuit", seen[c])
		}

		// The network destroys alice's circuit: her next stream gets a
		// new one.
		a1.Close()
		a3 := circuitOf(t, dial(t, m, "example.com:80", "alice"))
		if a3 == a1 || b.builds() != 7 {
			t.Fatalf("after alice's circuit died: reused %v, %d builds; want a new circuit, 7 builds", a3 == a1, b.builds())
		}
		if m.Circuits() != 6 {
			t.Fatalf("%d circuits open, want 6", m.Circuits())
		}
	})
}

// A burst of streams with one key waits for one build; a second key in the
// same burst gets its own.
func TestManagerBurstBuildsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		b.delay = time.Second // everyone arrives while the build runs
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{})

		const n = 16
		conns := make([]net.Conn, 2*n)
		errs := make([]error, 2*n)
		var wg sync.WaitGroup
		for i := range conns {
			key := "one"
			if i%2 == 1 {
				key = "two"
			}
			wg.Go(func() { conns[i], errs[i] = m.DialStream(t.Context(), "example.com:80", key) })
		}
		wg.Wait()
		circs := map[*fakeCircuit]int{}
		for i, c := range conns {
			if errs[i] != nil {
				t.Fatalf("stream %d: %v", i, errs[i])
			}
			defer c.Close()
			circs[circuitOf(t, c)]++
		}
		if b.builds() != 2 || len(circs) != 2 {
			t.Fatalf("a burst on two keys: %d builds, %d circuits; want 2 and 2", b.builds(), len(circs))
		}
		for c, streams := range circs {
			if streams != n || c.Streams() != n {
				t.Fatalf("a circuit got %d streams (%d open), want %d", streams, c.Streams(), n)
			}
		}
	})
}

// The exit must accept the target: its address when it is an IP literal,
// some public address on its port when it is a name.
func TestManagerChoosesExitByNeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		loopback, err := exitpolicy.Parse("accept 127.0.0.0/8:*,reject *:*")
		if err != nil {
			t.Fatal(err)
		}
		relays := append(fakeRelays(3, 0), fakeRelay(3, loopback), fakeRelay(4, exitpolicy.Default()))
		local, public := relays[3], relays[4]
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		m.SetGuard(relays[0].Hop) // not an exit, so either exit can be last

		exitOf := func(c net.Conn) Hop {
			hops := circuitOf(t, c).Hops()
			return hops[len(hops)-1]
		}
		for i := range 10 {
			key := string(rune('a' + i))
			if e := exitOf(dial(t, m, "127.0.0.1:8080", key)); e.Identity != local.Hop.Identity {
				t.Fatalf("IP-literal loopback target: exit %s, want the loopback-only exit", e.Addr)
			}
			if e := exitOf(dial(t, m, "example.com:80", key)); e.Identity != public.Hop.Identity {
				t.Fatalf("name target: exit %s, want the public exit", e.Addr)
			}
		}
		// Each key built a circuit per exit: a circuit whose exit does not
		// accept the target is not reused for it.
		if b.builds() != 20 {
			t.Fatalf("%d builds, want 20 (two exits for each of 10 keys)", b.builds())
		}

		// No exit accepts a private address but loopback.
		before := b.builds()
		_, err = m.DialStream(t.Context(), "10.1.2.3:80", "x")
		if streamerr.ReasonOf(err) != streamerr.NoExit || !errors.Is(err, errNoPath) {
			t.Fatalf("target no exit accepts: %v, want NoExit (no path)", err)
		}
		if b.builds() != before {
			t.Fatal("built a circuit although no exit accepts the target")
		}
	})
}

// Paths have distinct relays, no two in one /16 unless allowed, and an
// exit last.
func TestManagerPathRules(t *testing.T) {
	for _, allow := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			relays := guardRelays(6, 3)
			for i := 6; i < 9; i++ {
				relays[i].Reliable = false // exits are no guards: all stay free to end paths
			}
			relays[7].Hop.Addr = "tcp://10.1.200.7:9001" // an exit in the guard's 10.1/16
			b := newFakeBuilder()
			m := newFakeManager(t, b, relays, ManagerConfig{AllowSameSubnet: allow})
			m.SetGuard(relays[1].Hop)
			shared := 0
			for i := range 60 {
				dial(t, m, "example.com:80", string(rune('A'+i)))
			}
			for _, p := range b.pathsSince(0) {
				if len(p) != 3 {
					t.Fatalf("path of %d hops, want 3", len(p))
				}
				if !slices.ContainsFunc(relays[6:], func(r RelayInfo) bool { return r.Hop.Identity == p[2].Identity }) {
					t.Fatalf("last hop %s is not an exit", p[2].Addr)
				}
				if p[0].Identity == p[1].Identity || p[0].Identity == p[2].Identity || p[1].Identity == p[2].Identity {
					t.Fatal("a relay twice in a path")
				}
				if hasRelay(p, relays[7]) {
					shared++
				}
			}
			switch {
			case !allow && shared > 0:
				t.Fatalf("%d paths with two relays of one /16", shared)
			case allow && shared == 0:
				t.Fatal("AllowSameSubnet: the exit sharing the guard's /16 was never chosen in 60 paths")
			}
		})
	}
}

func TestSameSubnet(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"10.1.0.1:9001", "10.1.255.9:1", true},
		{"10.1.0.1:9001", "10.2.0.1:9001", false},
		{"tcp://10.1.0.1:9001", "quic://10.1.3.4:443", true},
		{"tcp://10.1.0.1:9001", "10.1.3.4:443", true},
		{"[::ffff:10.1.0.1]:9001", "10.1.3.4:443", true},
		{"[2001:db8:1::1]:9001", "[2001:db8:ffff::2]:9001", true},
		{"[2001:db8::1]:9001", "[2001:db9::1]:9001", false},
		{"[::ffff:10.1.0.1]:1", "[::ffff:10.2.0.1]:1", false},
		{"relay.example:9001", "relay.example:9001", false},
		{"10.1.0.1", "10.1.0.2", false}, // no port: not an address
	} {
		if got := sameSubnet(c.a, c.b); got != c.same {
			t.Errorf("sameSubnet(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

// A link whose EXTEND failed is left out of paths for a minute, then for
// twice as long after each further failure; a success resets it. A failed
// middle does not cost the guard its place.
func TestManagerBacksOffFailedRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Three relays and one primary guard: every path is guard, middle,
		// exit.
		relays := fakeRelays(2, 1)
		guard, middle := relays[0], relays[1]
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{Guards: GuardParams{Primary: 1}})
		m.SetGuard(guard.Hop)
		key := 0
		try := func() error {
			key++
			c, err := m.DialStream(t.Context(), "example.com:80", string(rune('a'+key)))
			if err == nil {
				c.Close()
			}
			return err
		}
		// expect says whether a stream can be opened now and whether the
		// Manager asked for a build.
		expect := func(when string, ok, built bool) {
			t.Helper()
			before := b.builds()
			err := try()
			if (err == nil) != ok {
				t.Fatalf("%s: DialStream error %v, want success %v", when, err, ok)
			}
			if got := b.builds() > before; got != built {
				t.Fatalf("%s: built %v, want %v", when, got, built)
			}
			if !ok && built && b.builds() != before+1 {
				t.Fatalf("%s: %d builds through a failing relay, want 1", when, b.builds()-before)
			}
		}

		b.setFail(middle, true)
		expect("first failure", false, true)
		if g := m.Guard(); g == nil || g.Identity != guard.Hop.Identity {
			t.Fatal("a failed middle replaced the guard")
		}
		b.setFail(middle, false)
		time.Sleep(downTime - time.Second)
		expect("just before the back-off ends", false, false)
		time.Sleep(time.Second)
		expect("back-off over", true, true)

		// The success reset the count: one minute again, then two.
		b.setFail(middle, true)
		expect("failure after a success", false, true)
		time.Sleep(downTime)
		expect("second failure in a row", false, true)
		time.Sleep(2*downTime - time.Second)
		expect("before the doubled back-off ends", false, false)
		time.Sleep(time.Second)
		b.setFail(middle, false)
		expect("doubled back-off over", true, true)
	})
}

func TestBackoffDoublesUpToCap(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 16 * time.Minute}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("back-off after failure %d: %v, want %v", i+1, got, w)
		}
	}
	if got := backoff(1000); got != maxDownTime {
		t.Errorf("back-off after 1000 failures: %v, want %v", got, maxDownTime)
	}
}

// In a larger network a failed relay is simply left out while backed off,
// and chosen again afterwards.
func TestManagerLeavesFailedRelayOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		// The bad relay and the exits are no guards: primary guards are
		// never later hops, and these must be.
		for _, i := range []int{3, 6, 7} {
			relays[i].Reliable = false
		}
		bad := relays[3]
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		m.SetGuard(relays[0].Hop)
		b.setFail(bad, true)
		key := 0
		next := func() string { key++; return string(rune(0x100 + key)) }
		// through reports whether a build since the first n went through bad.
		through := func(n int) bool {
			return slices.ContainsFunc(b.pathsSince(n), func(p []Hop) bool { return hasRelay(p, bad) })
		}
		for i := 0; ; i++ {
			if i == 500 {
				t.Fatal("the bad relay was never chosen")
			}
			before := b.builds()
			m.DialStream(t.Context(), "example.com:80", next())
			if through(before) {
				break
			}
		}
		failedAt := b.builds()
		b.setFail(bad, false)
		for range 50 {
			dial(t, m, "example.com:80", next())
		}
		if through(failedAt) {
			t.Fatal("a relay in back-off was chosen")
		}
		time.Sleep(downTime)
		for i := 0; ; i++ {
			if i == 500 {
				t.Fatal("the relay was not chosen again after its back-off")
			}
			before := b.builds()
			dial(t, m, "example.com:80", next())
			if through(before) {
				break
			}
		}
	})
}

// A circuit takes new streams for MaxDirtiness after its first one; it
// stays open while streams use it and closes when the last one ends.
func TestManagerDirtiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{MaxDirtiness: 10 * time.Minute})

		long := dial(t, m, "example.com:80", "a")
		c1 := circuitOf(t, long)
		time.Sleep(10*time.Minute - time.Second)
		s := dial(t, m, "example.com:80", "a")
		if circuitOf(t, s) != c1 {
			t.Fatal("a circuit younger than MaxDirtiness was not reused")
		}
		s.Close()
		time.Sleep(time.Second)
		c2 := circuitOf(t, dial(t, m, "example.com:80", "a"))
		if c2 == c1 {
			t.Fatal("a circuit dirty for MaxDirtiness took a new stream")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if c1.closed() {
			t.Fatal("a dirty circuit was closed under an open stream")
		}
		long.Close()
		time.Sleep(m.sweepEvery)
		synctest.Wait()
		if !c1.closed() {
			t.Fatal("a dirty circuit was not closed after its last stream ended")
		}
	})
}

// Dirtiness counts from a circuit's first stream, not from its build: a
// preemptive circuit gets its full MaxDirtiness when first used.
func TestManagerDirtinessCountsFromFirstStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{MaxDirtiness: 10 * time.Minute, MaxIdle: 30 * time.Minute})
		if err := m.Preempt(t.Context()); err != nil {
			t.Fatal(err)
		}
		pre := b.circuits()[0]
		time.Sleep(15 * time.Minute)
		if c := circuitOf(t, dial(t, m, "example.com:80", "")); c != pre {
			t.Fatal("the preemptive circuit was not used")
		}
		time.Sleep(9 * time.Minute)
		if c := circuitOf(t, dial(t, m, "example.com:80", "")); c != pre {
			t.Fatal("a circuit first used 9 minutes ago did not take a stream")
		}
		time.Sleep(time.Minute)
		if c := circuitOf(t, dial(t, m, "example.com:80", "")); c == pre {
			t.Fatal("a circuit first used MaxDirtiness ago took a stream")
		}
		// Preempt wants a clean circuit: the used one does not count.
		before := b.builds()
		if err := m.Preempt(t.Context()); err != nil || b.builds() != before+1 {
			t.Fatalf("Preempt with only dirty circuits: %v, %d builds; want one build", err, b.builds()-before)
		}
		if err := m.Preempt(t.Context()); err != nil || b.builds() != before+1 {
			t.Fatalf("Preempt with a clean circuit: %v, %d builds; want none", err, b.builds()-before-1)
		}
	})
}

// Idle circuits are closed without anyone asking for their key again: a
// clean one after MaxIdle, a dirty one with no streams after MaxDirtiness.
// When none is left, no timer stays behind.
func TestManagerIdleExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{MaxDirtiness: 10 * time.Minute, MaxIdle: 30 * time.Minute})
		s := dial(t, m, "example.com:80", "a")
		dirty := circuitOf(t, s)
		s.Close()
		if err := m.Preempt(t.Context()); err != nil {
			t.Fatal(err)
		}
		clean := b.circuits()[1]

		time.Sleep(10*time.Minute - time.Second)
		synctest.Wait()
		if dirty.closed() || clean.closed() {
			t.Fatal("a circuit closed before its time")
		}
		time.Sleep(time.Second + m.sweepEvery)
		synctest.Wait()
		if !dirty.closed() {
			t.Fatal("a dirty circuit without streams outlived MaxDirtiness")
		}
		if clean.closed() {
			t.Fatal("a clean circuit closed before MaxIdle")
		}
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		if !clean.closed() {
			t.Fatal("a clean circuit outlived MaxIdle")
		}
		if n := m.Circuits(); n != 0 {
			t.Fatalf("%d circuits left, want 0", n)
		}
		m.mu.Lock()
		sweep, keys := m.sweep, len(m.circs)
		m.mu.Unlock()
		if sweep != nil || keys != 0 {
			t.Fatalf("with no circuits: sweep timer %v, %d isolation keys remembered; want none", sweep != nil, keys)
		}
		// The next stream builds afresh.
		if c := circuitOf(t, dial(t, m, "example.com:80", "a")); c == dirty || c == clean {
			t.Fatal("an expired circuit was reused")
		}
	})
}

// Close closes every circuit, fails later calls, and cancels a build
// still running.
func TestManagerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newFakeBuilder()
		m := newFakeManager(t, b, fakeRelays(4, 2), ManagerConfig{})
		dial(t, m, "example.com:80", "a")
		dial(t, m, "example.com:80", "b")
		if err := m.Preempt(t.Context()); err != nil {
			t.Fatal(err)
		}

		b.delay = time.Second
		var late error
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Not DialStream: it would take the clean circuit.
			_, late = m.Build(context.Background())
		}()
		synctest.Wait() // the build is running

		m.Close()
		<-done
		if !errors.Is(late, context.Canceled) {
			t.Fatalf("a build running at Close: %v, want it cancelled", late)
		}
		cs := b.circuits()
		if len(cs) != 3 || b.builds() != 4 {
			t.Fatalf("%d circuits built of %d builds, want 3 of 4 (the last one cancelled)", len(cs), b.builds())
		}
		for i, c := range cs {
			if !c.closed() {
				t.Fatalf("circuit %d open after Close", i)
			}
		}
		if n := m.Circuits(); n != 0 {
			t.Fatalf("%d circuits after Close", n)
		}
		if _, err := m.DialStream(t.Context(), "example.com:80", "a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("DialStream after Close: %v, want ErrClosed", err)
		}
		if err := m.Preempt(t.Context()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Preempt after Close: %v, want ErrClosed", err)
		}
		if m.Close() != nil {
			t.Fatal("a second Close failed")
		}
	})
}

// With the Switch as its Builder the Manager builds real circuits, and
// Build, BuildAny and Open hand out the *ClientCirc.
func TestManagerOverSwitch(t *testing.T) {
	n, client, hops := threeHops(t)
	defer n.close()
	addr, stop := echoServer(t)
	defer stop()
	var relays []RelayInfo
	for i, fn := range hops {
		r := RelayInfo{Hop: fn.hop()}
		if i == len(hops)-1 {
			r.Policy = exitpolicy.AcceptAll()
		}
		relays = append(relays, r)
	}
	m, err := NewManager(ManagerConfig{Switch: client.sw, Relays: func() []RelayInfo { return relays }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetGuard(relays[0].Hop)

	ctx := ctxT(t)
	c, err := m.DialStream(ctx, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*Stream); !ok {
		t.Fatalf("DialStream returned %T, want *Stream", c)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q %v", got, err)
	}
	open := m.Open()
	if len(open) != 1 || open[0].Streams() != 1 {
		t.Fatalf("Open: %d circuits, want the one carrying the stream", len(open))
	}
	for _, build := range []func(context.Context) (*ClientCirc, error){m.Build, m.BuildAny} {
		cc, err := build(ctx)
		if err != nil || cc == nil {
			t.Fatalf("build: %v", err)
		}
		cc.Close()
	}

	// A Builder that does not make *ClientCirc: Build says so and closes
	// what it built.
	fb := newFakeBuilder()
	fm, err := NewManager(ManagerConfig{Builder: fb, Relays: func() []RelayInfo { return relays }})
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	if _, err := fm.Build(ctx); !errors.Is(err, errNotClientCirc) {
		t.Fatalf("Build over a fake builder: %v, want errNotClientCirc", err)
	}
	if cs := fb.circuits(); len(cs) != 1 || !cs[0].closed() {
		t.Fatal("Build over a fake builder left its circuit open")
	}
}

func TestNewManagerNeedsBuilder(t *testing.T) {
	if _, err := NewManager(ManagerConfig{Relays: func() []RelayInfo { return nil }}); err == nil {
		t.Fatal("NewManager without a Builder or Switch succeeded")
	}
	if _, err := NewManager(ManagerConfig{Builder: newFakeBuilder()}); err == nil {
		t.Fatal("NewManager without Relays succeeded")
	}
}
