package circuit

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// The preemptive maintainer retries a failed build after preemptRetryMin,
// doubling the wait after each further failure up to preemptRetryMax; a
// success resets it.
const (
	preemptRetryMin = time.Second
	preemptRetryMax = 30 * time.Second
)

// anyExit is what a preemptive circuit's exit must accept.
var anyExit = exitNeed{any: true}

// Preempt makes sure a clean circuit (one that never carried a stream) to
// any exit waits in the pool, building one if needed (once: no retry). The
// next stream of any isolation key whose exit policy it fits takes it.
func (m *Manager) Preempt(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.cleanLocked(time.Now()) > 0 {
		m.mu.Unlock()
		return nil
	}
	return m.addCleanLocked(ctx)
}

// Preemptive returns the number of clean circuits waiting in the pool.
func (m *Manager) Preemptive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cleanLocked(time.Now())
}

// cleanLocked returns the number of pool circuits that can still be
// handed out. m.mu is held.
func (m *Manager) cleanLocked(now time.Time) int {
	n := 0
	for _, e := range m.pool {
		if m.takes(e, now, anyExit, false) {
			n++
		}
	}
	return n
}

// addCleanLocked builds a clean circuit into the pool, or waits for such
// a build under way. m.mu is held and released.
func (m *Manager) addCleanLocked(ctx context.Context) error {
	_, err := m.buildLocked(ctx, buildKey{need: anyExit}, nil, func(e *entry) {
		m.pool = append(m.pool, e)
		m.watchLocked(e)
	})
	return err
}

// takeCleanLocked removes from the pool and returns a live clean circuit
// whose exit allows need and is not in avoid, or nil. m.mu is held.
func (m *Manager) takeCleanLocked(now time.Time, need exitNeed, avoid []keys.IdentityPublicKey) *entry {
	for i, e := range m.pool {
		if m.takes(e, now, need, false) && !avoids(avoid, e) {
			m.pool = slices.Delete(m.pool, i, i+1)
			return e
		}
	}
	return nil
}

// wake tells the maintainer to look at the pool again.
func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// watchLocked wakes the maintainer when e's circuit dies, so a dead
// preemptive circuit is replaced at once. m.mu is held, and the Manager
// is open.
func (m *Manager) watchLocked(e *entry) {
	if m.cfg.Preemptive <= 0 {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-e.c.Done():
			m.wake()
		case <-m.life.Done():
		}
	}()
}

// maintain keeps Preemptive clean circuits in the pool until Close.
func (m *Manager) maintain() {
	defer m.wg.Done()
	var wait time.Duration
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		if m.cleanLocked(time.Now()) >= m.cfg.Preemptive {
			m.mu.Unlock()
			select {
			case <-m.kick:
				continue
			case <-m.life.Done():
				return
			}
		}
		err := m.addCleanLocked(m.life)
		switch {
		case err == nil:
			wait = 0
			continue
		case errors.Is(err, ErrClosed) || m.life.Err() != nil:
			return
		}
		wait = min(max(2*wait, preemptRetryMin), preemptRetryMax)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.life.Done():
			t.Stop()
			return
		}
	}
}
