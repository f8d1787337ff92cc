package onion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/darkmatter/darkmatter/circuit"
	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// fakeEnv is an Env without a network: a DHT in a map, and circuits that
// are never built (BuildTo records the relay asked for and fails).
type fakeEnv struct {
	network string

	mu      sync.Mutex
	recs    map[dht.Key][]*dht.Record
	getErr  error // returned by Get instead of looking
	builtTo []keys.NodeID
	rends   int
	logs    []string
}

var errNoCircuits = errors.New("fake env: no circuits")

func newFakeEnv() *fakeEnv {
	return &fakeEnv{network: "test-onion", recs: make(map[dht.Key][]*dht.Record)}
}

func (e *fakeEnv) Network() string { return e.network }

func (e *fakeEnv) BuildTo(ctx context.Context, id keys.NodeID) (*circuit.ClientCirc, error) {
	e.mu.Lock()
	e.builtTo = append(e.builtTo, id)
	e.mu.Unlock()
	return nil, errNoCircuits
}

func (e *fakeEnv) BuildRendezvous(ctx context.Context) (*circuit.ClientCirc, error) {
	e.mu.Lock()
	e.rends++
	e.mu.Unlock()
	return nil, errNoCircuits
}

func (e *fakeEnv) IntroCandidates() []keys.NodeID { return nil }

func (e *fakeEnv) Put(ctx context.Context, r *dht.Record) (int, error) {
	if err := DescriptorSpec.Validate(r); err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recs[r.Key] = append(e.recs[r.Key], r)
	return 1, nil
}

// Get returns the records under key, highest Seq first, as dht.Get does.
func (e *fakeEnv) Get(ctx context.Context, typ uint16, key dht.Key) ([]*dht.Record, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.getErr != nil {
		return nil, e.getErr
	}
	rs := slices.Clone(e.recs[key])
	if len(rs) == 0 {
		return nil, dht.ErrNotFound
	}
	slices.SortFunc(rs, func(a, b *dht.Record) int { return -cmpU64(a.Seq, b.Seq) })
	return rs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *fakeEnv) Logf(format string, args ...any) {
	e.mu.Lock()
	e.logs = append(e.logs, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *fakeEnv) built() []keys.NodeID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.builtTo)
}

// newTestService returns a service on env that runs nothing: tests call
// its intake directly. It is stopped at the end of the test.
func newTestService(t *testing.T, env Env, cfg ServiceConfig) *Service {
	t.Helper()
	if cfg.Key == nil {
		k, err := keys.GenerateService(nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key = k
	}
	s, err := newService(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cancel(); s.intake.stop() })
	return s
}

func randomNodeID() keys.NodeID {
	var id keys.NodeID
	rand.Read(id[:])
	return id
}

// addIntro gives s an introduction point without a circuit.
func (s *Service) addIntro(t *testing.T) *introPoint {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ip := &introPoint{relay: randomNodeID(), auth: priv, pub: [32]byte(pub)}
	s.mu.Lock()
	s.intros = append(s.intros, ip)
	s.mu.Unlock()
	return ip
}

// introduce returns an INTRODUCE2 body for s through ip, as a client with
// the current descriptor makes it.
func introduce(t *testing.T, s *Service, ip *introPoint, in hs.Intro) []byte {
	t.Helper()
	bk := s.blindedKeys()[0]
	_, msg, err := hs.ClientIntroduce(nil, hs.Target{
		Network:  s.env.Network(),
		Identity: s.pub,
		Blinded:  bk,
		AuthKey:  ip.pub,
		Enc:      s.secrets.EncPublic(),
		KEM:      s.secrets.KEM.Public(),
	}, in)
	if err != nil {
		t.Fatal(err)
	}
	return append(ip.pub[:], msg...)
}

// intro returns an Intro with a random cookie to rendezvous relay rp.
func intro(rp keys.NodeID, effort uint32) hs.Intro {
	in := hs.Intro{Rendezvous: rp, PoWEffort: effort}
	rand.Read(in.Cookie[:])
	return in
}
