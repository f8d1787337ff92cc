package circuit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// RelayInfo is what path selection knows about a relay.
type RelayInfo struct {
	Hop    Hop
	Policy *exitpolicy.Policy // nil means not an exit
	// Bandwidth is what the relay advertises, in bytes per second.
	Bandwidth uint32
	// Measured is a bandwidth measured through the relay (bytes per
	// second; 0 means unknown). When known it caps Bandwidth. A value
	// given to Manager.NoteMeasured takes precedence.
	Measured uint32
	// Family lists the relays this one declares as run by the same
	// operator. Two relays are one family only if each lists the other.
	Family []keys.NodeID
	// FirstSeen is when this node first saw the relay listed (zero:
	// unknown). A guard must have been known for GuardParams.MinAge.
	FirstSeen time.Time
	// Reliable says the directory has seen the relay stay listed and
	// reachable. Only reliable relays are sampled as guards (unless too
	// few are, spec/guards.md §2).
	Reliable bool
}

var errNoPath = errors.New("circuit: not enough relays for a path")

// A relay whose build failed is left out of paths for downTime; each
// further failure before a build through it succeeds doubles that, up to
// maxDownTime. A relay that stays out of trouble for maxDownTime after its
// back-off ended starts again from downTime.
const (
	downTime    = time.Minute
	maxDownTime = 16 * time.Minute
)

// A failure at hop i ≥ 1 is reported by hop i-1 (spec/guards.md §4): it
// backs off that link only; hop i itself is backed off once blameAccusers
// distinct predecessors reported failures to reach it within blameWindow.
const (
	blameAccusers = 2
	blameWindow   = 10 * time.Minute
	// maxBlameEntries bounds the links and accusations remembered.
	maxBlameEntries = 4096
	// guardSaveEvery is how often counters alone are written to the
	// guard file; a change of the sample or of a guard's state is
	// written at once.
	guardSaveEvery = time.Minute
	// pathAttempts is how many random paths are tried per guard.
	pathAttempts = 64
)

// failure is a relay's (or a link's) record of failed builds.
type failure struct {
	n     int       // failed builds since the last success through it
	until time.Time // left out of paths until then
}

func (f *failure) note(now time.Time) {
	f.n++
	f.until = now.Add(backoff(f.n))
}

// backoff returns how long a relay is left out after its n-th failure.
func backoff(n int) time.Duration {
	d := downTime
	for i := 1; i < n && d < maxDownTime; i++ {
		d *= 2
	}
	return min(d, maxDownTime)
}

// linkKey names the link from one hop to the next.
type linkKey struct{ from, to keys.IdentityPublicKey }

// accusation is the record of failures reported by a relay's predecessors.
type accusation struct {
	by    [blameAccusers]keys.IdentityPublicKey
	n     int
	first time.Time
}

// pathState is the Manager's memory for choosing paths. The Manager's mu
// guards it, except saver.
type pathState struct {
	guards   *guardSet
	failed   map[keys.IdentityPublicKey]*failure // relays left out of paths
	links    map[linkKey]*failure                // links whose EXTEND failed
	accused  map[keys.IdentityPublicKey]*accusation
	measured map[keys.IdentityPublicKey]uint32 // from NoteMeasured
	known    int                               // relays in the latest list
	stats    PathStats
	lastSave time.Time
	saveSeq  uint64

	saver struct {
		mu      sync.Mutex
		written uint64 // the newest snapshot written
	}
}

// PathStats counts what path selection, blame and the guards did.
type PathStats struct {
	GuardFailures     uint64 // builds that failed at the guard (hop 0)
	ExtendFailures    uint64 // builds that failed past the guard
	RelaysBlamed      uint64 // relays backed off on reports from distinct predecessors
	GuardsUnreachable uint64 // guards marked unreachable after sustained failure
	GuardsRemoved     uint64 // guards dropped from the sample
	PathBiasWarnings  uint64 // guards whose success rate fell below 70%
	PathBiasDisabled  uint64 // guards disabled for a success rate below 50%
	GuardSaveErrors   uint64 // failed writes of the guard file
}

// initPath loads the guard file and readies the path state.
func (m *Manager) initPath() error {
	gs, err := loadGuards(m.cfg.GuardFile, m.cfg.Guards)
	if err != nil {
		return err
	}
	m.path.guards = gs
	m.path.failed = make(map[keys.IdentityPublicKey]*failure)
	m.path.links = make(map[linkKey]*failure)
	m.path.accused = make(map[keys.IdentityPublicKey]*accusation)
	m.path.measured = make(map[keys.IdentityPublicKey]uint32)
	return nil
}

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

// choosePath picks a guard, middles and an exit (spec/circuits.md §1.1):
// the first usable guard that admits a path, middles and an exit by
// bandwidth weight, no relay twice, no two in one subnet (unless allowed)
// or one declared family, no link that failed recently, the exit
// accepting need, not one of avoid unless every such exit is. It returns
// the path and the exit's policy.
func (m *Manager) choosePath(need exitNeed, avoid ...keys.IdentityPublicKey) ([]Hop, *exitpolicy.Policy, error) {
	all := m.cfg.Relays() // not under m.mu: it calls into the directory
	now := time.Now()
	m.mu.Lock()
	path, exit, err := m.choosePathLocked(all, need, avoid, nil, m.cfg.PathLen, now)
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
	return path, exit, err
}

// choosePathLocked chooses a path of n hops as choosePath does; with last
// set, that relay is the last hop whatever need says (BuildTo).
func (m *Manager) choosePathLocked(all []RelayInfo, need exitNeed, avoid []keys.IdentityPublicKey, last *RelayInfo, n int, now time.Time) ([]Hop, *exitpolicy.Policy, error) {
	measured := func(r *RelayInfo) uint32 { return m.path.measured[r.Hop.Identity] }
	m.refreshLocked(all, now)
	if n > 1 {
		ptrs := make([]*RelayInfo, len(all))
		for i := range all {
			ptrs[i] = &all[i]
		}
		m.path.stats.GuardsRemoved += uint64(m.path.guards.update(ptrs, func() []uint64 { return weights(ptrs, measured) }, now))
	}
	relays := m.usableLocked(all, now)
	if len(relays) < n-1 || (n == 1 && len(relays) == 0 && last == nil) {
		return nil, nil, errNoPath
	}
	var exits []*RelayInfo
	for _, r := range relays {
		if last == nil && need.allows(r.Policy) {
			exits = append(exits, r)
		}
	}
	if last != nil {
		exits = []*RelayInfo{last}
	}
	if len(exits) == 0 {
		return nil, nil, errNoPath
	}
	if len(avoid) > 0 {
		if rest := slices.DeleteFunc(slices.Clone(exits), func(r *RelayInfo) bool { return slices.Contains(avoid, r.Hop.Identity) }); len(rest) > 0 {
			exits = rest
		}
	}
	cum, exitCum := weights(relays, measured), weights(exits, measured)
	var firsts []*guard
	if n > 1 {
		var skip *keys.IdentityPublicKey
		if last != nil {
			skip = &last.Hop.Identity
		}
		firsts = m.path.guards.choicesWithout(now, skip)
	} else {
		firsts = []*guard{nil}
	}
	hops := make([]*RelayInfo, 0, n)
	// A primary guard at a later hop only when the relay list is too
	// small for any path without one (a test network of a few relays).
	passes := [][]*guard{nil}
	if n > 1 {
		if prim := m.path.guards.primaries(now); len(prim) > 0 {
			passes = [][]*guard{prim, nil}
		}
	}
	for _, avoid := range passes {
		if p, pol, ok := m.tryPathsLocked(firsts, relays, exits, cum, exitCum, hops, n, avoid, now); ok {
			return p, pol, nil
		}
	}
	return nil, nil, errNoPath
}

// tryPathsLocked draws paths from each first hop in turn and returns the
// first that fits, with none of avoid (the primary guards) at a later hop.
func (m *Manager) tryPathsLocked(firsts []*guard, relays, exits []*RelayInfo, cum, exitCum []uint64, hops []*RelayInfo, n int, avoid []*guard, now time.Time) ([]Hop, *exitpolicy.Policy, bool) {
	for _, g := range firsts {
		for range pathAttempts {
			hops = hops[:0]
			if g != nil {
				hops = append(hops, &g.info)
			}
			for len(hops) < n-1 {
				hops = append(hops, relays[pickWeighted(cum, nil)])
			}
			e := exits[pickWeighted(exitCum, nil)]
			hops = append(hops, e)
			if m.fitsLocked(hops, avoid, now) {
				path := make([]Hop, len(hops))
				for i, h := range hops {
					path[i] = h.Hop
				}
				return path, e.Policy, true
			}
		}
	}
	return nil, nil, false
}

// refreshLocked forgets back-offs long over, and measurements and blame
// of relays no longer listed.
func (m *Manager) refreshLocked(all []RelayInfo, now time.Time) {
	m.path.known = len(all)
	for id, f := range m.path.failed {
		if !now.Before(f.until.Add(maxDownTime)) {
			delete(m.path.failed, id) // quiet long enough: forgiven
		}
	}
	for k, f := range m.path.links {
		if !now.Before(f.until.Add(maxDownTime)) {
			delete(m.path.links, k)
		}
	}
	for id, a := range m.path.accused {
		if now.Sub(a.first) >= blameWindow {
			delete(m.path.accused, id)
		}
	}
	if len(m.path.measured) > 0 {
		listed := make(map[keys.IdentityPublicKey]bool, len(all))
		for i := range all {
			listed[all[i].Hop.Identity] = true
		}
		for id := range m.path.measured {
			if !listed[id] {
				delete(m.path.measured, id)
			}
		}
	}
}

// usableLocked returns the relays of all that are not backed off.
func (m *Manager) usableLocked(all []RelayInfo, now time.Time) []*RelayInfo {
	out := make([]*RelayInfo, 0, len(all))
	for i := range all {
		r := &all[i]
		if f := m.path.failed[r.Hop.Identity]; f != nil && now.Before(f.until) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// fitsLocked checks the path rules that weighting alone does not keep,
// and that no relay of avoid is a later hop. The caller passes the primary
// guards: the node links to them directly (they are its directory
// sources), so one of them as a middle or an exit would see both ends of
// a circuit; it passes none only where no path could keep that rule.
func (m *Manager) fitsLocked(hops []*RelayInfo, avoid []*guard, now time.Time) bool {
	for i, h := range hops {
		// A hop is reached by EXTEND from the one before, which takes an
		// IP literal only (spec/cells.md §3.4); the first hop may have a
		// host name, which this node resolves itself.
		if i > 0 {
			for _, g := range avoid {
				if g.id == h.Hop.Identity {
					return false
				}
			}
			if _, _, err := cell.ParseExtendAddr(h.Hop.Addr); err != nil {
				return false
			}
			if f := m.path.links[linkKey{hops[i-1].Hop.Identity, h.Hop.Identity}]; f != nil && now.Before(f.until) {
				return false
			}
		}
		for _, o := range hops[i+1:] {
			if h.Hop.Identity == o.Hop.Identity ||
				!m.cfg.AllowSameSubnet && sameSubnet(h.Hop.Addr, o.Hop.Addr) ||
				sameFamily(h, o) {
				return false
			}
		}
	}
	return true
}

// pathOK checks a path of hops by the rules that need no RelayInfo:
// IP-literal addresses past the first hop, distinct relays, distinct
// subnets unless allowed.
func (m *Manager) pathOK(path []Hop) bool {
	for i := range path {
		if i > 0 {
			if _, _, err := cell.ParseExtendAddr(path[i].Addr); err != nil {
				return false
			}
		}
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

// sameFamily reports whether a and b each declare the other as family.
func sameFamily(a, b *RelayInfo) bool {
	if len(a.Family) == 0 || len(b.Family) == 0 {
		return false
	}
	return slices.Contains(a.Family, b.Hop.Identity.NodeID()) &&
		slices.Contains(b.Family, a.Hop.Identity.NodeID())
}

// noteFailure records a failed build (spec/guards.md §4). A failure at
// the guard counts toward the guard's sustained failure; one further on
// is reported by the hop before: that link is backed off, the path-bias
// count of the guard grows, and the hop that failed is backed off only
// once distinct predecessors reported it. A build the caller gave up on
// blames nobody. With fixedLast the last hop was not chosen by path
// selection (a hidden service's introduction or rendezvous point, from a
// descriptor or a client): a failure to extend to it does not count
// against the guard's path bias, since a dead relay named by someone else
// says nothing about the guard.
func (m *Manager) noteFailure(ctx context.Context, path []Hop, err error, fixedLast bool) {
	var be *BuildError
	if !errors.As(err, &be) || be.Hop < 0 || be.Hop >= len(path) || ctx.Err() != nil {
		return
	}
	now := time.Now()
	m.mu.Lock()
	guarded := len(path) > 1
	switch {
	case be.Hop == 0 && guarded:
		m.path.stats.GuardFailures++
		if m.path.guards.failed(path[0].Identity, now) {
			m.path.stats.GuardsUnreachable++
			m.cfg.Logf.Printf("circuit: guard %v unreachable after sustained failure; using the next primary guard", safelog.S(path[0].Identity.NodeID()))
		}
	case be.Hop == 0:
		m.noteRelayFailureLocked(path[0].Identity, now) // a one-hop path has no guard
	default:
		m.path.stats.ExtendFailures++
		if guarded {
			m.path.guards.reached(path[0].Identity)
			if !fixedLast || be.Hop != len(path)-1 {
				m.noteBiasLocked(path[0].Identity, func(b *pathBias) { b.noteCircuit(false) })
			}
		}
		m.accuseLocked(path[be.Hop-1].Identity, path[be.Hop].Identity, now)
	}
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
}

func (m *Manager) noteRelayFailureLocked(id keys.IdentityPublicKey, now time.Time) {
	f := m.path.failed[id]
	if f == nil {
		f = &failure{}
		m.path.failed[id] = f
	}
	f.note(now)
}

// accuseLocked records that from failed to extend to to: the link is
// backed off, and to is once enough distinct relays accused it.
func (m *Manager) accuseLocked(from, to keys.IdentityPublicKey, now time.Time) {
	k := linkKey{from, to}
	f := m.path.links[k]
	if f == nil {
		if len(m.path.links) >= maxBlameEntries {
			return
		}
		f = &failure{}
		m.path.links[k] = f
	}
	f.note(now)
	a := m.path.accused[to]
	if a == nil || now.Sub(a.first) >= blameWindow {
		if a == nil && len(m.path.accused) >= maxBlameEntries {
			return
		}
		a = &accusation{first: now}
		m.path.accused[to] = a
	}
	if slices.Contains(a.by[:a.n], from) {
		return
	}
	a.by[a.n] = from
	a.n++
	if a.n == blameAccusers {
		delete(m.path.accused, to)
		m.noteRelayFailureLocked(to, now)
		m.path.stats.RelaysBlamed++
	}
}

// noteSuccess forgets the failures of the relays and links a circuit was
// just built through, and counts it for the guard.
func (m *Manager) noteSuccess(path []Hop) {
	now := time.Now()
	m.mu.Lock()
	for i, h := range path {
		delete(m.path.failed, h.Identity)
		delete(m.path.accused, h.Identity)
		if i > 0 {
			delete(m.path.links, linkKey{path[i-1].Identity, h.Identity})
		}
	}
	if len(path) > 1 {
		g := path[0].Identity
		m.path.guards.reached(g)
		m.path.guards.built(g, now)
		m.noteBiasLocked(g, func(b *pathBias) { b.noteCircuit(true) })
	}
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
}

// noteUse counts a stream tried on c for its guard's path bias: answered
// if the exit answered (a stream or an END), failed if the circuit died
// under it or no answer came within StreamTimeout. Streams the caller
// gave up on, and other errors, count for nothing.
func (m *Manager) noteUse(ctx context.Context, c Circuit, err error) {
	hops := c.Hops()
	if len(hops) < 2 || ctx.Err() != nil {
		return
	}
	var answered bool
	switch {
	case errors.Is(err, ErrDestroyed) || errors.Is(err, errNoConnected):
	case err == nil || isStreamErr(err):
		answered = true
	default:
		return
	}
	now := time.Now()
	m.mu.Lock()
	m.noteBiasLocked(hops[0].Identity, func(b *pathBias) { b.noteStream(answered) })
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
}

// noteBiasLocked updates guard id's path-bias record with f and acts on
// its verdict: a warning once per bad spell, disabling below the floor.
func (m *Manager) noteBiasLocked(id keys.IdentityPublicKey, f func(*pathBias)) {
	g := m.path.guards.find(id)
	if g == nil {
		return
	}
	f(&g.bias)
	m.path.guards.touch(false)
	switch g.bias.verdict() {
	case biasDisable:
		if !g.disabled {
			g.disabled = true
			m.path.guards.touch(true)
			m.path.stats.PathBiasDisabled++
			m.cfg.Logf.Printf("circuit: guard %v disabled: %d of %d circuits built, %d of %d streams answered (path bias)",
				safelog.S(id.NodeID()), g.bias.Built, g.bias.Circuits, g.bias.Answered, g.bias.Streams)
		}
	case biasWarn:
		if !g.bias.Warned {
			g.bias.Warned = true
			m.path.stats.PathBiasWarnings++
			m.cfg.Logf.Printf("circuit: guard %v: only %d of %d circuits built, %d of %d streams answered (path bias)",
				safelog.S(id.NodeID()), g.bias.Built, g.bias.Circuits, g.bias.Answered, g.bias.Streams)
		}
	default:
		g.bias.Warned = false
	}
}

// sameSubnet reports whether two link addresses ([scheme://]host:port)
// share an IPv4 /16 or an IPv6 /32, whatever their transports. Host names
// never match.
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

func addrOf(addr string) (netip.Addr, error) {
	if _, hostport, ok := strings.Cut(addr, "://"); ok {
		addr = hostport
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err
}
