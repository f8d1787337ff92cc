package onion

import (
	"errors"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/hs"
	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// publishAt stores s's descriptor for period p in env, as publish does.
func publishAt(t *testing.T, env *fakeEnv, s *Service, p hsblind.Period, now time.Time) *dht.Record {
	t.Helper()
	r, err := s.record(s.descriptor(), p, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Put(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func clientAuthKey(t *testing.T) *keys.ClientAuthPrivateKey {
	t.Helper()
	k, err := keys.GenerateClientAuth(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Each reason a service cannot be reached maps to its own error, before any
// circuit is spent where the descriptor already decides.
func TestClientErrors(t *testing.T) {
	env := newFakeEnv()
	now := time.Now()
	clock := func() time.Time { return now }
	allowed, stranger := clientAuthKey(t), clientAuthKey(t)
	open := newTestService(t, env, ServiceConfig{Now: clock})
	open.addIntro(t)
	open.addIntro(t)
	auth := newTestService(t, env, ServiceConfig{Now: clock, ClientAuth: []keys.ClientAuthPublicKey{allowed.Public()}})
	auth.addIntro(t)
	unpublished := newTestService(t, env, ServiceConfig{Now: clock})
	cur := hsblind.PeriodAt(now, 0)
	publishAt(t, env, open, cur, now)
	publishAt(t, env, auth, cur, now)

	dial := func(cfg ClientConfig, svc keys.ServicePublicKey) (error, ClientStats) {
		cfg.Now = clock
		c := NewClient(env, cfg)
		defer c.Close()
		conn, err := c.Dial(t.Context(), svc, 80, "")
		if conn != nil {
			t.Fatal("a connection without circuits")
		}
		return err, c.Stats()
	}
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		svc  keys.ServicePublicKey
		want error
	}{
		{"unpublished", ClientConfig{}, unpublished.pub, ErrDescriptorNotFound},
		{"no client key", ClientConfig{}, auth.pub, ErrClientAuthMissing},
		{"unlisted client key", ClientConfig{AuthKeys: []*keys.ClientAuthPrivateKey{stranger}}, auth.pub, ErrClientAuthWrong},
		// Past the descriptor, the fake Env builds no circuit.
		{"listed client key", ClientConfig{AuthKeys: []*keys.ClientAuthPrivateKey{stranger, allowed}}, auth.pub, ErrRendezvousFailed},
		{"open service", ClientConfig{}, open.pub, ErrRendezvousFailed},
	} {
		err, _ := dial(tc.cfg, tc.svc)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		for _, other := range []error{ErrDescriptorNotFound, ErrDescriptorInvalid, ErrClientAuthMissing, ErrClientAuthWrong, ErrRendezvousFailed, ErrIntroFailed} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", tc.name, err, other)
			}
		}
	}

	// Every introduction point is tried, then the descriptor is fetched
	// again and each is tried once more.
	env.mu.Lock()
	env.rends = 0
	env.mu.Unlock()
	if _, st := dial(ClientConfig{}, open.pub); st.Fetched != 2 || st.IntroFailures != 4 || env.rends != 4 {
		t.Fatalf("stats %+v, %d rendezvous circuits asked for; want 2 fetches, 4 failures", st, env.rends)
	}

	// A lookup error is a descriptor not found, carrying the cause.
	cause := errors.New("lookup timed out")
	env.mu.Lock()
	env.getErr = cause
	env.mu.Unlock()
	err, _ := dial(ClientConfig{}, open.pub)
	if !errors.Is(err, ErrDescriptorNotFound) || !errors.Is(err, cause) {
		t.Fatalf("lookup failure: %v", err)
	}
	env.mu.Lock()
	env.getErr = nil
	env.mu.Unlock()

	// Closed: no lookup at all.
	c := NewClient(env, ClientConfig{Now: clock})
	c.Close()
	if _, err := c.Dial(t.Context(), open.pub, 80, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after Close: %v", err)
	}
	if _, err := c.Connect(t.Context(), open.pub); !errors.Is(err, ErrClosed) {
		t.Fatalf("connect after Close: %v", err)
	}
	if c.Stats().Fetched != 0 {
		t.Fatal("a closed client looked a descriptor up")
	}
}

// A record under the service's blinded key that does not open for the
// address is a bad descriptor; one signed by another owner is ignored; a
// good record with a higher revision wins over a bad one.
func TestClientBadDescriptor(t *testing.T) {
	env := newFakeEnv()
	now := time.Now()
	clock := func() time.Time { return now }
	s := newTestService(t, env, ServiceConfig{Now: clock})
	s.addIntro(t)
	other := newTestService(t, env, ServiceConfig{Now: clock})
	other.addIntro(t)
	cur := hsblind.PeriodAt(now, 0)
	r, err := s.record(s.descriptor(), cur, now)
	if err != nil {
		t.Fatal(err)
	}
	// The other service's sealed value under s's key and owner.
	forged, err := other.record(other.descriptor(), cur, now)
	if err != nil {
		t.Fatal(err)
	}
	bad := *r
	bad.Value = forged.Value
	env.recs[r.Key] = []*dht.Record{&bad}
	c := NewClient(env, ClientConfig{Now: clock})
	defer c.Close()
	if _, err := c.Connect(t.Context(), s.pub); !errors.Is(err, ErrDescriptorInvalid) {
		t.Fatalf("another service's descriptor: %v", err)
	}
	// Signed by another owner: not ours, so not found.
	foreign := *r
	foreign.Owner = forged.Owner
	env.recs[r.Key] = []*dht.Record{&foreign}
	if _, err := c.Connect(t.Context(), s.pub); !errors.Is(err, ErrDescriptorNotFound) {
		t.Fatalf("another owner's record: %v", err)
	}
	good := *r
	good.Seq = bad.Seq + 1
	env.recs[r.Key] = []*dht.Record{&bad, &good}
	if _, err := c.Connect(t.Context(), s.pub); !errors.Is(err, ErrRendezvousFailed) {
		t.Fatalf("a good descriptor next to a bad one: %v", err)
	}
}

// Near the start of a period a client also looks under the previous
// period's blinded key; later in the period it does not.
func TestClientPreviousPeriod(t *testing.T) {
	env := newFakeEnv()
	start := hsblind.PeriodAt(time.Now(), 0).Start()
	s := newTestService(t, env, ServiceConfig{})
	s.addIntro(t)
	prev := hsblind.PeriodAt(start.Add(-time.Minute), 0)
	publishAt(t, env, s, prev, start.Add(-time.Minute))
	for _, tc := range []struct {
		at   time.Duration
		want error
	}{{10 * time.Minute, ErrRendezvousFailed}, {2 * time.Hour, ErrDescriptorNotFound}} {
		now := start.Add(tc.at)
		c := NewClient(env, ClientConfig{Now: func() time.Time { return now }})
		if _, err := c.Connect(t.Context(), s.pub); !errors.Is(err, tc.want) {
			t.Errorf("%v into the period: %v, want %v", tc.at, err, tc.want)
		}
		c.Close()
	}
}

// A service publishes for this period and the next, each under its own
// blinded key, with a revision that never goes back.
func TestServicePublish(t *testing.T) {
	env := newFakeEnv()
	now := time.Now()
	s := newTestService(t, env, ServiceConfig{Now: func() time.Time { return now }})
	if err := s.publish(t.Context()); err == nil {
		t.Fatal("published without an introduction point")
	}
	s.addIntro(t)
	if err := s.publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.publish(t.Context()); err != nil { // same millisecond
		t.Fatal(err)
	}
	if st := s.Stats(); st.Published != 4 {
		t.Fatalf("published %d records, want 4", st.Published)
	}
	cur := hsblind.PeriodAt(now, 0)
	for _, p := range []hsblind.Period{cur, cur.Next()} {
		bk, err := hsblind.BlindPublic(s.pub, env.network, p)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := env.Get(t.Context(), hs.DescriptorType, dht.Key(hs.DescriptorKey(bk)))
		if err != nil || len(rs) != 2 {
			t.Fatalf("period %v: %d records, %v", p, len(rs), err)
		}
		if rs[0].Seq <= rs[1].Seq || rs[0].Owner != keys.IdentityPublicKey(bk) {
			t.Fatalf("period %v: revisions %d, %d", p, rs[0].Seq, rs[1].Seq)
		}
		if _, err := hs.OpenDescriptor(rs[0].Value, env.network, s.pub, p, nil); err != nil {
			t.Fatalf("period %v: %v", p, err)
		}
	}
}
