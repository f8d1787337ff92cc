package circuit

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/internal/defaults"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/internal/streamerr"
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
	// Attempts is how many circuits DialStream tries (default 5).
	Attempts int
	// GuardFile keeps the guard sample across restarts (spec/guards.md
	// §6); "" keeps it in memory only.
	GuardFile string
	// Guards tunes the guard sample (zero fields take the defaults).
	Guards GuardParams
	Logf   safelog.Logf
}

// Manager builds and reuses client circuits. Streams with different
// isolation keys never share a circuit.
//
// Its time rules (dirtiness, idle expiry, a failed relay's back-off) read
// the time package only, so tests run them under testing/synctest.
type Manager struct {
	cfg        ManagerConfig
	builder    Builder
	sweepEvery time.Duration

	// mu guards the following.
	mu       sync.Mutex
	circs    map[string][]*entry // by isolation key
	building map[buildKey]*pendingBuild
	path     pathState   // guards, back-offs, path bias (path.go)
	sweep    *time.Timer // the next expiry sweep; nil if none is due
	closed   bool
}

// entry is a circuit the Manager hands streams to.
type entry struct {
	c     Circuit
	exit  *exitpolicy.Policy // of its last hop, when it was built
	built time.Time
	used  time.Time // when it was first handed a stream; zero while clean
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

// NewManager returns a Manager.
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
	m := &Manager{
		cfg:     cfg,
		builder: cfg.Builder,
		// Often enough that a circuit outlives its rule by at most a
		// quarter of it (and 30 s).
		sweepEvery: max(10*time.Millisecond, min(30*time.Second, cfg.MaxDirtiness/4, cfg.MaxIdle/4)),
		circs:      make(map[string][]*entry),
		building:   make(map[buildKey]*pendingBuild),
	}
	if err := m.initPath(); err != nil {
		return nil, err
	}
	return m, nil
}

// Close destroys all circuits.
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
	m.circs = map[string][]*entry{}
	m.mu.Unlock()
	closeAll(all)
	m.flushGuards()
	return nil
}

func closeAll(cs []Circuit) {
	for _, c := range cs {
		c.Close()
	}
}

// Circuits returns the number of open circuits.
func (m *Manager) Circuits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, es := range m.circs {
		for _, e := range es {
			if !isDone(e.c.Done()) {
				n++
			}
		}
	}
	return n
}

// Open returns the live circuits, built by the Switch, that the Manager
// hands streams to.
func (m *Manager) Open() []*ClientCirc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ClientCirc
	for _, es := range m.circs {
		for _, e := range es {
			if sc, ok := e.c.(switchCircuit); ok && !isDone(sc.Done()) {
				out = append(out, sc.ClientCirc)
			}
		}
	}
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

// DialStream opens a stream to target through a circuit for isolation,
// building one if needed and retrying on a fresh circuit when a circuit
// fails. Errors carry a streamerr reason.
func (m *Manager) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	t, err := cell.SplitTarget(target)
	if err != nil {
		return nil, streamerr.New(streamerr.BadAddress)
	}
	var last error
	for i := 0; i < m.cfg.Attempts; i++ {
		c, err := m.circuitFor(ctx, isolation, needFor(t), true)
		if err != nil {
			last = err
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				break
			}
			continue
		}
		st, err := c.OpenStream(ctx, target)
		m.noteUse(ctx, c, err)
		if err == nil {
			return st, nil
		}
		last = err
		if !errors.Is(err, ErrDestroyed) || ctx.Err() != nil {
			break // the exit answered: no point in another circuit
		}
	}
	if errors.Is(last, ErrDestroyed) || errors.Is(last, errNoPath) {
		return nil, &reasonError{streamerr.New(streamerr.NoExit), last}
	}
	if ctx.Err() != nil && !isStreamErr(last) {
		return nil, &reasonError{streamerr.New(streamerr.Timeout), ctx.Err()}
	}
	return nil, last
}

// reasonError gives a stream reason to the error behind it.
type reasonError struct{ reason, err error }

func (e *reasonError) Error() string { return e.reason.Error() + ": " + e.err.Error() }

// Unwrap returns the reason: streamerr.ReasonOf follows single Unwrap
// chains only (an error made with two %w verbs hides the reason from it).
// Is and As reach the error behind it.
func (e *reasonError) Unwrap() error        { return e.reason }
func (e *reasonError) Is(target error) bool { return errors.Is(e.err, target) }
func (e *reasonError) As(target any) bool   { return errors.As(e.err, target) }

func isStreamErr(err error) bool {
	var se *streamerr.Error
	return errors.As(err, &se)
}

// Preempt makes sure a clean circuit (one that never carried a stream) to
// any exit waits for the default isolation key, building one if needed.
func (m *Manager) Preempt(ctx context.Context) error {
	_, err := m.circuitFor(ctx, "", exitNeed{any: true}, false)
	return err
}

// circuitFor returns a circuit for isolation whose exit allows need:
// for a stream (use), one that still takes new streams, which it marks
// dirty; otherwise a clean one. It builds one if there is none, sharing
// the build with concurrent callers that ask for the same.
func (m *Manager) circuitFor(ctx context.Context, isolation string, need exitNeed, use bool) (Circuit, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	now := time.Now()
	expired := m.pruneLocked(isolation, now, nil)
	defer func() { closeAll(expired) }() // once m.mu is released
	for _, e := range m.circs[isolation] {
		if m.takes(e, now, need, use) {
			if use && e.used.IsZero() {
				e.used = now
			}
			m.mu.Unlock()
			return e.c, nil
		}
	}
	k := buildKey{isolation, need, use}
	if pb := m.building[k]; pb != nil {
		m.mu.Unlock()
		select {
		case <-pb.done:
			return pb.c, pb.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pb := &pendingBuild{done: make(chan struct{})}
	m.building[k] = pb
	m.mu.Unlock()

	c, exit, err := m.build(ctx, need)
	m.mu.Lock()
	if m.building[k] == pb {
		delete(m.building, k)
	}
	if err == nil && m.closed {
		expired = append(expired, c)
		c, err = nil, ErrClosed
	}
	if err == nil {
		e := &entry{c: c, exit: exit, built: time.Now()}
		if use {
			e.used = e.built
		}
		m.circs[isolation] = append(m.circs[isolation], e)
		m.sweepLaterLocked()
	}
	pb.c, pb.err = c, err
	m.mu.Unlock()
	close(pb.done)
	return c, err
}

// takes reports whether e can carry a new stream (use) or serve as a
// clean circuit (!use) whose exit allows need. m.mu is held.
func (m *Manager) takes(e *entry, now time.Time, need exitNeed, use bool) bool {
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
// or dirty for MaxDirtiness with no open streams. m.mu is held.
func (m *Manager) expired(e *entry, now time.Time) bool {
	if e.used.IsZero() {
		return now.Sub(e.built) >= m.cfg.MaxIdle
	}
	return now.Sub(e.used) >= m.cfg.MaxDirtiness && e.c.Streams() == 0
}

// pruneLocked drops isolation's dead circuits and moves its expired ones
// to close, which it returns. m.mu is held.
func (m *Manager) pruneLocked(isolation string, now time.Time, close []Circuit) []Circuit {
	es := m.circs[isolation]
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
	if len(live) == 0 {
		delete(m.circs, isolation)
	} else {
		m.circs[isolation] = live
	}
	return close
}

// sweepLaterLocked schedules an expiry sweep unless one is due. m.mu is
// held.
func (m *Manager) sweepLaterLocked() {
	if m.sweep == nil && !m.closed {
		m.sweep = time.AfterFunc(m.sweepEvery, m.sweepNow)
	}
}

// sweepNow closes expired circuits of every isolation key, so a circuit
// expires even if no stream asks for its key again, and schedules the
// next sweep while any circuit is left.
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
	if len(m.circs) > 0 {
		m.sweepLaterLocked()
	}
	m.mu.Unlock()
	closeAll(expired)
}

// build chooses a path for need and builds a circuit through it.
func (m *Manager) build(ctx context.Context, need exitNeed) (Circuit, *exitpolicy.Policy, error) {
	path, exit, err := m.choosePath(need)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.builder.Build(ctx, path)
	if err != nil {
		m.noteFailure(ctx, path, err)
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
	c, _, err := m.build(ctx, exitNeed{any: true})
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
