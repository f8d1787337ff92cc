package circuit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// recordLog collects log lines.
type recordLog struct {
	mu    sync.Mutex
	lines []string
}

func (r *recordLog) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recordLog) count(sub string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// A failure reported at hop i ≥ 1 backs off the link from hop i-1 only:
// the guard keeps its place and no failure, and hop i is left out of paths
// only once a second, different predecessor reports it.
func TestExtendFailureBlamesLinkNotHop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		relays[6].Reliable, relays[7].Reliable = false, false // no guards: both exits end paths
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		m.SetGuard(relays[0].Hop)
		var k keyer
		dial(t, m, "example.com:80", k.next())
		g := *m.Guard()
		// Middles that are no primary guard: those are never later hops.
		prim := m.PrimaryGuards()
		var mids []RelayInfo
		for _, r := range relays[:6] {
			if !slices.ContainsFunc(prim, func(h Hop) bool { return h.Identity == r.Hop.Identity }) {
				mids = append(mids, r)
			}
		}
		exit := relays[7]
		ctx := context.Background()
		path := []Hop{g, mids[0].Hop, exit.Hop}
		m.noteFailure(ctx, path, &BuildError{Hop: 2, Err: errFakeRefused}, false)

		gi := guardInfo(t, m, g.Identity)
		if gi.Failures != 0 || !gi.Reachable || m.Guard().Identity != g.Identity {
			t.Fatalf("a failure at hop 2 touched the guard: %+v", gi)
		}
		if gi.Circuits != 2 || gi.Built != 1 {
			t.Fatalf("path bias of the guard: %d of %d built, want 1 of 2", gi.Built, gi.Circuits)
		}
		m.mu.Lock()
		_, exitBlamed := m.path.failed[exit.Hop.Identity]
		_, midBlamed := m.path.failed[mids[0].Hop.Identity]
		link := m.path.links[linkKey{mids[0].Hop.Identity, exit.Hop.Identity}]
		m.mu.Unlock()
		if exitBlamed || midBlamed {
			t.Fatal("one report backed off a relay")
		}
		if link == nil || link.n != 1 {
			t.Fatal("the failed link was not backed off")
		}
		// Paths avoid that link but still use the exit and the middle.
		sawExit, sawMid := false, false
		for range 200 {
			p, _, err := m.choosePath(exitNeed{any: true})
			if err != nil {
				t.Fatal(err)
			}
			if p[1].Identity == mids[0].Hop.Identity && p[2].Identity == exit.Hop.Identity {
				t.Fatal("a path used the backed-off link")
			}
			sawExit = sawExit || p[2].Identity == exit.Hop.Identity
			sawMid = sawMid || p[1].Identity == mids[0].Hop.Identity
		}
		if !sawExit || !sawMid {
			t.Fatal("the relays of a failed link were left out of paths")
		}

		// The same predecessor again: still only the link.
		m.noteFailure(ctx, path, &BuildError{Hop: 2, Err: errFakeRefused}, false)
		if st := m.PathStats(); st.RelaysBlamed != 0 || st.ExtendFailures != 2 || st.GuardFailures != 0 {
			t.Fatalf("stats %+v, want 2 extend failures and nobody blamed", st)
		}
		// A second predecessor: the exit is backed off.
		m.noteFailure(ctx, []Hop{g, mids[1].Hop, exit.Hop}, &BuildError{Hop: 2, Err: errFakeRefused}, false)
		if st := m.PathStats(); st.RelaysBlamed != 1 {
			t.Fatalf("RelaysBlamed = %d after two predecessors, want 1", st.RelaysBlamed)
		}
		for range 100 {
			p, _, err := m.choosePath(exitNeed{any: true})
			if err != nil {
				t.Fatal(err)
			}
			if hasRelay(p, exit) {
				t.Fatal("a relay reported by two predecessors was chosen while backed off")
			}
		}
		// A caller giving up blames nobody.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		m.noteFailure(cctx, path, &BuildError{Hop: 0, Err: context.Canceled}, false)
		if gi := guardInfo(t, m, g.Identity); gi.Failures != 0 {
			t.Fatal("a cancelled build counted against the guard")
		}
	})
}

// biasBuilder fails a build past its guard (at hop 1) for failOf out of
// every 10 builds through guard bad.
type biasBuilder struct {
	*fakeBuilder
	bad    Hop
	failOf int
	n      int
}

func (b *biasBuilder) Build(ctx context.Context, path []Hop) (Circuit, error) {
	if path[0].Identity == b.bad.Identity {
		b.n++
		if b.n%10 < b.failOf {
			b.fakeBuilder.Build(ctx, path) // recorded
			return nil, &BuildError{Hop: 1, Err: errFakeRefused}
		}
	}
	return b.fakeBuilder.Build(ctx, path)
}

// A guard through which most circuits fail after the first hop is warned
// about below 70% and disabled below 50%; circuits then go through the
// next primary guard.
func TestPathBiasDisablesGuard(t *testing.T) {
	for _, tc := range []struct {
		failOf         int
		warn, disabled bool
	}{
		{failOf: 1},                             // 90%: fine
		{failOf: 4, warn: true},                 // 60%: a warning
		{failOf: 6, warn: true, disabled: true}, // 40%: disabled (and logged)
	} {
		t.Run(fmt.Sprint(tc.failOf), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				relays := guardRelays(20, 20)
				fb := newFakeBuilder()
				var log recordLog
				bb := &biasBuilder{fakeBuilder: fb, failOf: tc.failOf}
				m, err := NewManager(ManagerConfig{Builder: bb, Relays: func() []RelayInfo { return relays }, Logf: log.logf, Attempts: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.Preempt(t.Context())
				g := *m.Guard()
				bb.bad = g
				for i := range 60 {
					c, err := m.DialStream(t.Context(), "example.com:80", fmt.Sprint(i))
					if err == nil {
						c.Close()
					}
					time.Sleep(maxDownTime) // links backed off are forgiven
				}
				st := m.PathStats()
				gi := guardInfo(t, m, g.Identity)
				if !tc.disabled && (st.PathBiasWarnings > 0) != tc.warn || (log.count("path bias") > 0) != tc.warn {
					t.Fatalf("warnings %d (%d logged), want %v; guard %+v", st.PathBiasWarnings, log.count("path bias"), tc.warn, gi)
				}
				if gi.Disabled != tc.disabled || (st.PathBiasDisabled == 1) != tc.disabled {
					t.Fatalf("disabled %v (stat %d), want %v; guard %+v", gi.Disabled, st.PathBiasDisabled, tc.disabled, gi)
				}
				if gi.Circuits < biasMinAttempts {
					t.Fatalf("only %d circuits counted", gi.Circuits)
				}
				if tc.disabled {
					if cur := m.Guard(); cur == nil || cur.Identity == g.Identity {
						t.Fatal("circuits still go through a disabled guard")
					}
					if primaryIDs(m)[0] == g.Identity {
						t.Fatal("a disabled guard is still primary")
					}
				} else if m.Guard().Identity != g.Identity {
					t.Fatal("the guard changed")
				}
			})
		})
	}
}

// Streams that die with their circuit count against the guard; streams
// the exit answers, even with an error, count for it.
func TestPathBiasCountsStreams(t *testing.T) {
	var b pathBias
	for range 10 {
		b.noteStream(true)
	}
	for range 9 {
		b.noteStream(false)
	}
	if b.verdict() != biasOK {
		t.Fatal("judged before biasMinAttempts streams")
	}
	b.noteStream(false) // 10 of 20
	if v := b.verdict(); v != biasWarn {
		t.Fatalf("50%% answered: verdict %v, want a warning", v)
	}
	b.noteStream(false)
	if v := b.verdict(); v != biasDisable {
		t.Fatalf("10 of 21 answered: verdict %v, want disable", v)
	}
	// Old observations fade.
	var s pathBias
	for range biasScaleAt {
		s.noteCircuit(true)
	}
	s.noteCircuit(false)
	if s.Circuits != (biasScaleAt+1)/2 || s.Built != biasScaleAt/2 {
		t.Fatalf("after %d circuits: %d/%d, want halved", biasScaleAt+1, s.Built, s.Circuits)
	}

	// Through the Manager: which errors count.
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(4, 2)
		m := newFakeManager(t, newFakeBuilder(), relays, ManagerConfig{})
		m.Preempt(t.Context())
		g := *m.Guard()
		c := &fakeCircuit{hops: []Hop{g, relays[4].Hop}, done: make(chan struct{})}
		ctx := context.Background()
		m.noteUse(ctx, c, nil)
		m.noteUse(ctx, c, streamerr.New(streamerr.ConnRefused))
		m.noteUse(ctx, c, fmt.Errorf("x: %w", ErrDestroyed))
		m.noteUse(ctx, c, context.DeadlineExceeded) // neither
		if gi := guardInfo(t, m, g.Identity); gi.Streams != 3 || gi.Answered != 2 {
			t.Fatalf("streams %d answered %d, want 3 and 2", gi.Streams, gi.Answered)
		}
	})
}
