package circuit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/internal/safelog"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// RelayInfo is what path selection knows about a relay.
type RelayInfo struct {
	Hop    Hop
	Policy *exitpolicy.Policy // nil means not an exit
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Switch builds the circuits. Required.
	Switch *Switch
	// Relays returns the relays currently known. Required.
	Relays func() []RelayInfo
	// PathLen is the number of hops (default 3).
	PathLen int
	// AllowSameSubnet lets two hops share an IPv4 /16 or IPv6 /32 (a
	// loopback test network needs it).
	AllowSameSubnet bool
	// MaxDirtiness is how long a circuit takes new streams (default 10 min).
	MaxDirtiness time.Duration
	// Attempts is how many circuits DialStream tries (default 3).
	Attempts int
	Logf     safelog.Logf
}

// Manager builds and reuses client circuits. Streams with different
// isolation keys never share a circuit.
type Manager struct {
	cfg ManagerConfig

	// mu guards the following.
	mu       sync.Mutex
	circs    map[string][]*ClientCirc
	building map[string]*pendingBuild
	guard    *Hop
	down     map[[32]byte]time.Time // relays that failed a build, until when
	closed   bool
}

// downTime is how long a relay that failed a build is left out of paths.
const downTime = time.Minute

type pendingBuild struct {
	done chan struct{}
	need exitNeed
	cc   *ClientCirc
	err  error
}

var errNoPath = errors.New("circuit: not enough relays for a path")

// exitNeed is what a circuit's exit must accept.
type exitNeed struct {
	ip   netip.Addr // the target's address when it is an IP literal
	port uint16
	any  bool // any exit will do (preemptive circuits)
}

// needFor returns what an exit must accept to reach t. A host name can
// only be checked against the port: the exit resolves it.
func needFor(t cell.Target) exitNeed {
	n := exitNeed{port: t.Port}
	if ip, err := netip.ParseAddr(t.Host); err == nil {
		n.ip = ip.Unmap()
	}
	return n
}

func (n exitNeed) allows(p *exitpolicy.Policy) bool {
	switch {
	case p == nil:
		return false
	case n.any:
		return p.IsExit()
	case n.ip.IsValid():
		return p.Allows(n.ip, n.port)
	}
	return p.AllowsPort(n.port)
}

// NewManager returns a Manager.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Switch == nil || cfg.Relays == nil {
		return nil, errors.New("circuit: ManagerConfig needs Switch and Relays")
	}
	if cfg.PathLen <= 0 {
		cfg.PathLen = 3
	}
	if cfg.MaxDirtiness <= 0 {
		cfg.MaxDirtiness = 10 * time.Minute
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	return &Manager{
		cfg:      cfg,
		circs:    make(map[string][]*ClientCirc),
		building: make(map[string]*pendingBuild),
		down:     make(map[[32]byte]time.Time),
	}, nil
}

// Close destroys all circuits.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	var all []*ClientCirc
	for _, cs := range m.circs {
		all = append(all, cs...)
	}
	m.circs = map[string][]*ClientCirc{}
	m.mu.Unlock()
	for _, cc := range all {
		cc.Close()
	}
	return nil
}

// Circuits returns the number of open circuits.
func (m *Manager) Circuits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, cs := range m.circs {
		for _, cc := range cs {
			if !isDone(cc.Done()) {
				n++
			}
		}
	}
	return n
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
		cc, err := m.circuitFor(ctx, isolation, needFor(t))
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		st, err := cc.OpenStream(ctx, target)
		if err == nil {
			return st, nil
		}
		last = err
		if !errors.Is(err, ErrDestroyed) || ctx.Err() != nil {
			break // the exit answered: no point in another circuit
		}
	}
	if errors.Is(last, ErrDestroyed) || errors.Is(last, errNoPath) {
		return nil, fmt.Errorf("%w: %w", streamerr.New(streamerr.NoExit), last)
	}
	if ctx.Err() != nil && !isStreamErr(last) {
		return nil, fmt.Errorf("%w: %w", streamerr.New(streamerr.Timeout), ctx.Err())
	}
	return nil, last
}

func isStreamErr(err error) bool {
	var se *streamerr.Error
	return errors.As(err, &se)
}

// circuitFor returns a usable circuit for isolation whose exit allows need.
func (m *Manager) circuitFor(ctx context.Context, isolation string, need exitNeed) (*ClientCirc, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	live := m.circs[isolation][:0]
	var found *ClientCirc
	var expired []*ClientCirc
	for _, cc := range m.circs[isolation] {
		if isDone(cc.Done()) {
			continue
		}
		dirty := time.Since(cc.created) >= m.cfg.MaxDirtiness
		if dirty && cc.Streams() == 0 {
			expired = append(expired, cc) // too old for new streams and idle
			continue
		}
		live = append(live, cc)
		if found == nil && !dirty && m.exitAllows(cc, need) {
			found = cc
		}
	}
	m.circs[isolation] = live
	defer func() {
		for _, cc := range expired {
			cc.Close()
		}
	}()
	if found != nil {
		m.mu.Unlock()
		return found, nil
	}
	if pb := m.building[isolation]; pb != nil && pb.need == need {
		m.mu.Unlock()
		select {
		case <-pb.done:
			return pb.cc, pb.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pb := &pendingBuild{done: make(chan struct{}), need: need}
	m.building[isolation] = pb
	m.mu.Unlock()

	pb.cc, pb.err = m.build(ctx, need)
	m.mu.Lock()
	if m.building[isolation] == pb {
		delete(m.building, isolation)
	}
	if pb.err == nil {
		if m.closed {
			pb.cc.Close()
			pb.err = ErrClosed
		} else {
			m.circs[isolation] = append(m.circs[isolation], pb.cc)
		}
	}
	m.mu.Unlock()
	close(pb.done)
	return pb.cc, pb.err
}

func (m *Manager) exitAllows(cc *ClientCirc, need exitNeed) bool {
	last := cc.hops[len(cc.hops)-1]
	for _, r := range m.cfg.Relays() {
		if r.Hop.Identity == last.Identity {
			return need.allows(r.Policy)
		}
	}
	return false
}

// Build builds a circuit to any exit without registering it for streams
// (measurements).
func (m *Manager) Build(ctx context.Context) (*ClientCirc, error) {
	return m.build(ctx, exitNeed{any: true})
}

// Preempt builds a circuit to any exit for the default isolation key ahead
// of use.
func (m *Manager) Preempt(ctx context.Context) error {
	_, err := m.circuitFor(ctx, "", exitNeed{any: true})
	return err
}

func (m *Manager) build(ctx context.Context, need exitNeed) (*ClientCirc, error) {
	path, err := m.choosePath(need)
	if err != nil {
		return nil, err
	}
	cc, err := m.cfg.Switch.BuildCircuit(ctx, path)
	if err != nil {
		// Leave the hop that failed out of paths for a while; if it was
		// the guard, pick another.
		var be *BuildError
		if errors.As(err, &be) && ctx.Err() == nil {
			m.mu.Lock()
			m.down[path[be.Hop].Identity] = time.Now().Add(downTime)
			if be.Hop == 0 && m.guard != nil && m.guard.Identity == path[0].Identity {
				m.guard = nil
			}
			m.mu.Unlock()
		}
		m.cfg.Logf.Printf("circuit: build failed: %v", err)
		return nil, err
	}
	return cc, nil
}

// choosePath picks guard, middles and an exit: distinct relays, no two in
// one subnet unless allowed, the exit accepting need. The guard is sticky:
// it stays the first hop until a build through it fails.
func (m *Manager) choosePath(need exitNeed) ([]Hop, error) {
	relays := m.usable()
	n := m.cfg.PathLen
	if len(relays) < n {
		return nil, errNoPath
	}
	m.mu.Lock()
	guard := m.guard
	m.mu.Unlock()
	if guard != nil && !m.known(relays, guard) {
		guard = nil // failed recently or left the directory
	}
	for attempt := 0; attempt < 64; attempt++ {
		path := make([]Hop, 0, n)
		if n > 1 {
			g := guard
			if g == nil {
				g = &relays[rand.IntN(len(relays))].Hop
			}
			path = append(path, *g)
		}
		for len(path) < n-1 {
			path = append(path, relays[rand.IntN(len(relays))].Hop)
		}
		var exits []Hop
		for _, r := range relays {
			if need.allows(r.Policy) && (n == 1 || r.Hop.Identity != path[0].Identity) {
				exits = append(exits, r.Hop)
			}
		}
		if len(exits) == 0 {
			if guard != nil {
				continue
			}
			return nil, errNoPath
		}
		path = append(path, exits[rand.IntN(len(exits))])
		if m.pathOK(path) {
			if n > 1 {
				m.mu.Lock()
				m.guard = &path[0]
				m.mu.Unlock()
			}
			return path, nil
		}
	}
	return nil, errNoPath
}

// SetGuard makes h the first hop of every circuit, until it fails.
func (m *Manager) SetGuard(h Hop) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.guard = &h
}

// Guard returns the current guard, or nil.
func (m *Manager) Guard() *Hop {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.guard == nil {
		return nil
	}
	g := *m.guard
	return &g
}

// usable returns the known relays that have not failed recently.
func (m *Manager) usable() []RelayInfo {
	all := m.cfg.Relays()
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := all[:0:0]
	for _, r := range all {
		if until, ok := m.down[r.Hop.Identity]; ok {
			if now.Before(until) {
				continue
			}
			delete(m.down, r.Hop.Identity)
		}
		out = append(out, r)
	}
	return out
}

func (m *Manager) known(relays []RelayInfo, h *Hop) bool {
	for _, r := range relays {
		if r.Hop.Identity == h.Identity {
			return true
		}
	}
	return false
}

func (m *Manager) pathOK(path []Hop) bool {
	for i := range path {
		for j := i + 1; j < len(path); j++ {
			if path[i].Identity == path[j].Identity {
				return false
			}
			if !m.cfg.AllowSameSubnet && sameSubnet(path[i].Addr, path[j].Addr) {
				return false
			}
		}
	}
	return true
}

// sameSubnet reports whether two link addresses share an IPv4 /16 or an
// IPv6 /32. Host names never match.
func sameSubnet(a, b string) bool {
	pa, errA := addrOf(a)
	pb, errB := addrOf(b)
	if errA != nil || errB != nil || pa.Is4() != pb.Is4() {
		return false
	}
	bits := 16
	if !pa.Is4() {
		bits = 32
	}
	x, _ := pa.Prefix(bits)
	y, _ := pb.Prefix(bits)
	return x == y
}

func addrOf(hostport string) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err
}

// BuildAny builds a circuit of PathLen hops over any relays, exit or not
// (measurements and tests).
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
			return m.cfg.Switch.BuildCircuit(ctx, path)
		}
	}
	return nil, errNoPath
}

// Open returns the live circuits that carry streams.
func (m *Manager) Open() []*ClientCirc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ClientCirc
	for _, cs := range m.circs {
		for _, cc := range cs {
			if !isDone(cc.Done()) {
				out = append(out, cc)
			}
		}
	}
	return out
}
