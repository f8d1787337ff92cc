package circuit

import (
	"math"
	"slices"
	"sync"
	"time"
)

// The learned circuit build timeout (spec/circuits.md §8.1), after Tor's
// CircuitBuildTimeout (path-spec §2.4): the Manager records how long
// circuits take to build and gives up on a build once it has taken longer
// than the fastest cbtQuantile of builds did.
//
// The estimate is the empirical quantile of the recorded build times, not
// Tor's Pareto fit: a darkmatter network may be a handful of relays on one
// host (builds of a millisecond or two) or a wide-area one, and the
// empirical quantile is right for any shape of distribution. It stays
// unbiased because a build cut at the timeout is not abandoned: it goes on
// as a measurement (up to cbtMaxMeasuring at once, until the initial
// timeout) and its real build time is recorded when it completes; the
// circuit is then closed, as Tor closes its measurement circuits. Only
// completed builds are samples: a build that fails or never completes (a
// dead relay, the network down) teaches nothing, as Tor ignores circuits
// that never finish since 0.4.2.
const (
	cbtQuantile   = 0.8  // the share of builds the timeout lets finish
	cbtMaxSamples = 1000 // build times kept (the newest)
	// cbtRecent builds are remembered as timed out or not; when
	// cbtRecentTimeouts of them timed out the network has changed under
	// the learned timeout (Tor: 18 of the last 20), and learning starts
	// over from the initial timeout.
	cbtRecent         = 20
	cbtRecentTimeouts = 18
	// cbtMaxMeasuring bounds the builds that go on past their timeout to
	// be measured; beyond it a timed-out build is cancelled.
	cbtMaxMeasuring = 4
)

// buildTimes learns the build timeout. It is safe for concurrent use.
type buildTimes struct {
	initial, min time.Duration
	minSamples   int

	// mu guards the following.
	mu       sync.Mutex
	samples  []time.Duration // ring of the newest cbtMaxSamples
	next     int             // where the next sample goes once the ring is full
	recent   [cbtRecent]bool // whether each recent build timed out
	recentN  int             // entries of recent in use
	recentAt int             // where the next outcome goes
	timeout  time.Duration
	built    uint64 // builds that completed in time
	timedOut uint64
	resets   int
	measure  int // builds running past their timeout to be measured
}

func newBuildTimes(initial, min time.Duration, minSamples int, saved []time.Duration) *buildTimes {
	b := &buildTimes{initial: initial, min: min, minSamples: minSamples, timeout: initial}
	for _, d := range saved {
		if d > 0 {
			b.addLocked(d)
		}
	}
	b.recomputeLocked()
	return b
}

// current returns the timeout for the next build.
func (b *buildTimes) current() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timeout
}

// completed records a build that completed after d; inTime says whether
// that was before its timeout (a measured late build was already counted
// as a timeout).
func (b *buildTimes) completed(d time.Duration, inTime bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if inTime {
		b.built++
		b.outcomeLocked(false)
	}
	b.addLocked(d)
	b.recomputeLocked()
}

// expired records a build cut at its timeout. It reports whether the build
// may go on to be measured; if so, done must be called when it ends.
func (b *buildTimes) expired() (measure bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timedOut++
	b.outcomeLocked(true)
	if b.measure < cbtMaxMeasuring {
		b.measure++
		return true
	}
	return false
}

// done ends a measurement that expired allowed.
func (b *buildTimes) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.measure--
}

func (b *buildTimes) addLocked(d time.Duration) {
	if len(b.samples) < cbtMaxSamples {
		b.samples = append(b.samples, d)
		return
	}
	b.samples[b.next] = d
	b.next = (b.next + 1) % cbtMaxSamples
}

// outcomeLocked remembers whether a build timed out, and starts learning
// over when nearly all recent builds did.
func (b *buildTimes) outcomeLocked(timedOut bool) {
	b.recent[b.recentAt] = timedOut
	b.recentAt = (b.recentAt + 1) % cbtRecent
	b.recentN = min(b.recentN+1, cbtRecent)
	if b.recentN < cbtRecent {
		return
	}
	n := 0
	for _, t := range b.recent {
		if t {
			n++
		}
	}
	if n >= cbtRecentTimeouts && b.timeout < b.initial {
		b.samples, b.next = nil, 0
		b.recentN, b.recentAt = 0, 0
		b.resets++
		b.timeout = b.initial
	}
}

// recomputeLocked sets the timeout to the cbtQuantile of the samples,
// within [min, initial], once there are minSamples of them.
func (b *buildTimes) recomputeLocked() {
	if len(b.samples) < b.minSamples {
		b.timeout = b.initial
		return
	}
	s := slices.Clone(b.samples)
	slices.Sort(s)
	// The smallest sample with at least cbtQuantile of the samples at or
	// below it.
	i := int(math.Ceil(float64(len(s))*cbtQuantile)) - 1
	b.timeout = min(max(s[max(i, 0)], b.min), b.initial)
}

// BuildTimeoutStats describes the learned build timeout.
type BuildTimeoutStats struct {
	// Timeout is the timeout for the next build.
	Timeout time.Duration
	// Learned reports whether Timeout comes from build times (enough
	// samples) rather than the initial timeout.
	Learned bool
	// Samples is the number of build times recorded.
	Samples int
	// Built and TimedOut count builds that completed within their timeout
	// and builds cut at it.
	Built, TimedOut uint64
	// Resets counts the times learning started over because nearly all
	// recent builds timed out.
	Resets int
}

func (b *buildTimes) stats() BuildTimeoutStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BuildTimeoutStats{
		Timeout:  b.timeout,
		Learned:  len(b.samples) >= b.minSamples,
		Samples:  len(b.samples),
		Built:    b.built,
		TimedOut: b.timedOut,
		Resets:   b.resets,
	}
}

// times returns the samples, oldest first.
func (b *buildTimes) times() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]time.Duration, 0, len(b.samples))
	out = append(out, b.samples[b.next:]...)
	return append(out, b.samples[:b.next]...)
}

// BuildTimeout returns the timeout the next circuit build gets: the
// initial one until enough builds were seen, then the time within which
// the fastest 80% of recent builds completed.
func (m *Manager) BuildTimeout() time.Duration { return m.cbt.current() }

// BuildTimeoutStats returns the state of the learned build timeout.
func (m *Manager) BuildTimeoutStats() BuildTimeoutStats { return m.cbt.stats() }

// BuildTimes returns the recorded build times, oldest first, for saving:
// ManagerConfig.BuildTimes restores them.
func (m *Manager) BuildTimes() []time.Duration { return m.cbt.times() }
