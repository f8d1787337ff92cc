package circuit

import (
	"context"
	"errors"
	"math/rand/v2"

	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Builder builds the circuits. If it is nil, Switch builds them.
	Builder Builder
	// Switch builds the circuits when Builder is nil. Build, BuildAny
	// and Open return the *ClientCirc it builds.
	Switch *Switch
	// Relays returns the relays currently known. Required.
	Relays func() []RelayInfo
	// PathLen is the number of hops (default 3).
	PathLen int
	// AllowSameSubnet lets two hops share an IPv4 /16 or IPv6 /32 (a
	// loopback test network needs it).
	AllowSameSubnet bool
	// MaxDirtiness is how long a circuit takes new streams after its
	// first one (default 10 min). Past it, the circuit is closed once it
	// has no open streams.
	MaxDirtiness time.Duration
	// MaxIdle is how long a circuit that never carried a stream (a
	// preemptive one) is kept (default 30 min).
	MaxIdle time.Duration
	// Attempts is how many builds one request for a circuit tries, each
	// on a new path, before it fails (default 5).
	Attempts int
	// StreamAttempts is how many circuits DialStream tries one stream on
	// when a failure leaves it safe to retry (default 3; spec/circuits.md
	// §8.3).
	StreamAttempts int
	// StreamTimeout bounds the wait for CONNECTED on each attempt
	// (default 15s, Tor's stream timeout on a retry); a stream that got no
	// answer in time is retried on another circuit.
	StreamTimeout time.Duration

	// InitialBuildTimeout is the build timeout until enough build times
	// were seen (default 60s), the most the learned one may be, and how
	// long a build cut at the learned timeout goes on to be measured.
	InitialBuildTimeout time.Duration
	// MinBuildTimeout is the least the learned timeout may be (default
	// 1.5s, as Tor: a build that needs a new link takes a few round trips
	// more than one that does not).
	MinBuildTimeout time.Duration
	// MinBuildSamples is how many build times are needed before the
	// learned timeout replaces the initial one (default 20; Tor waits for
	// 100, which a small network would take long to reach).
	MinBuildSamples int
	// BuildTimes restores build times saved from Manager.BuildTimes.
	BuildTimes []time.Duration

	// Preemptive is how many clean circuits to any exit the Manager keeps
	// built before streams ask for them, rebuilding one in the background
	// when a stream takes it, it dies or it idles out. Zero or negative:
	// none are kept (Preempt still builds one on demand).
	Preemptive int

	// GuardFile keeps the guard sample across restarts (spec/guards.md
	// §6); "" keeps it in memory only.
	GuardFile string
	// Guards tunes the guard sample (zero fields take the defaults).
	Guards GuardParams

	Logf safelog.Logf
}

// Manager builds and reuses client circuits. Streams with different
// isolation keys never share a circuit. Clean circuits (never handed a
// stream) wait in a pool that belongs to no key, and the first stream
// that takes one gives it its key (spec/circuits.md §8).
//
// Its time rules (dirtiness, idle expiry, a failed relay's back-off, the
// build timeout) read the time package only, so tests run them under
// testing/synctest.
type Manager struct {
	cfg        ManagerConfig
	builder    Builder
	sweepEvery time.Duration
	cbt        *buildTimes

	// life ends at Close: builds and the preemptive maintainer run under
	// it, and wg counts their goroutines.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the preemptive maintainer

	// mu guards the following.
	mu       sync.Mutex
	circs    map[string][]*entry // by isolation key
	pool     []*entry            // clean circuits to any exit, no key yet
	building map[buildKey]*pendingBuild
	path     pathState   // guards, back-offs, path bias (path.go)
	sweep    *time.Timer // the next expiry sweep; nil if none is due
	closed   bool
}

// entry is a circuit the Manager hands streams to.
type entry struct {
	c       Circuit
	exit    *exitpolicy.Policy // of its last hop, when it was built
	built   time.Time
	used    time.Time // when it was first handed a stream; zero while clean
	retired bool      // takes no new streams (one timed out on it)
}

// exitID returns the identity of e's last hop.
func (e *entry) exitID() keys.IdentityPublicKey {
	hops := e.c.Hops()
	if len(hops) == 0 {
		return keys.IdentityPublicKey{}
	}
	return hops[len(hops)-1].Identity
}

type buildKey struct {
	isolation string
	need      exitNeed
	use       bool
}

type pendingBuild struct {
	done chan struct{}
	c    Circuit
	err  error
}

// NewManager returns a Manager. With Preemptive > 0 it starts building
// clean circuits at once; Close stops that.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Builder == nil && cfg.Switch != nil {
		cfg.Builder = switchBuilder{cfg.Switch}
	}
	if cfg.Builder == nil || cfg.Relays == nil {
		return nil, errors.New("circuit: ManagerConfig needs a Builder (or Switch) and Relays")
	}
	defaults.Set(&cfg.PathLen, 3)
	defaults.Set(&cfg.MaxDirtiness, 10*time.Minute)
	defaults.Set(&cfg.MaxIdle, 30*time.Minute)
	defaults.Set(&cfg.Attempts, 5)
	defaults.Set(&cfg.StreamAttempts, 3)
	defaults.Set(&cfg.StreamTimeout, 15*time.Second)
	defaults.Set(&cfg.InitialBuildTimeout, 60*time.Second)
	defaults.Set(&cfg.MinBuildTimeout, 1500*time.Millisecond)
	defaults.Set(&cfg.MinBuildSamples, 20)
	cfg.MinBuildTimeout = min(cfg.MinBuildTimeout, cfg.InitialBuildTimeout)
	m := &Manager{
		cfg:     cfg,
		builder: cfg.Builder,
		// Often enough that a circuit outlives its rule by at most a
		// quarter of it (and 30 s).
		sweepEvery: max(10*time.Millisecond, min(30*time.Second, cfg.MaxDirtiness/4, cfg.MaxIdle/4)),
		cbt:        newBuildTimes(cfg.InitialBuildTimeout, cfg.MinBuildTimeout, cfg.MinBuildSamples, cfg.BuildTimes),
		kick:       make(chan struct{}, 1),
		circs:      make(map[string][]*entry),
		building:   make(map[buildKey]*pendingBuild),
	}
	if err := m.initPath(); err != nil {
		return nil, err
	}
	m.cfg.BuildTimes = nil
	m.life, m.cancel = context.WithCancel(context.Background())
	if cfg.Preemptive > 0 {
		m.wg.Add(1)
		go m.maintain()
	}
	return m, nil
}

// Close destroys all circuits, cancels the builds under way and waits for
// the Manager's goroutines.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	if m.sweep != nil {
		m.sweep.Stop()
		m.sweep = nil
	}
	var all []Circuit
	for _, es := range m.circs {
		for _, e := range es {
			all = append(all, e.c)
		}
	}
	for _, e := range m.pool {
		all = append(all, e.c)
	}
	m.circs = map[string][]*entry{}
	m.pool = nil
	m.mu.Unlock()
	m.cancel()
	closeAll(all)
	m.wg.Wait()
	m.flushGuards()
	return nil
}

func closeAll(cs []Circuit) {
	for _, c := range cs {
		c.Close()
	}
}

// eachLocked calls f for every circuit, the pool's included. m.mu is held.
func (m *Manager) eachLocked(f func(*entry)) {
	for _, es := range m.circs {
		for _, e := range es {
			f(e)
		}
	}
	for _, e := range m.pool {
		f(e)
	}
}

// Circuits returns the number of open circuits.
func (m *Manager) Circuits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	m.eachLocked(func(e *entry) {
		if !isDone(e.c.Done()) {
			n++
		}
	})
	return n
}

// Open returns the live circuits, built by the Switch, that the Manager
// hands streams to (the preemptive ones included).
func (m *Manager) Open() []*ClientCirc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ClientCirc
	m.eachLocked(func(e *entry) {
		if sc, ok := e.c.(switchCircuit); ok && !isDone(sc.Done()) {
			out = append(out, sc.ClientCirc)
		}
	})
	return out
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// circuitFor returns a circuit for a stream of isolation whose exit allows
// need and is not in avoid, and marks it dirty: one of isolation's, else a
// clean one from the pool, else a new one (shared with concurrent callers
// that ask for the same, unless avoid is set).
func (m *Manager) circuitFor(ctx context.Context, isolation string, need exitNeed, avoid []keys.IdentityPublicKey) (Circuit, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	now := time.Now()
	expired := m.pruneLocked(isolation, now, nil)
	defer func() { closeAll(expired) }() // once m.mu is released
	for _, e := range m.circs[isolation] {
		if m.takes(e, now, need, true) && !avoids(avoid, e) {
			if e.used.IsZero() {
				e.used = now
			}
			m.mu.Unlock()
			return e.c, nil
		}
	}
	if e := m.takeCleanLocked(now, need, avoid); e != nil {
		e.used = now
		m.circs[isolation] = append(m.circs[isolation], e)
		m.mu.Unlock()
		m.wake()
		return e.c, nil
	}
	return m.buildLocked(ctx, buildKey{isolation, need, true}, avoid, func(e *entry) {
		e.used = e.built
		m.circs[isolation] = append(m.circs[isolation], e)
	})
}

// buildLocked builds a circuit for k, avoiding the exits in avoid, and
// hands it to add (under m.mu) unless the Manager closed meanwhile. A
// caller with nothing to avoid shares a build for the same k. m.mu is
// held and released.
func (m *Manager) buildLocked(ctx context.Context, k buildKey, avoid []keys.IdentityPublicKey, add func(*entry)) (Circuit, error) {
	share := len(avoid) == 0
	if pb := m.building[k]; share && pb != nil {
		m.mu.Unlock()
		select {
		case <-pb.done:
			return pb.c, pb.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pb := &pendingBuild{done: make(chan struct{})}
	if share {
		m.building[k] = pb
	}
	m.mu.Unlock()

	c, exit, err := m.build(ctx, k.need, avoid)
	m.mu.Lock()
	if m.building[k] == pb {
		delete(m.building, k)
	}
	var late Circuit
	if m.closed {
		late, c, err = c, nil, ErrClosed
	}
	if err == nil {
		e := &entry{c: c, exit: exit, built: time.Now()}
		add(e)
		m.sweepLaterLocked()
	}
	pb.c, pb.err = c, err
	m.mu.Unlock()
	close(pb.done)
	if late != nil {
		late.Close()
	}
	return c, err
}

// takes reports whether e can carry a new stream (use) or serve as a
// clean circuit (!use) whose exit allows need. m.mu is held.
func (m *Manager) takes(e *entry, now time.Time, need exitNeed, use bool) bool {
	if e.retired || isDone(e.c.Done()) {
		return false
	}
	if e.used.IsZero() {
		if now.Sub(e.built) >= m.cfg.MaxIdle {
			return false
		}
	} else if !use || now.Sub(e.used) >= m.cfg.MaxDirtiness {
		return false
	}
	return need.allows(e.exit)
}

// expired reports whether e should be closed: clean and idle for MaxIdle,
// or dirty for MaxDirtiness (or retired) with no open streams. m.mu is
// held.
func (m *Manager) expired(e *entry, now time.Time) bool {
	if e.used.IsZero() {
		return now.Sub(e.built) >= m.cfg.MaxIdle
	}
	return (e.retired || now.Sub(e.used) >= m.cfg.MaxDirtiness) && e.c.Streams() == 0
}

// pruneLocked drops isolation's dead circuits and moves its expired ones
// to close, which it returns. m.mu is held.
func (m *Manager) pruneLocked(isolation string, now time.Time, close []Circuit) []Circuit {
	live, close := m.pruneList(m.circs[isolation], now, close)
	if len(live) == 0 {
		delete(m.circs, isolation)
	} else {
		m.circs[isolation] = live
	}
	return close
}

// pruneList drops the dead circuits of es, in place, and moves the expired
// ones to close. m.mu is held.
func (m *Manager) pruneList(es []*entry, now time.Time, close []Circuit) ([]*entry, []Circuit) {
	live := es[:0]
	for _, e := range es {
		switch {
		case isDone(e.c.Done()):
		case m.expired(e, now):
			close = append(close, e.c)
		default:
			live = append(live, e)
		}
	}
	clear(es[len(live):])
	return live, close
}

// sweepLaterLocked schedules an expiry sweep unless one is due. m.mu is
// held.
func (m *Manager) sweepLaterLocked() {
	if m.sweep == nil && !m.closed {
		m.sweep = time.AfterFunc(m.sweepEvery, m.sweepNow)
	}
}

// sweepNow closes expired circuits of every isolation key and of the
// pool, so a circuit expires even if no stream asks for its key again, and
// schedules the next sweep while any circuit is left.
func (m *Manager) sweepNow() {
	m.mu.Lock()
	m.sweep = nil
	if m.closed {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	var expired []Circuit
	for isolation := range m.circs {
		expired = m.pruneLocked(isolation, now, expired)
	}
	pooled := len(m.pool)
	m.pool, expired = m.pruneList(m.pool, now, expired)
	shrunk := len(m.pool) < pooled
	if len(m.circs) > 0 || len(m.pool) > 0 {
		m.sweepLaterLocked()
	}
	m.mu.Unlock()
	closeAll(expired)
	if shrunk {
		m.wake()
	}
}

// build chooses a path for need, with an exit not in avoid where it can,
// and builds a circuit through it within the learned build timeout.
func (m *Manager) build(ctx context.Context, need exitNeed, avoid []keys.IdentityPublicKey) (Circuit, *exitpolicy.Policy, error) {
	path, exit, err := m.pathAvoiding(need, avoid)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.buildTimed(ctx, path, false)
	if err != nil {
		m.cfg.Logf.Printf("circuit: build failed: %v", err)
		return nil, nil, err
	}
	m.noteSuccess(path)
	return c, exit, nil
}

var errNotClientCirc = errors.New("circuit: the Manager's Builder does not build *ClientCirc")

// clientCirc returns the *ClientCirc behind c, or closes c.
func clientCirc(c Circuit) (*ClientCirc, error) {
	if sc, ok := c.(switchCircuit); ok {
		return sc.ClientCirc, nil
	}
	c.Close()
	return nil, errNotClientCirc
}

// Build builds a circuit to any exit without registering it for streams
// (measurements). It needs the Switch as the Builder.
func (m *Manager) Build(ctx context.Context) (*ClientCirc, error) {
	c, _, err := m.build(ctx, exitNeed{any: true}, nil)
	if err != nil {
		return nil, err
	}
	return clientCirc(c)
}

// BuildAny builds a circuit of PathLen hops over any relays, exit or not,
// ignoring back-off and guard (measurements and tests). It needs the
// Switch as the Builder.
func (m *Manager) BuildAny(ctx context.Context) (*ClientCirc, error) {
	relays := m.cfg.Relays()
	if len(relays) < m.cfg.PathLen {
		return nil, errNoPath
	}
	for attempt := 0; attempt < 32; attempt++ {
		perm := rand.Perm(len(relays))[:m.cfg.PathLen]
		path := make([]Hop, len(perm))
		for i, j := range perm {
			path[i] = relays[j].Hop
		}
		if m.pathOK(path) {
			c, err := m.builder.Build(ctx, path)
			if err != nil {
				return nil, err
			}
			return clientCirc(c)
		}
	}
	return nil, errNoPath
}
