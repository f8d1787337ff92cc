package overlay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/apps/names"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// testNameDifficulty keeps the proof of work of test names cheap.
const testNameDifficulty = 8

// newNameNet is a small network whose DHT stores at once, at a low name
// difficulty; opt, if set, is applied to every Config after that.
func newNameNet(t testing.TB, nRelays int, opt func(*Config)) *harness {
	t.Helper()
	h := newHarnessWith(t, "mem", nRelays, func(c *Config) {
		c.DHTMinAge = -1
		c.DHTLimits = dht.StoreLimits{StoresPerMinute: 60000, StoreBurst: 10000, MaxPerOwner: 4096}
		c.DHTRequestRate, c.DHTRequestBurst = 5000, 10000
		c.NameDifficulty = testNameDifficulty
		if opt != nil {
			opt(c)
		}
	})
	for _, r := range h.relays {
		r.seedDHT()
	}
	t.Cleanup(h.close)
	return h
}

func newIdentity(t *testing.T) *keys.IdentityPrivateKey {
	t.Helper()
	k, err := keys.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newServiceAddr(t *testing.T) keys.ServicePublicKey {
	t.Helper()
	k, err := keys.GenerateService(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func textOf(r *names.Record) string {
	for _, e := range r.Entries {
		if e.Type == names.EntryText {
			return string(e.Data)
		}
	}
	return ""
}

// A client registers a name through its circuit; other nodes resolve it
// to the client's entries and key. A second key cannot take it, and the
// holder renews it without new work, keeping its registration time.
func TestRegisterResolveName(t *testing.T) {
	h := newNameNet(t, 5, nil)
	alice, mallory := newIdentity(t), newIdentity(t)
	svc := newServiceAddr(t)
	first, err := h.client.RegisterName(ctxT(t), "Alice", alice, time.Hour, names.AddressEntry(svc), names.TextEntry("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != "alice" || !names.CheckPoW("alice", alice.Public(), first.Registered, first.Nonce, testNameDifficulty) {
		t.Fatalf("registered %q without valid work", first.Name)
	}
	got, err := h.relays[2].ResolveName(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != alice.Public() || textOf(got) != "v1" {
		t.Fatalf("resolved owner/text %q, want alice's v1", textOf(got))
	}
	if a, ok := got.Entries[0].Address(); !ok || a != svc.Address() {
		t.Fatal("resolved address is not the registered one")
	}
	// A relay, too, looks names up through a circuit, not over its links.
	r2 := &h.relays[2].hidden
	r2.mu.Lock()
	tr := r2.dhtTr
	r2.mu.Unlock()
	if tr == nil {
		t.Fatal("the relay's name lookup did not go through a circuit")
	}
	tr.mu.Lock()
	viaCircuit := tr.cur != nil
	tr.mu.Unlock()
	if !viaCircuit {
		t.Fatal("the relay's name lookup did not go through a circuit")
	}

	// A second key is refused with a clear error; the name stays alice's.
	_, err = h.relays[1].RegisterName(ctxT(t), "alice", mallory, time.Hour, names.TextEntry("mine"))
	if !errors.Is(err, ErrNameTaken) || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("second key: %v, want ErrNameTaken", err)
	}
	if got, err := h.relays[3].ResolveName(ctxT(t), "alice"); err != nil || got.Owner != alice.Public() {
		t.Fatalf("after the second key: %v", err)
	}

	// Renewal keeps the registration time and nonce and replaces the
	// entries on the replicas.
	renewed, err := h.client.RegisterName(ctxT(t), "alice", alice, 2*time.Hour, names.TextEntry("v2"))
	if err != nil {
		t.Fatalf("renewal: %v", err)
	}
	if !renewed.Registered.Equal(first.Registered) || renewed.Nonce != first.Nonce || !renewed.Expires.After(first.Expires) {
		t.Fatal("renewal did not keep the registration or move the expiry")
	}
	got, err = h.relays[4].ResolveName(ctxT(t), "alice")
	if err != nil || textOf(got) != "v2" || !got.Registered.Equal(first.Registered) {
		t.Fatalf("after renewal: text %q, %v", textOf(got), err)
	}
	// relays[2] resolved before the renewal and keeps its answer (cache).
	if got, _ := h.relays[2].ResolveName(ctxT(t), "alice"); got == nil || textOf(got) != "v1" {
		t.Fatal("relay 2 did not answer from its cache")
	}
	// The registering client forgot its cached answer.
	if got, err := h.client.ResolveName(ctxT(t), "alice"); err != nil || textOf(got) != "v2" {
		t.Fatalf("client after renewal: %v", err)
	}

	if _, err := h.relays[0].ResolveName(ctxT(t), "nobody"); !errors.Is(err, names.ErrNotFound) {
		t.Fatalf("unregistered name: %v, want names.ErrNotFound", err)
	}
	if _, err := h.relays[0].ResolveName(ctxT(t), "bad name!"); !errors.Is(err, names.ErrName) {
		t.Fatalf("invalid name: %v, want names.ErrName", err)
	}
}

// A petname overrides the network's record of the same name.
func TestPetnameOverridesName(t *testing.T) {
	mine := newServiceAddr(t)
	pets, err := names.ParsePetnames(strings.NewReader("bob " + mine.Address() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := newNameNet(t, 4, func(c *Config) {
		if len(c.Listen) == 0 {
			c.Petnames = pets
		}
	})
	if _, err := h.relays[1].RegisterName(ctxT(t), "bob", newIdentity(t), time.Hour, names.AddressEntry(newServiceAddr(t))); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.ResolveName(ctxT(t), "BOB")
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := got.Entries[0].Address(); len(got.Entries) != 1 || !ok || a != mine.Address() {
		t.Fatal("the petname did not override the network's record")
	}
	if got, err := h.relays[2].ResolveName(ctxT(t), "bob"); err != nil || got.Entries[0].Type != names.EntryAddress {
		t.Fatalf("relay without petnames: %v", err)
	}
}

// The node refuses a negative or too high name difficulty, and
// RegisterName a lifetime beyond names.MaxTTL.
func TestNameConfig(t *testing.T) {
	for _, d := range []int{-1, names.MaxDifficulty + 1} {
		if _, err := New(Config{NameDifficulty: d}); err == nil {
			t.Fatalf("difficulty %d accepted", d)
		}
	}
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.NameDifficulty != names.DefaultDifficulty {
		t.Fatalf("default difficulty %d", n.cfg.NameDifficulty)
	}
	if _, err := n.RegisterName(ctxT(t), "x", newIdentity(t), names.MaxTTL+time.Second); err == nil {
		t.Fatal("lifetime beyond MaxTTL accepted")
	}
	if _, err := n.ResolveName(ctxT(t), "x"); !errors.Is(err, ErrNoDHT) {
		t.Fatalf("before Start: %v", err)
	}
}

// The cache holds at most MaxCachedNames and no record past its expiry.
func TestNameCacheBound(t *testing.T) {
	var s nameState
	now := time.Unix(1000, 0)
	for i := range MaxCachedNames + 50 {
		s.put(string(rune('a'+i%26))+strings.Repeat("x", i/26), &names.Record{Expires: now.Add(time.Hour)}, now)
	}
	if len(s.cache) != MaxCachedNames {
		t.Fatalf("cache holds %d, want %d", len(s.cache), MaxCachedNames)
	}
	s.put("short", &names.Record{Expires: now.Add(time.Minute)}, now)
	if _, ok := s.get("short", now.Add(time.Minute-time.Second)); !ok {
		t.Fatal("entry gone before its expiry")
	}
	if _, ok := s.get("short", now.Add(time.Minute)); ok {
		t.Fatal("entry kept past its record's expiry")
	}
	s.put("long", &names.Record{Expires: now.Add(24 * time.Hour)}, now)
	if _, ok := s.get("long", now.Add(NameCacheTTL)); ok {
		t.Fatal("entry kept past NameCacheTTL")
	}
}
