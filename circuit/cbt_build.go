package circuit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrBuildTimeout means a circuit build took longer than the learned build
// timeout (Manager.BuildTimeout). It blames no relay.
var ErrBuildTimeout = errors.New("circuit: build timed out")

// attempt is one build through a path, run on its own goroutine so that
// the caller can leave at the build timeout while the build goes on to be
// measured.
type attempt struct {
	done chan struct{} // closed when the build ended while the caller waited

	// mu guards the following.
	mu      sync.Mutex
	ended   bool // the build returned; c and err hold its result
	left    bool // the caller stopped waiting
	measure bool // ... at the timeout, and the build goes on to be measured
	c       Circuit
	err     error
	took    time.Duration
}

// buildTimed builds a circuit through path, giving up at the learned
// build timeout or when ctx ends. A build cut at the timeout returns
// ErrBuildTimeout and, if few others are being measured, goes on until
// the initial timeout so its build time is learned; the circuit is then
// closed. A failure at a known hop while the caller still wanted the
// circuit backs that relay off (noteFailure).
func (m *Manager) buildTimed(ctx context.Context, path []Hop, fixedLast bool) (Circuit, error) {
	timeout := m.cbt.current()
	// The build runs until the initial timeout at most, is cancelled when
	// the caller gives up (not at the learned timeout) and when the
	// Manager closes.
	bctx, cancel := context.WithTimeout(m.life, m.cfg.InitialBuildTimeout)
	stop := context.AfterFunc(ctx, cancel)
	a := &attempt{done: make(chan struct{})}
	start := time.Now()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		c, err := m.builder.Build(bctx, path)
		took := time.Since(start)
		a.mu.Lock()
		a.ended, a.c, a.err, a.took = true, c, err, took
		left, measure := a.left, a.measure
		a.mu.Unlock()
		if !left {
			close(a.done) // the caller takes it from here
			return
		}
		defer cancel()
		// Nobody waits for this circuit any more.
		if measure {
			if err == nil {
				m.cbt.completed(took, false)
			}
			m.cbt.done()
		}
		if err != nil {
			m.noteFailure(bctx, path, err, fixedLast)
			return
		}
		c.Close()
	}()

	t := time.NewTimer(timeout)
	defer t.Stop()
	var gaveUp error
	select {
	case <-a.done:
	case <-t.C:
		gaveUp = ErrBuildTimeout
	case <-ctx.Done():
		gaveUp = ctx.Err()
	}
	a.mu.Lock()
	if gaveUp != nil && !a.ended {
		a.left = true
		if gaveUp == ErrBuildTimeout {
			a.measure = m.cbt.expired()
		}
		measure := a.measure
		a.mu.Unlock()
		stop()
		if !measure {
			cancel()
		}
		return nil, gaveUp
	}
	c, err, took := a.c, a.err, a.took
	a.mu.Unlock()
	stop()
	defer cancel()
	if err != nil {
		m.noteFailure(bctx, path, err, fixedLast) // blames no relay if the caller or the Manager gave up
		return nil, err
	}
	m.cbt.completed(took, true)
	return c, nil
}
