package circuit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

func exitOfCirc(c *fakeCircuit) Hop { return c.hops[len(c.hops)-1] }

// A stream whose first attempt fails before the exit can have acted on it
// is opened on a second circuit through another exit; one that the exit
// answered about the target is not retried.
func TestManagerStreamRetry(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"circuit destroyed", fmt.Errorf("fake: %w", &DestroyedError{Reason: 1}), true},
		{"exit policy", streamerr.New(streamerr.ExitPolicy), true},
		{"resource limit", streamerr.New(streamerr.ResourceLimit), true},
		{"END destroyed", streamerr.New(streamerr.Destroyed), true},
		{"not an exit", fmt.Errorf("%w: the last hop is not an exit", streamerr.New(streamerr.NoExit)), true},
		{"connection refused", streamerr.New(streamerr.ConnRefused), false},
		{"unreachable", streamerr.New(streamerr.Unreachable), false},
		{"not resolved", streamerr.New(streamerr.ResolveFailed), false},
		{"exit's connect timeout", streamerr.New(streamerr.Timeout), false},
		{"unknown", streamerr.New(streamerr.Misc), false},
		{"no reason", errors.New("fake: something"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newHookBuilder()
				b.open = func(_ context.Context, _ *fakeCircuit, n int) error {
					if n == 1 {
						return c.err
					}
					return nil
				}
				m := newHookManager(t, b, fakeRelays(4, 3), ManagerConfig{})
				st, err := m.DialStream(t.Context(), "example.com:80", "k")
				opens := b.openedOn()
				if !c.retry {
					if err == nil || len(opens) != 1 {
						t.Fatalf("%d attempts, error %v; want one attempt and its error", len(opens), err)
					}
					if streamerr.ReasonOf(err) != streamerr.ReasonOf(c.err) {
						t.Fatalf("reason %v, want the exit's %v", streamerr.ReasonOf(err), streamerr.ReasonOf(c.err))
					}
					return
				}
				if err != nil {
					t.Fatalf("retryable failure: %v", err)
				}
				defer st.Close()
				if len(opens) != 2 || circuitOf(t, st) != opens[1] {
					t.Fatalf("%d attempts; want the stream on the second", len(opens))
				}
				if exitOfCirc(opens[0]).Identity == exitOfCirc(opens[1]).Identity {
					t.Fatal("the retry went through the exit that failed")
				}
				// The key keeps using a circuit that works for it.
				if got := circuitOf(t, dial(t, m, "example.com:80", "k")); got != opens[0] && got != opens[1] {
					t.Fatal("a further stream of the key built a third circuit")
				}
			})
		})
	}
}

// Retries are bounded by StreamAttempts, and by the caller's context.
func TestManagerStreamRetryBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newHookBuilder()
		b.open = func(context.Context, *fakeCircuit, int) error { return streamerr.New(streamerr.ExitPolicy) }
		m := newHookManager(t, b, fakeRelays(4, 3), ManagerConfig{})
		_, err := m.DialStream(t.Context(), "example.com:80", "k")
		if n := len(b.openedOn()); n != 3 || streamerr.ReasonOf(err) != streamerr.ExitPolicy {
			t.Fatalf("every exit refuses: %d attempts, %v; want 3 and ExitPolicy", n, err)
		}

		ctx, cancel := context.WithCancel(t.Context())
		before := len(b.openedOn())
		b.open = func(context.Context, *fakeCircuit, int) error {
			cancel()
			return streamerr.New(streamerr.ResourceLimit)
		}
		_, err = m.DialStream(ctx, "example.com:80", "j")
		if n := len(b.openedOn()) - before; n != 1 || err == nil {
			t.Fatalf("caller gone after the first attempt: %d attempts, %v; want 1 and an error", n, err)
		}
	})
}

// A BEGIN with no answer within StreamTimeout is retried on another
// circuit, and the silent circuit takes no further streams.
func TestManagerStreamTimeoutRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newHookBuilder()
		b.open = func(ctx context.Context, _ *fakeCircuit, n int) error {
			if n == 1 {
				<-ctx.Done() // the exit never answers
				return ctx.Err()
			}
			return nil
		}
		m := newHookManager(t, b, fakeRelays(4, 3), ManagerConfig{StreamTimeout: 5 * time.Second})
		start := time.Now()
		st := dial(t, m, "example.com:80", "k")
		if took := time.Since(start); took != 5*time.Second {
			t.Fatalf("took %v, want StreamTimeout (5s) and an immediate retry", took)
		}
		opens := b.openedOn()
		if len(opens) != 2 || circuitOf(t, st) != opens[1] {
			t.Fatalf("%d attempts, want the stream on the second", len(opens))
		}
		for range 3 {
			if circuitOf(t, dial(t, m, "example.org:80", "k")) == opens[0] {
				t.Fatal("the circuit that never answered took another stream")
			}
		}
		time.Sleep(m.sweepEvery)
		synctest.Wait()
		if !opens[0].closed() {
			t.Fatal("the silent circuit, with no streams, was not closed")
		}
	})
}

// A failed build is retried on a new path, up to Attempts builds.
func TestManagerBuildRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newHookBuilder()
		relays := fakeRelays(6, 3)
		for _, r := range relays {
			b.setFail(r, true)
		}
		m := newHookManager(t, b, relays, ManagerConfig{Attempts: 4})
		if _, err := m.DialStream(t.Context(), "example.com:80", "k"); err == nil {
			t.Fatal("a stream through failing relays succeeded")
		}
		if n := b.builds(); n != 4 {
			t.Fatalf("%d builds, want Attempts (4)", n)
		}
	})
}
