package circuit

import (
	"cmp"
	"slices"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Guards (spec/guards.md). A client keeps a sample of relays as possible
// first hops, chosen once, by bandwidth, among relays old and reliable
// enough; its circuits go through the first reachable of its primary
// guards. A guard leaves the sample only after weeks unlisted or days of
// failure, never because one build failed.
const (
	// DefaultGuardSample is how many relays the guard sample holds.
	DefaultGuardSample = 20
	// DefaultPrimaryGuards is how many guards are primary.
	DefaultPrimaryGuards = 3
	// DefaultMinGuardAge is how long a relay must have been known before
	// it can be sampled as a guard.
	DefaultMinGuardAge = 7 * 24 * time.Hour

	// guardFailures consecutive failures at a guard, spread over at least
	// guardFailWindow, make it unreachable.
	guardFailures   = 3
	guardFailWindow = 10 * time.Minute
	// A guard unlisted for guardRemoveUnlisted, or unreachable and failing
	// for guardRemoveFailing, leaves the sample.
	guardRemoveUnlisted = 30 * 24 * time.Hour
	guardRemoveFailing  = 7 * 24 * time.Hour
)

// GuardParams tunes the guard sample. Zero fields take the defaults.
type GuardParams struct {
	// SampleSize bounds the sample (default DefaultGuardSample).
	SampleSize int
	// Primary is how many guards are primary (default
	// DefaultPrimaryGuards).
	Primary int
	// MinAge is how long a relay must have been known (RelayInfo.FirstSeen)
	// before it is sampled: 0 means DefaultMinGuardAge, a negative value
	// no minimum (a test network).
	MinAge time.Duration
}

func (p *GuardParams) setDefaults() {
	if p.SampleSize <= 0 {
		p.SampleSize = DefaultGuardSample
	}
	if p.Primary <= 0 {
		p.Primary = DefaultPrimaryGuards
	}
	p.Primary = min(p.Primary, p.SampleSize)
	if p.MinAge == 0 {
		p.MinAge = DefaultMinGuardAge
	}
}

// guard is one relay of the sample.
type guard struct {
	id          keys.IdentityPublicKey
	added       time.Time
	sampleIdx   int64     // order of sampling
	confirmed   time.Time // first circuit built through it; zero if none yet
	confirmIdx  int64     // order of confirmation (SetGuard uses negative ones)
	provisional bool      // sampled though not eligible: too few relays were
	pinned      bool      // set by SetGuard

	unlistedSince time.Time // zero while listed
	failures      int       // consecutive failures at it (hop 0)
	failingSince  time.Time // first of those failures
	retryAt       time.Time // not tried before then
	unreachable   bool      // failures sustained: out of the primary guards
	disabled      bool      // by path bias (pathbias.go)
	bias          pathBias

	// From the latest relay list; not saved.
	listed bool
	info   RelayInfo
}

// usable reports whether circuits may go through g now.
func (g *guard) usable(now time.Time) bool {
	return g.candidate(now) && !now.Before(g.retryAt)
}

// candidate reports whether g may be primary: listed, not disabled, and
// either reachable or due for a retry.
func (g *guard) candidate(now time.Time) bool {
	return g.listed && !g.disabled && (!g.unreachable || !now.Before(g.retryAt))
}

// guardSet is the guard sample and its state. It is not safe for
// concurrent use: the Manager guards it with its mutex.
type guardSet struct {
	p           GuardParams
	guards      []*guard // in sample order
	nextSample  int64
	nextConfirm int64
	firstPin    int64 // the next SetGuard's confirmIdx (decreasing)

	// changed is set when state worth saving changed; structural when the
	// sample, the primary guards or a guard's reachability changed (saved
	// at once; counters alone are saved now and then).
	changed, structural bool
}

func newGuardSet(p GuardParams) *guardSet {
	p.setDefaults()
	return &guardSet{p: p, firstPin: -1}
}

func (s *guardSet) find(id keys.IdentityPublicKey) *guard {
	for _, g := range s.guards {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (s *guardSet) touch(structural bool) {
	s.changed = true
	s.structural = s.structural || structural
}

// ordered returns the guards in order of preference: pinned and
// confirmed guards by confirmation, then the others by sampling, then
// the provisional ones.
func (s *guardSet) ordered() []*guard {
	out := slices.Clone(s.guards)
	slices.SortStableFunc(out, func(a, b *guard) int {
		if a.provisional != b.provisional {
			if a.provisional {
				return 1
			}
			return -1
		}
		ac, bc := !a.confirmed.IsZero(), !b.confirmed.IsZero()
		switch {
		case ac && bc:
			return cmp.Compare(a.confirmIdx, b.confirmIdx)
		case ac:
			return -1
		case bc:
			return 1
		}
		return cmp.Compare(a.sampleIdx, b.sampleIdx)
	})
	return out
}

// primaries returns the primary guards: the first Primary candidates in
// order of preference.
func (s *guardSet) primaries(now time.Time) []*guard {
	var out []*guard
	for _, g := range s.ordered() {
		if len(out) == s.p.Primary {
			break
		}
		if g.candidate(now) {
			out = append(out, g)
		}
	}
	return out
}

// choices returns the guards a circuit may start at now, best first: the
// usable primary guards; if none is, the other usable guards (as Tor
// does). If no guard is usable, every listed guard not disabled is made
// due for a retry (the network may have been down; Tor does the same when
// its guards are exhausted) and they are returned in order.
func (s *guardSet) choices(now time.Time) []*guard { return s.choicesWithout(now, nil) }

// choicesWithout is choices without the relay skip (a circuit's chosen
// last hop, which cannot also be its first): when skip is the only usable
// primary guard, the next usable guards in order are the choices.
func (s *guardSet) choicesWithout(now time.Time, skip *keys.IdentityPublicKey) []*guard {
	var out []*guard
	other := func(g *guard) bool { return skip == nil || g.id != *skip }
	for _, g := range s.primaries(now) {
		if g.usable(now) && other(g) {
			out = append(out, g)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, g := range s.ordered() {
		if g.usable(now) && other(g) {
			out = append(out, g)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, g := range s.ordered() {
		if g.listed && !g.disabled && other(g) {
			g.retryAt = time.Time{}
			out = append(out, g)
		}
	}
	return out
}

// current returns the guard circuits go through now, or nil. It changes
// nothing.
func (s *guardSet) current(now time.Time) *guard {
	for _, g := range s.primaries(now) {
		if g.usable(now) {
			return g
		}
	}
	for _, g := range s.ordered() {
		if g.usable(now) {
			return g
		}
	}
	return nil
}

// eligible reports whether r may be sampled as a (non-provisional) guard.
func (s *guardSet) eligible(r *RelayInfo, now time.Time) bool {
	if !r.Reliable {
		return false
	}
	if s.p.MinAge < 0 {
		return true
	}
	return !r.FirstSeen.IsZero() && now.Sub(r.FirstSeen) >= s.p.MinAge
}

// update brings the sample up to date with the relay list: it marks
// guards listed or not, removes guards gone or failing for too long, and
// samples new ones, weighted by cum (a weights table over relays,
// computed only if a guard is to be drawn).
func (s *guardSet) update(relays []*RelayInfo, cum func() []uint64, now time.Time) (removed int) {
	for _, g := range s.guards {
		g.listed = false
	}
	byID := make(map[keys.IdentityPublicKey]*guard, len(s.guards))
	for _, g := range s.guards {
		byID[g.id] = g
	}
	for _, r := range relays {
		if g := byID[r.Hop.Identity]; g != nil {
			g.listed, g.info = true, *r
		}
	}
	keep := s.guards[:0]
	for _, g := range s.guards {
		switch {
		case g.listed && !g.unlistedSince.IsZero():
			g.unlistedSince = time.Time{}
			s.touch(true)
		case !g.listed && g.unlistedSince.IsZero():
			g.unlistedSince = now
			s.touch(true)
		}
		gone := !g.unlistedSince.IsZero() && now.Sub(g.unlistedSince) >= guardRemoveUnlisted
		failing := g.unreachable && now.Sub(g.failingSince) >= guardRemoveFailing
		if gone || failing {
			removed++
			s.touch(true)
			continue
		}
		keep = append(keep, g)
	}
	clear(s.guards[len(keep):])
	s.guards = keep
	s.sample(relays, cum, now)
	return removed
}

// sample adds eligible relays, by weight, until the sample is full, and
// provisional ones while fewer than Primary guards are candidates; it
// drops the provisional ones once enough eligible guards are candidates.
func (s *guardSet) sample(relays []*RelayInfo, cum func() []uint64, now time.Time) {
	real := 0
	for _, g := range s.guards {
		if !g.provisional {
			real++
		}
	}
	in := func(i int) bool { return s.find(relays[i].Hop.Identity) != nil }
	if real >= s.p.SampleSize && s.candidates() >= s.p.Primary && !s.anyProvisional() {
		return // the common case: nothing to do
	}
	if real < s.p.SampleSize {
		n := s.draw(relays, cum, s.p.SampleSize-real, func(i int) bool {
			return !in(i) && s.eligible(relays[i], now)
		}, now, false)
		real += n
	}
	cands := s.candidates()
	if cands >= s.p.Primary {
		keep := s.guards[:0]
		for _, g := range s.guards {
			if g.provisional && !g.pinned {
				s.touch(true)
				continue
			}
			keep = append(keep, g)
		}
		clear(s.guards[len(keep):])
		s.guards = keep
		return
	}
	prov := 0
	for _, g := range s.guards {
		if g.provisional && g.listed && !g.disabled && !g.unreachable {
			prov++
		}
	}
	room := s.p.SampleSize*2 - len(s.guards) // provisional ones never crowd the sample out
	if want := min(s.p.Primary-cands-prov, room); want > 0 {
		s.draw(relays, cum, want, func(i int) bool { return !in(i) }, now, true)
	}
}

// candidates counts the non-provisional guards that may be primary
// (ignoring retry times).
func (s *guardSet) candidates() int {
	n := 0
	for _, g := range s.guards {
		if !g.provisional && g.listed && !g.disabled && !g.unreachable {
			n++
		}
	}
	return n
}

func (s *guardSet) anyProvisional() bool {
	for _, g := range s.guards {
		if g.provisional && !g.pinned {
			return true
		}
	}
	return false
}

// draw adds up to n relays for which ok holds, by weight, without
// replacement, and returns how many it added.
func (s *guardSet) draw(relays []*RelayInfo, cumFn func() []uint64, n int, ok func(int) bool, now time.Time, provisional bool) int {
	var idx []int
	for i := range relays {
		if ok(i) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	cum := cumFn()
	w := make([]uint64, len(idx))
	for j, i := range idx {
		w[j] = cum[i]
		if i > 0 {
			w[j] -= cum[i-1]
		}
	}
	added := 0
	for added < n && len(idx) > 0 {
		tab := make([]uint64, len(w))
		var sum uint64
		for j, x := range w {
			sum += x
			tab[j] = sum
		}
		j := pickWeighted(tab, nil)
		if j < 0 {
			break
		}
		r := relays[idx[j]]
		s.guards = append(s.guards, &guard{
			id: r.Hop.Identity, added: now, sampleIdx: s.nextSample,
			provisional: provisional, listed: true, info: *r,
		})
		s.nextSample++
		added++
		s.touch(true)
		idx = slices.Delete(idx, j, j+1)
		w = slices.Delete(w, j, j+1)
	}
	return added
}

// pin makes r's relay the first guard (SetGuard): sampled if it was not,
// confirmed ahead of every other guard, its failures forgotten.
func (s *guardSet) pin(r RelayInfo, now time.Time) {
	g := s.find(r.Hop.Identity)
	if g == nil {
		g = &guard{id: r.Hop.Identity, added: now, sampleIdx: s.nextSample}
		s.nextSample++
		s.guards = append(s.guards, g)
	}
	g.pinned, g.provisional = true, false
	g.confirmed, g.confirmIdx = now, s.firstPin
	s.firstPin--
	g.failures, g.failingSince, g.retryAt, g.unreachable, g.disabled = 0, time.Time{}, time.Time{}, false, false
	g.unlistedSince = time.Time{}
	g.listed = true
	if g.info.Hop.Identity != r.Hop.Identity || g.info.Hop.Addr == "" {
		g.info = r
	}
	s.touch(true)
}

// failed records that a build failed at guard id (hop 0). It returns
// whether this made the guard unreachable.
func (s *guardSet) failed(id keys.IdentityPublicKey, now time.Time) bool {
	g := s.find(id)
	if g == nil {
		return false
	}
	if g.failures == 0 {
		g.failingSince = now
	}
	g.failures++
	became := false
	if !g.unreachable && g.failures >= guardFailures && now.Sub(g.failingSince) >= guardFailWindow {
		g.unreachable, became = true, true
	}
	if g.unreachable {
		g.retryAt = now.Add(guardRetry(now.Sub(g.failingSince)))
	} else {
		g.retryAt = now.Add(backoff(g.failures))
	}
	s.touch(became)
	return became
}

// reached records that guard id answered (a build got past hop 0).
func (s *guardSet) reached(id keys.IdentityPublicKey) {
	g := s.find(id)
	if g == nil || (g.failures == 0 && !g.unreachable) {
		return
	}
	g.failures, g.failingSince, g.retryAt = 0, time.Time{}, time.Time{}
	g.unreachable = false
	s.touch(true)
}

// built records a circuit built through guard id: it is confirmed.
func (s *guardSet) built(id keys.IdentityPublicKey, now time.Time) {
	g := s.find(id)
	if g == nil || !g.confirmed.IsZero() {
		return
	}
	g.confirmed, g.confirmIdx = now, s.nextConfirm
	s.nextConfirm++
	s.touch(true)
}

// guardRetry returns how long an unreachable guard waits before the next
// try, after failing for d: Tor's schedule for primary guards.
func guardRetry(d time.Duration) time.Duration {
	switch {
	case d < 6*time.Hour:
		return 10 * time.Minute
	case d < 96*time.Hour:
		return 90 * time.Minute
	case d < 7*24*time.Hour:
		return 4 * time.Hour
	}
	return 9 * time.Hour
}
