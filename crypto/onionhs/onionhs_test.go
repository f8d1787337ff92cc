package onionhs

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func relayKeys(t testing.TB) (RelayKeys, RelayPrivate) {
	t.Helper()
	on, err := keys.GenerateOnion(nil)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := keys.GenerateKEM(nil)
	if err != nil {
		t.Fatal(err)
	}
	return RelayKeys{Onion: on.Public(), KEM: kem.Public()}, RelayPrivate{Onion: on, KEM: kem}
}

func TestHandshake(t *testing.T) {
	pub, priv := relayKeys(t)
	st, msg, err := ClientStart(nil, "darkmatter", pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != ClientMessageSize {
		t.Fatalf("client message %d bytes", len(msg))
	}
	reply, rk, err := Respond(nil, "darkmatter", priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != RelayMessageSize {
		t.Fatalf("reply %d bytes", len(reply))
	}
	ck, err := st.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if ck != rk {
		t.Fatal("keys differ")
	}
}

func TestWrongNetworkFails(t *testing.T) {
	pub, priv := relayKeys(t)
	_, msg, _ := ClientStart(nil, "net-a", pub)
	if _, _, err := Respond(nil, "net-b", priv, msg); err != ErrHandshake {
		t.Fatalf("got %v", err)
	}
}

func TestWrongKEMKeyFails(t *testing.T) {
	pub, priv := relayKeys(t)
	other, _ := keys.GenerateKEM(nil)
	pub.KEM = other.Public()
	st, msg, _ := ClientStart(nil, "n", pub)
	reply, _, err := Respond(nil, "n", priv, msg)
	if err != nil {
		t.Fatal(err) // ML-KEM rejects implicitly: the relay cannot tell
	}
	if _, err := st.Finish(reply); err != ErrHandshake {
		t.Fatalf("client accepted a reply keyed by a different KEM secret: %v", err)
	}
}

func TestTamperedMessagesFail(t *testing.T) {
	pub, priv := relayKeys(t)
	for _, pos := range []int{0, 31, 32, 500, ClientMessageSize - 1} {
		_, msg, _ := ClientStart(nil, "n", pub)
		msg[pos] ^= 1
		if _, _, err := Respond(nil, "n", priv, msg); err == nil {
			t.Fatalf("tampered byte %d accepted", pos)
		}
	}
	for _, pos := range []int{0, 40} {
		st, msg, _ := ClientStart(nil, "n", pub)
		reply, _, _ := Respond(nil, "n", priv, msg)
		reply[pos] ^= 1
		if _, err := st.Finish(reply); err == nil {
			t.Fatalf("tampered reply byte %d accepted", pos)
		}
	}
	if _, _, err := Respond(nil, "n", priv, []byte{1, 2}); err == nil {
		t.Fatal("short message accepted")
	}
}

// Deterministic randomness gives a reproducible transcript (vectors).
func TestDeterministic(t *testing.T) {
	pub, priv := relayKeys(t)
	seed := make([]byte, 4096)
	rand.Read(seed)
	_, m1, _ := ClientStart(bytes.NewReader(seed), "n", pub)
	_, m2, _ := ClientStart(bytes.NewReader(seed), "n", pub)
	if !bytes.Equal(m1, m2) {
		t.Fatal("same randomness, different message")
	}
	r1, _, _ := Respond(bytes.NewReader(seed), "n", priv, m1)
	r2, _, _ := Respond(bytes.NewReader(seed), "n", priv, m1)
	if !bytes.Equal(r1, r2) {
		t.Fatal("same randomness, different reply")
	}
}

func BenchmarkHandshake(b *testing.B) {
	pub, priv := relayKeys(b)
	b.ReportAllocs()
	for b.Loop() {
		st, msg, _ := ClientStart(nil, "n", pub)
		reply, _, err := Respond(nil, "n", priv, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Finish(reply); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzRespond(f *testing.F) {
	pub, priv := relayKeys(f)
	_, msg, _ := ClientStart(nil, "n", pub)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, m []byte) {
		Respond(nil, "n", priv, m)
	})
}

// The relay's reply is network input for the client.
func FuzzFinish(f *testing.F) {
	pub, priv := relayKeys(f)
	_, msg, _ := ClientStart(nil, "n", pub)
	reply, _, _ := Respond(nil, "n", priv, msg)
	f.Add(reply) // valid, but for another client state
	f.Fuzz(func(t *testing.T, r []byte) {
		st, _, err := ClientStart(nil, "n", pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Finish(r); err == nil {
			t.Fatal("forged reply accepted")
		}
	})
}
