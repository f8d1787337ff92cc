package circuit

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// hookBuilder is a fakeBuilder whose builds take delay(n) for the n-th
// build (1-based; called under b.mu) and whose circuits run open before each OpenStream.
type hookBuilder struct {
	*fakeBuilder
	delay func(n int) time.Duration
	open  func(ctx context.Context, c *fakeCircuit, n int) error // n-th OpenStream, 1-based

	// mu guards the following.
	mu     sync.Mutex
	nbuild int
	opens  []*fakeCircuit // the circuit of each OpenStream
}

func newHookBuilder() *hookBuilder { return &hookBuilder{fakeBuilder: newFakeBuilder()} }

func (b *hookBuilder) Build(ctx context.Context, path []Hop) (Circuit, error) {
	b.mu.Lock()
	b.nbuild++
	var d time.Duration
	if b.delay != nil {
		d = b.delay(b.nbuild) // under b.mu: it may keep state
	}
	b.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := b.fakeBuilder.Build(ctx, path)
	if err != nil {
		return nil, err
	}
	return &hookCircuit{c.(*fakeCircuit), b}, nil
}

// openedOn returns the circuit of each OpenStream so far.
func (b *hookBuilder) openedOn() []*fakeCircuit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.opens)
}

type hookCircuit struct {
	*fakeCircuit
	b *hookBuilder
}

func (c *hookCircuit) OpenStream(ctx context.Context, target string) (net.Conn, error) {
	c.b.mu.Lock()
	c.b.opens = append(c.b.opens, c.fakeCircuit)
	n := len(c.b.opens)
	c.b.mu.Unlock()
	if c.b.open != nil {
		if err := c.b.open(ctx, c.fakeCircuit, n); err != nil {
			return nil, err
		}
	}
	return c.fakeCircuit.OpenStream(ctx, target)
}

func newHookManager(t *testing.T, b *hookBuilder, relays []RelayInfo, cfg ManagerConfig) *Manager {
	t.Helper()
	cfg.Builder = b
	return newTestManager(t, relays, cfg)
}

// quantile80 returns the sample the learned timeout should be: the
// smallest with at least 80% of the samples at or below it.
func quantile80(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[int(math.Ceil(0.8*float64(len(s))))-1]
}

// The learned timeout is the initial one until MinBuildSamples builds were
// seen, then the 80th percentile of the recorded build times, whatever
// their distribution; it follows the newest cbtMaxSamples.
func TestBuildTimeoutConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Pareto with xm = 100ms and alpha = 2 (Tor's model): the 80th
	// percentile is xm * 5^(1/2) = 223.6ms.
	pareto := func() time.Duration {
		return time.Duration(float64(100*time.Millisecond) / math.Sqrt(1-rng.Float64()))
	}
	// Log-normal around 400ms, a long-haul network's shape.
	lognormal := func() time.Duration {
		return time.Duration(float64(400*time.Millisecond) * math.Exp(0.5*rng.NormFloat64()))
	}
	for _, c := range []struct {
		name string
		draw func() time.Duration
		want time.Duration // the distribution's 80th percentile
	}{
		{"pareto", pareto, 223607 * time.Microsecond},
		{"lognormal", lognormal, time.Duration(float64(400*time.Millisecond) * math.Exp(0.5*0.8416))},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBuildTimes(60*time.Second, 10*time.Millisecond, 20, nil)
			var seen []time.Duration
			for i := range 19 {
				d := c.draw()
				seen = append(seen, d)
				b.completed(d, true)
				if got := b.current(); got != 60*time.Second {
					t.Fatalf("after %d samples: timeout %v, want the initial 60s", i+1, got)
				}
			}
			for range 5000 {
				d := c.draw()
				seen = append(seen, d)
				b.completed(d, true)
			}
			got := b.current()
			if want := quantile80(seen[len(seen)-cbtMaxSamples:]); got != want {
				t.Fatalf("timeout %v, want %v: the 80th percentile of the newest %d samples", got, want, cbtMaxSamples)
			}
			if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.1 {
				t.Fatalf("timeout %v, more than 10%% off the distribution's 80th percentile %v", got, c.want)
			}
			st := b.stats()
			if !st.Learned || st.Samples != cbtMaxSamples || st.Built != 5019 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// The learned timeout stays within [MinBuildTimeout, InitialBuildTimeout].
func TestBuildTimeoutClamped(t *testing.T) {
	b := newBuildTimes(10*time.Second, 500*time.Millisecond, 20, nil)
	for range 20 {
		b.completed(2*time.Millisecond, true) // loopback builds
	}
	if got := b.current(); got != 500*time.Millisecond {
		t.Fatalf("fast builds: timeout %v, want the 500ms floor", got)
	}
	for range cbtMaxSamples {
		b.completed(time.Minute, false)
	}
	if got := b.current(); got != 10*time.Second {
		t.Fatalf("slow builds: timeout %v, want the 10s initial timeout as ceiling", got)
	}
}

// When nearly all recent builds time out the network changed under the
// learned timeout: learning starts over from the initial timeout.
func TestBuildTimeoutResetsAfterTimeouts(t *testing.T) {
	learned := func() *buildTimes {
		b := newBuildTimes(60*time.Second, 10*time.Millisecond, 20, nil)
		for range 100 {
			b.completed(100*time.Millisecond, true)
		}
		return b
	}
	b := learned()
	for range cbtRecentTimeouts - 1 {
		if b.expired() {
			b.done()
		}
	}
	b.completed(100*time.Millisecond, true)
	b.completed(100*time.Millisecond, true)
	b.completed(100*time.Millisecond, true) // 17 of the last 20 timed out
	if got := b.current(); got != 100*time.Millisecond || b.stats().Resets != 0 {
		t.Fatalf("17 timeouts in 20: timeout %v, %d resets; want 100ms kept", got, b.stats().Resets)
	}
	b = learned()
	for range cbtRecent - cbtRecentTimeouts {
		b.completed(100*time.Millisecond, true)
	}
	for range cbtRecentTimeouts {
		if b.expired() {
			b.done()
		}
	}
	st := b.stats()
	if st.Timeout != 60*time.Second || st.Samples != 0 || st.Resets != 1 || st.Learned {
		t.Fatalf("18 timeouts in 20: %+v; want the initial 60s, no samples, one reset", st)
	}
	// Learning starts over from the next builds.
	for range 20 {
		b.completed(300*time.Millisecond, true)
	}
	if got := b.current(); got != 300*time.Millisecond {
		t.Fatalf("after the reset: timeout %v, want 300ms", got)
	}
}

// BuildTimes saves the samples oldest first; ManagerConfig.BuildTimes
// restores them, so a restart keeps its learned timeout.
func TestBuildTimesRestore(t *testing.T) {
	var ds []time.Duration
	for i := range cbtMaxSamples + 250 {
		ds = append(ds, time.Duration(i+1)*time.Millisecond)
	}
	m := newFakeManager(t, newFakeBuilder(), fakeRelays(4, 2), ManagerConfig{BuildTimes: ds, MinBuildTimeout: time.Millisecond})
	saved := m.BuildTimes()
	if !slices.Equal(saved, ds[250:]) {
		t.Fatalf("saved %d samples [%v .. %v], want the newest %d in order", len(saved), saved[0], saved[len(saved)-1], cbtMaxSamples)
	}
	want := quantile80(ds[250:])
	if got := m.BuildTimeout(); got != want {
		t.Fatalf("restored timeout %v, want %v", got, want)
	}
	m2 := newFakeManager(t, newFakeBuilder(), fakeRelays(4, 2), ManagerConfig{BuildTimes: saved, MinBuildTimeout: time.Millisecond})
	if got := m2.BuildTimeout(); got != want {
		t.Fatalf("timeout after a second restore %v, want %v", got, want)
	}
}

// A build slower than the learned timeout is cut there and the stream
// goes on with another build; the slow one goes on to be measured, its
// time is learned, its circuit closed, and no relay is blamed.
func TestManagerCutsSlowBuild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newHookBuilder()
		b.delay = func(n int) time.Duration {
			switch {
			case n <= 20:
				return time.Duration(n) * 10 * time.Millisecond // 80th percentile 160ms
			case n == 21:
				return 2 * time.Second
			}
			return 50 * time.Millisecond
		}
		m := newHookManager(t, b, fakeRelays(4, 2), ManagerConfig{MinBuildTimeout: 10 * time.Millisecond})
		for i := range 20 {
			if m.BuildTimeout() != 60*time.Second {
				t.Fatalf("after %d builds: timeout %v, want the initial 60s", i, m.BuildTimeout())
			}
			dial(t, m, "example.com:80", string(rune('a'+i)))
		}
		if got := m.BuildTimeout(); got != 160*time.Millisecond {
			t.Fatalf("learned timeout %v, want 160ms", got)
		}
		start := time.Now()
		c := circuitOf(t, dial(t, m, "example.com:80", "slow"))
		if took := time.Since(start); took != 210*time.Millisecond {
			t.Fatalf("a stream behind a slow build took %v, want 210ms (cut at 160ms, then a 50ms build)", took)
		}
		st := m.BuildTimeoutStats()
		if st.TimedOut != 1 || st.Built != 21 {
			t.Fatalf("stats %+v: want 1 timed out, 21 built", st)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		all := b.circuits()
		slow := all[len(all)-1] // the measured build completed last
		if slow == c || !slow.closed() {
			t.Fatalf("the measured circuit was used (%v) or left open (%v)", slow == c, !slow.closed())
		}
		if st := m.BuildTimeoutStats(); st.Samples != 22 {
			t.Fatalf("%d samples, want 22: the slow build's time is learned", st.Samples)
		}
		m.mu.Lock()
		blamed := len(m.path.failed) + len(m.path.links)
		m.mu.Unlock()
		if blamed != 0 {
			t.Fatalf("%d relays backed off after a timeout, want none", blamed)
		}
	})
}

// Builds cut at the learned timeout are measured, so the timeout does not
// drift down (as it would if only builds faster than it were learned).
func TestManagerTimeoutDoesNotDriftDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newHookBuilder()
		// Uniform over 0-100ms: the 80th percentile is 80ms.
		rng := rand.New(rand.NewPCG(3, 4))
		b.delay = func(int) time.Duration { return time.Duration(rng.Int64N(int64(100 * time.Millisecond))) }
		m := newHookManager(t, b, fakeRelays(4, 2), ManagerConfig{MinBuildTimeout: time.Millisecond})
		for i := range 200 {
			c, err := m.DialStream(t.Context(), "example.com:80", string(rune(0x100+i)))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			time.Sleep(100 * time.Millisecond) // measurements complete
		}
		st := m.BuildTimeoutStats()
		if st.Timeout < 72*time.Millisecond || st.Timeout > 88*time.Millisecond {
			t.Fatalf("timeout %v after %d builds (%d timed out), want 80ms ± 10%%", st.Timeout, st.Samples, st.TimedOut)
		}
		if st.TimedOut == 0 {
			t.Fatal("no build was cut at the learned timeout")
		}
	})
}

// At most cbtMaxMeasuring timed-out builds go on to be measured at once.
func TestBuildTimeoutMeasurementBounded(t *testing.T) {
	b := newBuildTimes(60*time.Second, time.Millisecond, 20, nil)
	for i := range cbtMaxMeasuring {
		if !b.expired() {
			t.Fatalf("timed-out build %d not measured", i+1)
		}
	}
	if b.expired() {
		t.Fatal("more than cbtMaxMeasuring builds measured at once")
	}
	b.done()
	if !b.expired() {
		t.Fatal("a measurement that ended did not free its place")
	}
}
