package circuit

import (
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"
)

// BuildTo ends the circuit at the chosen relay, a guard first and a
// weighted middle before it, never a relay in its /16 (here one weighted
// to be drawn almost always) nor the chosen relay earlier, even though it
// is listed and weighted heavily; the circuit is the caller's, not the
// pool's, and carries an introduction point's commands.
func TestBuildToChosenLastHop(t *testing.T) {
	in := newIntroNet(t, nil)
	n := in.n
	var relays []RelayInfo
	add := func(fn *fakeNode, bw uint32) {
		relays = append(relays, RelayInfo{Hop: fn.hop(), Bandwidth: bw, Reliable: true,
			FirstSeen: time.Now().Add(-30 * 24 * time.Hour)})
	}
	for i := range 5 {
		fn := n.addNode(t, "relay"+string(rune('a'+i))+":1", nil)
		fn.protocols = fullProtocols
		add(fn, 1000)
	}
	twin := n.addNode(t, "twin:1", nil)
	n.mu.Lock()
	delete(n.byAddr, twin.addr)
	twin.addr = strings.Replace(in.ip.addr, ".0.1:", ".0.2:", 1)
	n.byAddr[twin.addr] = twin
	n.mu.Unlock()
	if !sameSubnet(twin.addr, in.ip.addr) {
		t.Fatal("the twin is not in the intro point's /16")
	}
	add(twin, 50000)
	add(in.ip, 50000)
	m, err := NewManager(ManagerConfig{Switch: in.cli.sw, Relays: func() []RelayInfo { return slices.Clone(relays) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	isPrimary := func(h Hop) bool {
		for _, g := range m.Guards() {
			if g.Identity == h.Identity {
				return g.Primary
			}
		}
		return false
	}
	unlisted := n.addNode(t, "unlisted:1", nil)
	for i := range 24 {
		last := in.ip.hop()
		if i%8 == 7 {
			last = unlisted.hop()
		}
		cc, err := m.BuildTo(ctxT(t), last)
		if err != nil {
			t.Fatal(err)
		}
		p := cc.Hops()
		if len(p) != 3 || p[2].Identity != last.Identity {
			t.Fatalf("path of %d hops not ending at the chosen relay", len(p))
		}
		if !isPrimary(p[0]) {
			t.Fatal("the first hop is not a primary guard")
		}
		for j, h := range p {
			if h.Identity == twin.keys.Identity.Public() && last.Identity == in.ip.keys.Identity.Public() {
				t.Fatalf("hop %d is in the last hop's /16", j+1)
			}
			if j < 2 && h.Identity == last.Identity {
				t.Fatalf("the chosen relay is also hop %d", j+1)
			}
		}
		if m.Circuits() != 0 {
			t.Fatal("a BuildTo circuit went into the Manager's pool")
		}
		cc.Close()
	}

	// A service's intro circuit and a client's circuit, both by BuildTo.
	svc, err := m.BuildTo(ctxT(t), in.ip.hop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	auth := newAuthKey(t)
	got := make(chan string, 1)
	if err := svc.EstablishIntro(ctxT(t), auth, "test", in.ip.keys.NodeID(), 0, 0, func(b []byte) { got <- string(b[32:]) }); err != nil {
		t.Fatal(err)
	}
	cli, err := m.BuildTo(ctxT(t), in.ip.hop())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var key [32]byte
	copy(key[:], auth.Public().(ed25519.PublicKey))
	if st, err := cli.Introduce(ctxT(t), key, []byte("hello")); err != nil || st != IntroStatusPassed {
		t.Fatalf("introduce: %d %v", st, err)
	}
	if b := <-got; b != "hello" {
		t.Fatalf("INTRODUCE2 %q", b)
	}
}

// A chosen last hop that is down costs at most two paths, not Attempts, and its
// failures do not count against the guard's path bias: a dead relay named
// by a descriptor says nothing about the guard (a client whose introduction
// points died must not disable its own guards).
func TestBuildToDeadLastHop(t *testing.T) {
	relays := guardRelays(6, 2)
	b := newFakeBuilder()
	m := newFakeManager(t, b, relays, ManagerConfig{Attempts: 5})
	dead := relays[7].Hop
	b.mu.Lock()
	b.fail[dead.Identity] = true
	b.mu.Unlock()
	before := len(b.paths)
	for range 30 {
		if _, err := m.BuildTo(ctxT(t), dead); err == nil {
			t.Fatal("BuildTo to a dead relay succeeded")
		}
	}
	// Each call stops after lastHopTries failures at the dead hop, and
	// once distinct predecessors accused it the relay is backed off and
	// calls fail without building at all.
	b.mu.Lock()
	got := len(b.paths) - before
	b.mu.Unlock()
	if got > 30*lastHopTries || got < lastHopTries {
		t.Fatalf("%d builds for 30 BuildTo calls, want %d..%d", got, lastHopTries, 30*lastHopTries)
	}
	for _, g := range m.Guards() {
		if g.Primary && (g.Circuits != 0 || g.Disabled) {
			t.Fatalf("a dead chosen last hop counted against guard path bias: %+v", g)
		}
	}
}

// When the chosen last hop is the only usable primary guard, the circuit
// starts at the next usable guard instead of failing for want of a path.
func TestBuildToLastIsOnlyGuard(t *testing.T) {
	relays := guardRelays(8, 2)
	b := newFakeBuilder()
	m := newFakeManager(t, b, relays, ManagerConfig{})
	prim := m.PrimaryGuards()
	if len(prim) < 2 {
		t.Fatalf("%d primary guards", len(prim))
	}
	// Every other sampled guard failed for good (a small network that
	// lost relays): prim[0] is the only usable guard left.
	last := prim[0]
	now := time.Now()
	for _, g := range m.Guards() {
		if g.Identity == last.Identity {
			continue
		}
		m.mu.Lock()
		for i := range 3 {
			m.path.guards.failed(g.Identity, now.Add(time.Duration(i)*6*time.Minute))
		}
		m.mu.Unlock()
	}
	for _, g := range m.Guards() {
		if g.Usable != (g.Identity == last.Identity) {
			t.Fatalf("guard usable=%v", g.Usable)
		}
	}
	for range 20 {
		path, err := m.choosePathTo(last, 3)
		if err != nil {
			t.Fatal(err)
		}
		if path[0].Identity == last.Identity || path[len(path)-1].Identity != last.Identity {
			t.Fatal("the chosen last hop is also the first")
		}
	}
}
