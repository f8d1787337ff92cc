package hs

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRand returns a deterministic reader for tests.
func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

// fixture is one service with its keys for one period.
type fixture struct {
	network string
	id      *keys.ServicePrivateKey
	p       hsblind.Period
	blinded hsblind.BlindedPublicKey
	secrets ServiceSecrets
	authKey [32]byte
}

func newFixture(t testing.TB, seed byte) *fixture {
	t.Helper()
	r := testRand(seed)
	id, err := keys.GenerateService(r)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServiceSecrets(r)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		network: "darkmatter-test",
		id:      id,
		p:       hsblind.PeriodAt(time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC), hsblind.DefaultPeriodLength),
		secrets: s,
	}
	if _, err := io.ReadFull(r, f.authKey[:]); err != nil {
		t.Fatal(err)
	}
	f.blinded, err = hsblind.BlindPublic(id.Public(), f.network, f.p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) target() Target {
	return Target{
		Network:  f.network,
		Identity: f.id.Public(),
		Blinded:  f.blinded,
		AuthKey:  f.authKey,
		Enc:      f.secrets.EncPublic(),
		KEM:      f.secrets.KEM.Public(),
	}
}

func (f *fixture) accept(r io.Reader, enc []byte) (Intro, [32]byte, []byte, *Layer, error) {
	return ServiceAccept(r, f.network, f.id.Public(), f.blinded, f.authKey, f.secrets, enc)
}

func (f *fixture) descriptor(intros int) *Descriptor {
	d := &Descriptor{Enc: f.secrets.EncPublic(), KEM: f.secrets.KEM.Public(), PoWEffort: 1234, PoWSeed: [32]byte{1, 2, 3}}
	for i := range intros {
		d.Intros = append(d.Intros, IntroPoint{Relay: keys.NodeID{byte(i), 0xaa}, AuthKey: [32]byte{byte(i), 0xbb}})
	}
	return d
}

func (f *fixture) seal(t testing.TB, d *Descriptor, clients []keys.ClientAuthPublicKey) []byte {
	t.Helper()
	v, err := SealDescriptor(nil, d, f.network, f.id.Public(), f.p, clients)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) open(v []byte, client *keys.ClientAuthPrivateKey) (*Descriptor, error) {
	return OpenDescriptor(v, f.network, f.id.Public(), f.p, client)
}

func testIntro() Intro {
	return Intro{Cookie: [CookieLen]byte{1, 2, 3, 19: 20}, Rendezvous: keys.NodeID{9, 8, 7, 31: 1}, PoWEffort: 77, PoWNonce: [16]byte{5, 15: 6}}
}

// handshake runs a whole introduction and returns both layers.
func handshake(t testing.TB, f *fixture) (client, service *Layer) {
	t.Helper()
	h, enc, err := ClientIntroduce(nil, f.target(), testIntro())
	if err != nil {
		t.Fatal(err)
	}
	_, _, reply, sl, err := f.accept(nil, enc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := h.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	return cl, sl
}
