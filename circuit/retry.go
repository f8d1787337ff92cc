package circuit

import (
	"context"
	"errors"
	"net"
	"slices"

	"github.com/darkmatter/darkmatter/circuit/cell"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// errNoConnected means no CONNECTED or END came back for a stream within
// StreamTimeout.
var errNoConnected = errors.New("circuit: no answer to BEGIN in time")

// DialStream opens a stream to target through a circuit for isolation,
// building one if needed (up to Attempts builds, each on a new path).
// When the stream fails before the exit can have acted on it, it is tried
// again on a circuit through another exit, up to StreamAttempts circuits,
// all within ctx (spec/circuits.md §8.3). Errors carry a streamerr reason.
func (m *Manager) DialStream(ctx context.Context, target, isolation string) (net.Conn, error) {
	t, err := cell.SplitTarget(target)
	if err != nil {
		return nil, streamerr.New(streamerr.BadAddress)
	}
	need := needFor(t)
	var (
		avoid         []keys.IdentityPublicKey // exits this stream failed at
		last          error
		builds, tries int
	)
	for builds < m.cfg.Attempts && tries < m.cfg.StreamAttempts {
		c, err := m.circuitFor(ctx, isolation, need, avoid)
		if err != nil {
			last = err
			builds++
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				break
			}
			continue
		}
		st, err := m.openStream(ctx, c, target)
		m.noteUse(ctx, c, err) // path bias (pathbias.go)
		if err == nil {
			if s, ok := st.(*Stream); ok {
				m.measureStream(s, c.Hops())
			}
			return st, nil
		}
		last = err
		tries++
		if ctx.Err() != nil || !retryable(err) {
			break // the exit answered about the target
		}
		if hops := c.Hops(); len(hops) > 0 {
			avoid = append(avoid, hops[len(hops)-1].Identity)
		}
		m.cfg.Logf.Printf("circuit: stream failed before the exit acted, trying another circuit: %v", err)
	}
	if errors.Is(last, ErrDestroyed) || errors.Is(last, errNoPath) || errors.Is(last, ErrBuildTimeout) {
		return nil, &reasonError{streamerr.New(streamerr.NoExit), last}
	}
	if ctx.Err() != nil && !isStreamErr(last) {
		return nil, &reasonError{streamerr.New(streamerr.Timeout), ctx.Err()}
	}
	return nil, last
}

// openStream opens a stream on c, waiting StreamTimeout at most for the
// exit's answer; a circuit that gave none takes no further streams.
func (m *Manager) openStream(ctx context.Context, c Circuit, target string) (net.Conn, error) {
	sctx, cancel := context.WithTimeout(ctx, m.cfg.StreamTimeout)
	defer cancel()
	st, err := c.OpenStream(sctx, target)
	if err == nil {
		return st, nil
	}
	if sctx.Err() != nil && ctx.Err() == nil {
		m.retire(c)
		return nil, &reasonError{streamerr.New(streamerr.Timeout), errNoConnected}
	}
	return nil, err
}

// retire stops c from taking new streams; it closes once its streams end.
func (m *Manager) retire(c Circuit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.eachLocked(func(e *entry) {
		if e.c == c {
			e.retired = true
		}
	})
	m.sweepLaterLocked()
}

// retryable reports whether a stream that failed with err may be tried
// again on another circuit: the failure came before the exit could have
// acted on the request. The circuit died (ErrDestroyed, or an END saying
// so), the exit refused by its policy or for want of resources, the last
// hop serves no exit streams, or no answer came in time (BEGIN carries no
// data, so nothing of the stream reached the target). An answer about the
// target (refused, unreachable, not resolved, the exit's own connect
// timeout) or an unknown failure is not retried: another exit would most
// likely say the same, and the attempt would tell one more exit where the
// stream goes.
func retryable(err error) bool {
	if errors.Is(err, ErrDestroyed) || errors.Is(err, errNoConnected) {
		return true
	}
	if !isStreamErr(err) {
		return false
	}
	switch streamerr.ReasonOf(err) {
	case streamerr.ExitPolicy, streamerr.ResourceLimit, streamerr.Destroyed, streamerr.NoExit:
		return true
	}
	return false
}

// avoids reports whether e's exit is in avoid.
func avoids(avoid []keys.IdentityPublicKey, e *entry) bool {
	return len(avoid) > 0 && slices.Contains(avoid, e.exitID())
}

// avoidTries bounds the paths drawn in search of an exit not to avoid.
const avoidTries = 8

// pathAvoiding chooses a path for need whose exit is not in avoid, if one
// of avoidTries paths has such an exit; else the last path drawn (when
// every allowed exit failed the stream, one of them is tried again).
func (m *Manager) pathAvoiding(need exitNeed, avoid []keys.IdentityPublicKey) ([]Hop, *exitpolicy.Policy, error) {
	var (
		path []Hop
		exit *exitpolicy.Policy
		err  error
	)
	for range avoidTries {
		path, exit, err = m.choosePath(need, avoid...)
		if err != nil || len(avoid) == 0 || !slices.Contains(avoid, path[len(path)-1].Identity) {
			break
		}
	}
	return path, exit, err
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
