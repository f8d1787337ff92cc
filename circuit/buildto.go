package circuit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BuildTo builds a circuit of PathLen hops whose last hop is last (an
// introduction or rendezvous point of a hidden service): the hops before
// it are chosen as for any circuit (the guard first, bandwidth weights, no
// two hops in one subnet or declared family, last never an earlier hop;
// spec/circuits.md §1.1), and last need not be an exit, nor be listed.
// Its declared family is taken from the relay list when last is listed.
// Up to Attempts paths are tried, each within the learned build timeout.
// The circuit is not shared through the Manager's pool: the caller owns
// and closes it. It needs the Switch as the Builder.
func (m *Manager) BuildTo(ctx context.Context, last Hop) (*ClientCirc, error) {
	return m.BuildToHops(ctx, last, m.cfg.PathLen)
}

// BuildToHops is BuildTo with a path of hops hops (1..8) instead
// of PathLen. With 1 hop the circuit is a direct one to last, which then
// learns this node's address: only for a node that trusts last (an
// executor's sub-calls to executors its operator trusts).
func (m *Manager) BuildToHops(ctx context.Context, last Hop, hops int) (*ClientCirc, error) {
	if hops < 1 || hops > maxBuildToHops {
		return nil, fmt.Errorf("circuit: a path of %d hops (1..%d)", hops, maxBuildToHops)
	}
	var err error
	lastFailed := 0
	for range m.cfg.Attempts {
		var path []Hop
		if path, err = m.choosePathTo(last, hops); err != nil {
			return nil, err
		}
		var c Circuit
		if c, err = m.buildTimed(ctx, path, true); err == nil {
			m.noteSuccess(path)
			return clientCirc(c)
		}
		m.cfg.Logf.Printf("circuit: build to a chosen last hop failed: %v", err)
		if ctx.Err() != nil {
			return nil, err
		}
		// Two paths that reached the hop before last but not last:
		// last is most likely down, and more paths would only cost
		// builds (they do not count against the guards' path bias).
		var be *BuildError
		if errors.As(err, &be) && be.Hop == len(path)-1 {
			if lastFailed++; lastFailed == lastHopTries {
				return nil, err
			}
		}
	}
	return nil, err
}

// lastHopTries is how many paths BuildTo tries that fail at the chosen
// last hop before it gives up on that hop.
const lastHopTries = 2

// choosePathTo chooses a path ending at last.
func (m *Manager) choosePathTo(last Hop, hops int) ([]Hop, error) {
	all := m.cfg.Relays() // not under m.mu: it calls into the directory
	info := &RelayInfo{Hop: last}
	for i := range all {
		if all[i].Hop.Identity == last.Identity {
			r := all[i]
			r.Hop = last
			info = &r
			break
		}
	}
	now := time.Now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	path, _, err := m.choosePathLocked(all, exitNeed{}, nil, info, hops, now)
	snap, seq := m.guardSnapshotLocked(now, false)
	m.mu.Unlock()
	m.writeGuards(snap, seq)
	return path, err
}

// maxBuildToHops bounds BuildToHops' path length.
const maxBuildToHops = 8
