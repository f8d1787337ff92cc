package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/circuit/exitpolicy"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/descriptor"
	"github.com/darkmatter/darkmatter/overlay/transport"
	"github.com/darkmatter/darkmatter/overlay/transport/memnet"
)

// rotationNet is a memnet network of relays (relay 0 the bootstrap of
// the others) and a client bootstrapped from relay 0. It must be made in a
// synctest bubble.
type rotationNet struct {
	mem    *memnet.Network
	relays []*Node
	client *Node
}

func newRotationNet(t *testing.T, nRelays int, tune func(i int, c *Config)) *rotationNet {
	t.Helper()
	rn := &rotationNet{mem: &memnet.Network{}}
	var boot []descriptor.Bootstrap
	for i := range nRelays {
		ip := fmt.Sprintf("10.%d.0.1", i+1)
		cfg := Config{Network: "test-rotation", AllowPrivateAddrs: true, DirRefresh: time.Hour,
			Transports: transport.Registry{memnet.Scheme: rn.mem.Host(ip)},
			Listen:     []string{memnet.Scheme + "://" + ip + ":7000"},
			Exit:       &circuit.ExitConfig{Policy: exitpolicy.AcceptAll()}}
		if len(boot) > 0 {
			cfg.Bootstrap = boot[:1]
		}
		if tune != nil {
			tune(i, &cfg)
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rn.relays = append(rn.relays, n)
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		boot = append(boot, n.Bootstrap())
		// Relay 0 takes this relay's HELLO before the next one fetches
		// its directory.
		synctest.Wait()
	}
	c, err := New(Config{Network: "test-rotation", Bootstrap: boot[:1], DirRefresh: time.Hour,
		Transports: transport.Registry{memnet.Scheme: rn.mem.Host("10.200.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	rn.client = c
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rn
}

func (rn *rotationNet) close() {
	rn.client.Close()
	for _, r := range rn.relays {
		r.Close()
	}
}

// buildThrough builds a circuit from the client whose first hop is first
// and whose other hops are relays 2 and 3 as the client's directory has
// them, and closes it.
func (rn *rotationNet) buildThrough(first circuit.Hop) error {
	path := []circuit.Hop{first}
	for _, r := range rn.relays[2:4] {
		d := rn.client.dir.Get(r.NodeID())
		if d == nil {
			return fmt.Errorf("client lost relay %v", r.NodeID())
		}
		h, _ := rn.client.hopOf(d)
		path = append(path, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, err := rn.client.sw.BuildCircuit(ctx, path)
	if err != nil {
		return err
	}
	cc.Close()
	return nil
}

// A relay that runs 30 simulated days stays in the directories of the
// other relays and of a client (it republishes hourly, and every node's
// directory drops a descriptor 24 h after its publication), rotates its
// onion keys every 7 days, and circuits through it keep building. A
// circuit built with a descriptor the client fetched just before a
// rotation still builds during the overlap and is refused with DESTROY
// (reason 6, handshake) once the previous pair is erased.
func TestRelayStaysFreshFor30Days(t *testing.T) {
	if raceEnabled {
		// Under -race this run crashes the race runtime itself, at random
		// (SIGSEGV in __tsan::SlotLock, no race reported) after thousands
		// of goroutines in one bubble; .ci/run runs the key rotation tests
		// without -race.
		t.Skip("crashes the race runtime (SIGSEGV in __tsan::SlotLock)")
	}
	synctest.Test(t, func(t *testing.T) {
		rn := newRotationNet(t, 4, nil)
		defer rn.close()
		r := rn.relays[1]
		rotations := 0
		cur := r.ring.Current()
		var stale circuit.Hop      // R as the client had it just before the last rotation
		var retired keys.OnionPair // the pair that rotation replaced
		var rotatedAt time.Time
		overlapChecked, retiredChecked := 0, 0
		days := 30
		start := time.Now()
		for step := 0; time.Since(start) < time.Duration(days)*24*time.Hour; step++ {
			before := r.ring.Current()
			var candidate circuit.Hop // the client's view of R, before the sleep
			if d := rn.client.dir.Get(r.NodeID()); d != nil {
				candidate, _ = rn.client.hopOf(d)
			}
			time.Sleep(30 * time.Minute)
			synctest.Wait()
			if now := r.ring.Current(); now.Onion != cur.Onion {
				rotations++
				retired, rotatedAt, cur, stale = before, time.Now(), now, candidate
				if stale.Onion != before.Onion.Public() {
					t.Fatalf("day %.1f: client did not have the pre-rotation descriptor", time.Since(start).Hours()/24)
				}
			}
			for _, n := range append([]*Node{rn.client, rn.relays[0], rn.relays[2], rn.relays[3]}, r) {
				if n.dir.Get(r.NodeID()) == nil {
					t.Fatalf("day %.1f: a node lost the relay's descriptor", time.Since(start).Hours()/24)
				}
			}
			if step%12 == 0 { // every 6 h, a circuit with the client's current view
				d := rn.client.dir.Get(r.NodeID())
				h, _ := rn.client.hopOf(d)
				if err := rn.buildThrough(h); err != nil {
					t.Fatalf("day %.1f: circuit through the relay: %v", time.Since(start).Hours()/24, err)
				}
			}
			if rotatedAt.IsZero() {
				continue
			}
			switch since := time.Since(rotatedAt); {
			case since < OnionOverlap-time.Hour && step%4 == 0:
				if retired.Onion.Erased() {
					t.Fatalf("previous pair erased %v after the rotation", since)
				}
				if err := rn.buildThrough(stale); err != nil {
					t.Fatalf("%v after a rotation, with the previous key: %v", since, err)
				}
				overlapChecked++
			case since > OnionOverlap && since <= OnionOverlap+30*time.Minute:
				if !retired.Onion.Erased() || !retired.KEM.Erased() || retired.Onion.Bytes() != [32]byte{} {
					t.Fatalf("previous pair not zeroed %v after the rotation", since)
				}
				failed := r.Stats().Circuits.HandshakeFailed
				err := rn.buildThrough(stale)
				var be *circuit.BuildError
				if !errors.As(err, &be) || be.Hop != 0 || !errors.Is(err, circuit.ErrDestroyed) {
					t.Fatalf("with a retired key: %v, want hop 1 destroyed", err)
				}
				if got := r.Stats().Circuits.HandshakeFailed; got != failed+1 {
					t.Fatalf("HandshakeFailed %d -> %d, want one more (DESTROY reason 6)", failed, got)
				}
				retiredChecked++
			}
		}
		want := days * 24 / int(DefaultOnionRotation.Hours()) // 4 in 30 days
		if rotations != want {
			t.Errorf("%d rotations in %d days, want %d", rotations, days, want)
		}
		if overlapChecked < want || retiredChecked < want {
			t.Errorf("checked %d builds in the overlap and %d after it, want at least %d each", overlapChecked, retiredChecked, want)
		}
	})
}

// A relay restarted with the same OnionKeyFile keeps its current and
// previous onion pairs, with their times: it publishes the same onion key
// and still answers a CREATE for the previous pair.
func TestOnionKeysSurviveRestart(t *testing.T) {
	if raceEnabled {
		t.Skip("long virtual time under synctest crashes Go 1.26's race runtime (SIGSEGV in __tsan::SlotLock); .ci/run runs this test without -race")
	}
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, keys.OnionKeysFileName)
		nk, err := keys.GenerateNodeKeys(nil)
		if err != nil {
			t.Fatal(err)
		}
		tune := func(i int, c *Config) {
			if i == 1 {
				c.Keys, c.OnionKeyFile = nk, file
			}
		}
		rn := newRotationNet(t, 4, tune)
		r := rn.relays[1]
		first := r.ring.Current()
		d := rn.client.dir.Get(r.NodeID())
		stale, _ := rn.client.hopOf(d)
		time.Sleep(DefaultOnionRotation + time.Minute) // one rotation
		synctest.Wait()
		cur := r.ring.Current()
		if cur.Onion.Public() == first.Onion.Public() {
			t.Fatal("no rotation")
		}
		rn.close()
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != keys.FileMode {
			t.Fatalf("onion keys file: %v %v", fi, err)
		}

		rn = newRotationNet(t, 4, tune)
		defer rn.close()
		r = rn.relays[1]
		if got := r.ring.Current(); got.Onion.Public() != cur.Onion.Public() || !got.Created.Equal(cur.Created.Truncate(time.Second)) {
			t.Fatal("restart lost the current pair")
		}
		if got := r.Descriptor().Onion; got != cur.Onion.Public() {
			t.Fatal("restart published another onion key")
		}
		prev, ok := r.ring.Previous()
		if !ok || prev.Onion.Public() != stale.Onion {
			t.Fatal("restart lost the previous pair")
		}
		if err := rn.buildThrough(stale); err != nil {
			t.Fatalf("previous key after a restart: %v", err)
		}
	})
}

// A relay that was down when its rotation fell due rotates as it starts,
// before it publishes, and keeps the pair it replaces for the overlap; a
// pair whose overlap ended while it was down is gone.
func TestOverdueRotationAtStart(t *testing.T) {
	if raceEnabled {
		t.Skip("long virtual time under synctest crashes Go 1.26's race runtime (SIGSEGV in __tsan::SlotLock); .ci/run runs this test without -race")
	}
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), keys.OnionKeysFileName)
		now := time.Now()
		cur, err := keys.GenerateOnionPair(nil, now.Add(-8*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		old, err := keys.GenerateOnionPair(nil, now.Add(-15*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.WriteOnionKeysFile(file, cur, &old); err != nil {
			t.Fatal(err)
		}
		curPub := cur.Onion.Public()
		rn := newRotationNet(t, 4, func(i int, c *Config) {
			if i == 1 {
				c.OnionKeyFile = file
			}
		})
		defer rn.close()
		r := rn.relays[1]
		got := r.ring.Current()
		if got.Onion.Public() == curPub || !got.Created.Equal(now) {
			t.Fatal("no rotation at start")
		}
		if r.Descriptor().Onion != got.Onion.Public() {
			t.Fatal("published the overdue onion key")
		}
		// Relay 0 took R's first HELLO: it never carried the overdue key.
		if d := rn.relays[0].dir.Get(r.NodeID()); d == nil || d.Onion != got.Onion.Public() {
			t.Fatal("announced the overdue onion key")
		}
		prev, ok := r.ring.Previous()
		if !ok || prev.Onion.Public() != curPub {
			t.Fatal("the replaced pair is not the previous pair")
		}
		fc, fp, err := keys.LoadOnionKeysFile(file)
		if err != nil || fc.Onion.Public() != got.Onion.Public() || fp == nil || fp.Onion.Public() != curPub {
			t.Fatalf("onion keys file not rewritten: %v", err)
		}
	})
}
