package circuit

import (
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/atomicfile"
	"github.com/darkmatter/darkmatter/internal/safelog"
)

// GuardInfo describes one guard of the sample (for darkmatter status).
type GuardInfo struct {
	Identity    keys.IdentityPublicKey
	Listed      bool // in the current relay list
	Reachable   bool // not marked unreachable after sustained failure
	Usable      bool // circuits may go through it now
	Confirmed   bool // a circuit was built through it
	Primary     bool
	Current     bool // the guard circuits go through now
	Provisional bool // sampled though not old or reliable enough
	Disabled    bool // by path bias
	Failures    int  // consecutive failures at it
	// Path bias: circuits that got past it and those built, streams tried
	// on its circuits and those answered.
	Circuits, Built, Streams, Answered uint32
}

// Guards returns the guard sample, best first.
func (m *Manager) Guards() []GuardInfo {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	gs := m.path.guards
	prim := gs.primaries(now)
	cur := gs.current(now)
	var out []GuardInfo
	for _, g := range gs.ordered() {
		isPrim := false
		for _, p := range prim {
			isPrim = isPrim || p == g
		}
		out = append(out, GuardInfo{
			Identity: g.id, Listed: g.listed, Reachable: !g.unreachable, Usable: g.usable(now),
			Confirmed: !g.confirmed.IsZero(), Primary: isPrim, Current: g == cur,
			Provisional: g.provisional, Disabled: g.disabled, Failures: g.failures,
			Circuits: g.bias.Circuits, Built: g.bias.Built, Streams: g.bias.Streams, Answered: g.bias.Answered,
		})
	}
	return out
}

// PrimaryGuards samples guards from the relay list if needed and returns
// the primary guards, best first. A client takes its relay list from them
// (its directory sources): they are the only relays it links to, and
// choosePath never puts them at a later hop.
func (m *Manager) PrimaryGuards() []Hop {
	all := m.cfg.Relays()
	now := time.Now()
	m.mu.Lock()
	if m.cfg.PathLen > 1 {
		ptrs := make([]*RelayInfo, len(all))
		for i := range all {
			ptrs[i] = &all[i]
		}
		measured := func(r *RelayInfo) uint32 { return m.path.measured[r.Hop.Identity] }
		m.path.stats.GuardsRemoved += uint64(m.path.guards.update(ptrs, func() []uint64 { return weights(ptrs, measured) }, now))
	}
	var out []Hop
	for _, g := range m.path.guards.primaries(now) {
		out = append(out, g.info.Hop)
	}
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
	return out
}

// SetGuard makes h the first guard: sampled if it was not, preferred to
// every other guard, its failures forgotten. It stays first until it
// fails in a sustained way, leaves the relay list, or a later SetGuard
// names another (a client's bootstrap relay, say).
func (m *Manager) SetGuard(h Hop) {
	now := time.Now()
	m.mu.Lock()
	m.path.guards.pin(RelayInfo{Hop: h}, now)
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
}

// Guard returns the guard circuits go through now, or nil.
func (m *Manager) Guard() *Hop {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.path.guards.current(time.Now())
	if g == nil {
		return nil
	}
	h := g.info.Hop
	return &h
}

// NoteMeasured records a bandwidth measured through relay id, in bytes per
// second: it caps the bandwidth the relay advertises when choosing paths
// (0 forgets it). Only relays in the relay list are remembered.
func (m *Manager) NoteMeasured(id keys.IdentityPublicKey, bytesPerSec uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bytesPerSec == 0 {
		delete(m.path.measured, id)
		return
	}
	if _, ok := m.path.measured[id]; !ok && len(m.path.measured) >= max(m.path.known, 1) {
		return // bounded by the relays known; refreshLocked drops the unlisted
	}
	m.path.measured[id] = bytesPerSec
}

// PathStats returns the counters of path selection and the guards.
func (m *Manager) PathStats() PathStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.path.stats
}

// guardSnapshotLocked returns the guard file's new contents and their
// sequence number when they should be written now (nil otherwise): at
// once after a change of the sample or a guard's state, at most every
// guardSaveEvery for counters alone, or with force. m.mu is held.
func (m *Manager) guardSnapshotLocked(now time.Time, force bool) ([]byte, uint64) {
	gs := m.path.guards
	if m.cfg.GuardFile == "" || !gs.changed {
		return nil, 0
	}
	if !gs.structural && !force && now.Sub(m.path.lastSave) < guardSaveEvery {
		return nil, 0
	}
	gs.changed, gs.structural = false, false
	m.path.lastSave = now
	m.path.saveSeq++
	return gs.marshal(), m.path.saveSeq
}

// writeGuards writes a snapshot from guardSnapshotLocked unless a newer
// one was written already. m.mu is not held.
func (m *Manager) writeGuards(b []byte, seq uint64) {
	if b == nil {
		return
	}
	sv := &m.path.saver
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if seq <= sv.written {
		return
	}
	if err := atomicfile.Write(m.cfg.GuardFile, b, 0o600); err != nil {
		m.cfg.Logf.Printf("circuit: writing the guard file: %v", safelog.Scrub(err))
		m.mu.Lock()
		m.path.stats.GuardSaveErrors++
		m.path.guards.touch(true) // try again at the next change
		m.mu.Unlock()
		return
	}
	sv.written = seq
}

// flushGuards writes counters not yet in the guard file (at Close).
func (m *Manager) flushGuards() {
	m.mu.Lock()
	snap, seq := m.guardSnapshotLocked(time.Now(), true)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
}
