package circuit

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// guardRelays returns fakeRelays that qualify as guards: reliable and
// known for a month.
func guardRelays(middles, exits int) []RelayInfo {
	rs := fakeRelays(middles, exits)
	for i := range rs {
		rs[i].Reliable = true
		rs[i].FirstSeen = time.Now().Add(-30 * 24 * time.Hour)
	}
	return rs
}

// relayOf returns the relay of relays with identity id.
func relayOf(t *testing.T, relays []RelayInfo, id keys.IdentityPublicKey) RelayInfo {
	t.Helper()
	for _, r := range relays {
		if r.Hop.Identity == id {
			return r
		}
	}
	t.Fatal("no such relay")
	return RelayInfo{}
}

// guardInfo returns m's GuardInfo for id.
func guardInfo(t *testing.T, m *Manager, id keys.IdentityPublicKey) GuardInfo {
	t.Helper()
	for _, g := range m.Guards() {
		if g.Identity == id {
			return g
		}
	}
	t.Fatal("not in the guard sample")
	return GuardInfo{}
}

// primaryIDs returns the identities of m's primary guards, in order.
func primaryIDs(m *Manager) []keys.IdentityPublicKey {
	var out []keys.IdentityPublicKey
	for _, g := range m.Guards() {
		if g.Primary {
			out = append(out, g.Identity)
		}
	}
	return out
}

// keyer hands out fresh isolation keys, so that each dial builds.
type keyer int

func (k *keyer) next() string { *k++; return string(rune(0x100 + int(*k))) }

// The sample holds up to SampleSize eligible relays; three are primary;
// circuits go through the first, and keep doing so.
func TestGuardSampleAndPrimary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(30, 6)
		young := relays[35]
		young.FirstSeen = time.Now().Add(-time.Hour) // too young to be a guard
		relays[35] = young
		unreliable := relays[34]
		unreliable.Reliable = false
		relays[34] = unreliable
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		var k keyer
		dial(t, m, "example.com:80", k.next())
		gs := m.Guards()
		if len(gs) != DefaultGuardSample {
			t.Fatalf("sample of %d guards, want %d", len(gs), DefaultGuardSample)
		}
		for _, g := range gs {
			if g.Identity == young.Hop.Identity || g.Identity == unreliable.Hop.Identity {
				t.Fatal("a relay too young or unreliable was sampled")
			}
			if g.Provisional {
				t.Fatal("a provisional guard although enough relays qualify")
			}
		}
		prim := primaryIDs(m)
		if len(prim) != DefaultPrimaryGuards {
			t.Fatalf("%d primary guards, want %d", len(prim), DefaultPrimaryGuards)
		}
		g := m.Guard()
		if g == nil || g.Identity != prim[0] {
			t.Fatal("the current guard is not the first primary guard")
		}
		for range 30 {
			dial(t, m, "example.com:80", k.next())
		}
		for _, p := range b.pathsSince(0) {
			if p[0].Identity != prim[0] {
				t.Fatal("a circuit did not start at the first primary guard")
			}
		}
		if !guardInfo(t, m, prim[0]).Confirmed {
			t.Fatal("the guard circuits were built through is not confirmed")
		}
	})
}

// In a young network with no relay old enough, guards are sampled
// provisionally, as many as are primary, and dropped once enough relays
// qualify.
func TestGuardProvisionalInYoungNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := fakeRelays(8, 2) // none reliable, none with an age
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		var k keyer
		dial(t, m, "example.com:80", k.next())
		gs := m.Guards()
		if len(gs) != DefaultPrimaryGuards {
			t.Fatalf("%d guards in a young network, want %d provisional ones", len(gs), DefaultPrimaryGuards)
		}
		for _, g := range gs {
			if !g.Provisional {
				t.Fatal("a guard not marked provisional although no relay qualifies")
			}
		}
		for i := range relays {
			relays[i].Reliable = true
			relays[i].FirstSeen = time.Now()
		}
		time.Sleep(DefaultMinGuardAge)
		dial(t, m, "example.com:80", k.next())
		for _, g := range m.Guards() {
			if g.Provisional {
				t.Fatal("a provisional guard stayed although enough relays qualify")
			}
		}
	})
}

// One failed build at the guard does not change the guard: the next
// primary guard carries circuits while it is held back, and after a minute
// circuits go through it again.
func TestGuardStaysAfterOneFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		relays[6].Reliable, relays[7].Reliable = false, false // guards are middles: exits stay free
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		var k keyer
		dial(t, m, "example.com:80", k.next())
		g1 := *m.Guard()
		prim := primaryIDs(m)

		b.setFail(relayOf(t, relays, g1.Identity), true)
		before := b.builds()
		dial(t, m, "example.com:80", k.next()) // fails once, then the next primary
		b.setFail(relayOf(t, relays, g1.Identity), false)
		paths := b.pathsSince(before)
		if len(paths) < 2 || paths[0][0].Identity != g1.Identity {
			t.Fatalf("%d builds, want the failure at the guard and a retry", len(paths))
		}
		for _, p := range paths[1:] { // (the failing relay may be a later hop too)
			if p[0].Identity != prim[1] {
				t.Fatalf("the retry did not go through the second primary guard: %x not %x (primaries %x, now %x)", p[0].Identity[:2], prim[1][:2], prim, primaryIDs(m))
			}
		}
		if got := primaryIDs(m); !slices.Equal(got, prim) {
			t.Fatal("one failure changed the primary guards")
		}
		gi := guardInfo(t, m, g1.Identity)
		if !gi.Reachable || gi.Failures != 1 || !gi.Primary {
			t.Fatalf("after one failure: %+v, want reachable, primary, one failure", gi)
		}
		time.Sleep(downTime)
		before = b.builds()
		dial(t, m, "example.com:80", k.next())
		if p := b.pathsSince(before)[0]; p[0].Identity != g1.Identity {
			t.Fatal("the guard was not used again once its short back-off ended")
		}
		if g := m.Guard(); g == nil || g.Identity != g1.Identity {
			t.Fatal("the guard changed after one failure")
		}
		if gi := guardInfo(t, m, g1.Identity); gi.Failures != 0 {
			t.Fatal("a build through the guard did not clear its failures")
		}
		if st := m.PathStats(); st.GuardFailures != 1 || st.GuardsUnreachable != 0 {
			t.Fatalf("stats %+v, want one guard failure, no guard unreachable", st)
		}
	})
}

// A guard that keeps failing for more than guardFailWindow is marked
// unreachable and leaves the primary guards; it is tried again on Tor's
// schedule and is first again once it answers. A guard that fails for
// days leaves the sample.
func TestGuardReplacedAfterSustainedFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		relays[6].Reliable, relays[7].Reliable = false, false // exits are no guards: both stay free to end paths
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		var k keyer
		dial(t, m, "example.com:80", k.next())
		g1 := *m.Guard()
		bad := relayOf(t, relays, g1.Identity)
		b.setFail(bad, true)

		// Three quick failures are not enough: they span minutes only.
		start := time.Now()
		for range 3 {
			dial(t, m, "example.com:80", k.next())
			time.Sleep(backoff(guardInfo(t, m, g1.Identity).Failures))
		}
		if gi := guardInfo(t, m, g1.Identity); !gi.Reachable || !gi.Primary {
			t.Fatalf("after 3 failures in %v: %+v, want still reachable and primary", time.Since(start), gi)
		}
		for time.Since(start) < guardFailWindow {
			dial(t, m, "example.com:80", k.next())
			time.Sleep(backoff(guardInfo(t, m, g1.Identity).Failures))
		}
		dial(t, m, "example.com:80", k.next())
		gi := guardInfo(t, m, g1.Identity)
		if gi.Reachable || gi.Primary {
			t.Fatalf("after failing for %v: %+v, want unreachable and not primary", time.Since(start), gi)
		}
		if prim := primaryIDs(m); len(prim) != DefaultPrimaryGuards || slices.Contains(prim, g1.Identity) {
			t.Fatal("the primary guards were not refilled")
		}
		if st := m.PathStats(); st.GuardsUnreachable != 1 {
			t.Fatalf("GuardsUnreachable = %d, want 1", st.GuardsUnreachable)
		}

		// It comes back: tried after its retry delay, first again.
		b.setFail(bad, false)
		time.Sleep(guardRetry(0))
		before := b.builds()
		dial(t, m, "example.com:80", k.next())
		if p := b.pathsSince(before)[0]; p[0].Identity != g1.Identity {
			t.Fatal("the recovered guard was not retried first")
		}
		if gi := guardInfo(t, m, g1.Identity); !gi.Reachable || !gi.Primary {
			t.Fatal("the recovered guard is not primary again")
		}

		// Failing for a week removes it from the sample. In this small
		// network it is sampled again at once, as a new guard at the end.
		b.setFail(bad, true)
		for end := time.Now().Add(guardRemoveFailing + 10*time.Hour); time.Now().Before(end); {
			dial(t, m, "example.com:80", k.next())
			time.Sleep(time.Hour)
		}
		if st := m.PathStats(); st.GuardsRemoved != 1 {
			t.Fatalf("GuardsRemoved = %d, want 1", st.GuardsRemoved)
		}
		gs := m.Guards()
		if i := slices.IndexFunc(gs, func(g GuardInfo) bool { return g.Identity == g1.Identity }); i >= 0 && (gs[i].Confirmed || gs[i].Primary) {
			t.Fatalf("a guard failing for more than a week kept its place: %+v", gs[i])
		}
	})
}

// A guard no longer listed is kept, unusable, for 30 days, then removed.
func TestGuardUnlistedRemovedAfter30Days(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		listed := slices.Clone(relays)
		b := newFakeBuilder()
		m, err := NewManager(ManagerConfig{Builder: b, Relays: func() []RelayInfo { return slices.Clone(listed) }})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var k keyer
		dial(t, m, "example.com:80", k.next())
		g1 := *m.Guard()
		listed = slices.DeleteFunc(listed, func(r RelayInfo) bool { return r.Hop.Identity == g1.Identity })
		dial(t, m, "example.com:80", k.next())
		if gi := guardInfo(t, m, g1.Identity); gi.Listed || gi.Usable || gi.Primary {
			t.Fatalf("unlisted guard: %+v", gi)
		}
		time.Sleep(guardRemoveUnlisted - time.Hour)
		dial(t, m, "example.com:80", k.next())
		guardInfo(t, m, g1.Identity) // still sampled
		time.Sleep(time.Hour)
		dial(t, m, "example.com:80", k.next())
		for _, g := range m.Guards() {
			if g.Identity == g1.Identity {
				t.Fatal("a guard unlisted for 30 days is still sampled")
			}
		}
	})
}

// SetGuard pins a relay as the first guard, ahead of the sample.
func TestSetGuardPins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		relays := guardRelays(6, 2)
		b := newFakeBuilder()
		m := newFakeManager(t, b, relays, ManagerConfig{})
		var k keyer
		dial(t, m, "example.com:80", k.next())
		var other RelayInfo
		for _, r := range relays {
			if r.Hop.Identity != m.Guard().Identity && r.Policy == nil {
				other = r
			}
		}
		m.SetGuard(other.Hop)
		if g := m.Guard(); g == nil || g.Identity != other.Hop.Identity {
			t.Fatal("SetGuard did not make the relay the current guard")
		}
		before := b.builds()
		for range 5 {
			dial(t, m, "example.com:80", k.next())
		}
		for _, p := range b.pathsSince(before) {
			if p[0].Identity != other.Hop.Identity {
				t.Fatal("a circuit did not go through the pinned guard")
			}
		}
	})
}
