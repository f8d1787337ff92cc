package circuit

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
)

// RelayInfo is what path selection knows about a relay.
type RelayInfo struct {
	Hop    Hop
	Policy *exitpolicy.Policy // nil means not an exit
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

// failure is a relay's record of failed builds.
type failure struct {
	n     int       // failed builds since the last success through it
	until time.Time // left out of paths until then
}

// backoff returns how long a relay is left out after its n-th failure.
func backoff(n int) time.Duration {
	d := downTime
	for i := 1; i < n && d < maxDownTime; i++ {
		d *= 2
	}
	return min(d, maxDownTime)
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

// choosePath picks guard, middles and an exit: distinct relays, no two in
// one subnet unless allowed, the exit accepting need. It returns the path
// and the exit's policy. The guard is sticky: it stays the first hop until
// a build through it fails or it leaves the directory.
func (m *Manager) choosePath(need exitNeed) ([]Hop, *exitpolicy.Policy, error) {
	relays := m.usable()
	n := m.cfg.PathLen
	if len(relays) < n {
		return nil, nil, errNoPath
	}
	m.mu.Lock()
	current := m.guard
	m.mu.Unlock()
	guard := current
	if guard != nil && !known(relays, guard) {
		guard = nil // failed recently or left the directory
	}
	var exits []*RelayInfo
	for i, r := range relays {
		if need.allows(r.Policy) {
			exits = append(exits, &relays[i])
		}
	}
	if len(exits) == 0 {
		return nil, nil, errNoPath
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
		exit := exits[rand.IntN(len(exits))]
		path = append(path, exit.Hop)
		if m.pathOK(path) {
			if n > 1 {
				m.mu.Lock()
				if m.guard == current { // not replaced meanwhile
					m.guard = &path[0]
				}
				m.mu.Unlock()
			}
			return path, exit.Policy, nil
		}
	}
	return nil, nil, errNoPath
}

// noteFailure backs off the hop a build failed at; if it was the guard,
// the next path picks another. A build the caller gave up on blames no
// relay.
func (m *Manager) noteFailure(ctx context.Context, path []Hop, err error) {
	var be *BuildError
	if !errors.As(err, &be) || be.Hop < 0 || be.Hop >= len(path) || ctx.Err() != nil {
		return
	}
	id := path[be.Hop].Identity
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.failed[id]
	if f == nil {
		f = &failure{}
		m.failed[id] = f
	}
	f.n++
	f.until = now.Add(backoff(f.n))
	if be.Hop == 0 && m.guard != nil && m.guard.Identity == id {
		m.guard = nil
	}
}

// noteSuccess forgets the failures of the relays a circuit was just built
// through.
func (m *Manager) noteSuccess(path []Hop) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failed) == 0 {
		return
	}
	for _, h := range path {
		delete(m.failed, h.Identity)
	}
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

// usable returns the known relays that are not backed off.
func (m *Manager) usable() []RelayInfo {
	all := m.cfg.Relays() // not under m.mu: it calls into the directory
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, f := range m.failed {
		if !now.Before(f.until.Add(maxDownTime)) {
			delete(m.failed, id) // quiet long enough: forgiven
		}
	}
	out := all[:0:0]
	for _, r := range all {
		if f := m.failed[r.Hop.Identity]; f != nil && now.Before(f.until) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func known(relays []RelayInfo, h *Hop) bool {
	for _, r := range relays {
		if r.Hop.Identity == h.Identity {
			return true
		}
	}
	return false
}

func (m *Manager) pathOK(path []Hop) bool {
	for i := range path {
		// A hop is reached by EXTEND from the one before, which takes an
		// IP literal only (spec/cells.md §3.4); the first hop may have a
		// host name, which this node resolves itself.
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
