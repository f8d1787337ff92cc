package hs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
)

func TestHandshakeRoundTrip(t *testing.T) {
	f := newFixture(t, 1)
	in := testIntro()
	h, enc, err := ClientIntroduce(nil, f.target(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != IntroduceLen || enc[0] != IntroduceVersion {
		t.Fatalf("encrypted part: %d bytes, version %d", len(enc), enc[0])
	}
	if IntroduceLen != 1649 || 32+IntroduceLen > 4080-32 {
		t.Fatalf("IntroduceLen %d", IntroduceLen)
	}
	got, replay, reply, sl, err := f.accept(nil, enc)
	if err != nil {
		t.Fatal(err)
	}
	if got != in {
		t.Fatalf("intro %+v, want %+v", got, in)
	}
	if !bytes.Equal(replay[:], enc[1:33]) {
		t.Fatal("replay value is not the client's ephemeral key")
	}
	if len(reply) != ReplyLen {
		t.Fatalf("reply %d bytes", len(reply))
	}
	cl, err := h.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Finish(reply); err == nil {
		t.Fatal("a handshake finished twice")
	}
	// Both directions, several messages each, interleaved.
	for i := range 5 {
		msg := fmt.Appendf(nil, "client to service %d", i)
		ct := cl.Seal(nil, msg)
		if len(ct) != len(msg)+cl.Overhead() || cl.Overhead() != 16 {
			t.Fatalf("sealed %d bytes for %d", len(ct), len(msg))
		}
		pt, err := sl.Open(nil, ct)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("service opens %d: %q, %v", i, pt, err)
		}
		msg = fmt.Appendf(nil, "service to client %d", i)
		pt, err = cl.Open([]byte("prefix"), sl.Seal(nil, msg))
		if err != nil || !bytes.Equal(pt, append([]byte("prefix"), msg...)) {
			t.Fatalf("client opens %d: %q, %v", i, pt, err)
		}
	}
	// A layer does not open its own messages (the directions have
	// different keys).
	if _, err := cl.Open(nil, cl.Seal(nil, []byte("x"))); err == nil {
		t.Fatal("client opened its own message")
	}
}

// Two introductions with the same inputs differ (fresh ephemeral keys), so
// their replay values do.
func TestReplayValueUnique(t *testing.T) {
	f := newFixture(t, 2)
	seen := map[[32]byte]bool{}
	for range 3 {
		_, enc, err := ClientIntroduce(nil, f.target(), testIntro())
		if err != nil {
			t.Fatal(err)
		}
		_, replay, _, _, err := f.accept(nil, enc)
		if err != nil {
			t.Fatal(err)
		}
		if seen[replay] {
			t.Fatal("replay value repeated")
		}
		seen[replay] = true
	}
}

func TestHandshakeWrongBinding(t *testing.T) {
	f := newFixture(t, 3)
	other := newFixture(t, 4)
	otherBlind, err := hsblind.BlindPublic(f.id.Public(), f.network, f.p.Next())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*Target)
	}{
		{"network", func(t *Target) { t.Network = "darkmatter" }},
		{"identity", func(t *Target) { t.Identity = other.id.Public() }},
		{"blinded", func(t *Target) { t.Blinded = otherBlind }},
		{"auth key", func(t *Target) { t.AuthKey[0] ^= 1 }},
		{"enc key", func(t *Target) { t.Enc = other.secrets.EncPublic() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := f.target()
			c.mod(&tg)
			_, enc, err := ClientIntroduce(nil, tg, testIntro())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, _, err := f.accept(nil, enc); !errors.Is(err, ErrHandshake) {
				t.Fatalf("service accepted: %v", err)
			}
		})
	}
	// A wrong KEM key: ML-KEM rejects implicitly, so the service cannot
	// tell, but the client's Finish fails.
	tg := f.target()
	tg.KEM = other.secrets.KEM.Public()
	h, enc, err := ClientIntroduce(nil, tg, testIntro())
	if err != nil {
		t.Fatal(err)
	}
	_, _, reply, _, err := f.accept(nil, enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Finish(reply); !errors.Is(err, ErrHandshake) {
		t.Fatalf("client accepted a reply keyed by another KEM secret: %v", err)
	}
	// The service's side of the same binding: accept with another auth key.
	_, enc, _ = ClientIntroduce(nil, f.target(), testIntro())
	if _, _, _, _, err := ServiceAccept(nil, f.network, f.id.Public(), f.blinded, other.authKey, f.secrets, enc); !errors.Is(err, ErrHandshake) {
		t.Fatalf("accepted under another auth key: %v", err)
	}
}

func TestTamperedMsg1(t *testing.T) {
	f := newFixture(t, 5)
	_, good, err := ClientIntroduce(nil, f.target(), testIntro())
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []int{1, 32, 33, 500, 1 + 32 + keys.KEMCiphertextSize, 1 + 32 + keys.KEMCiphertextSize + 100, IntroduceLen - 17, IntroduceLen - 1} {
		enc := bytes.Clone(good)
		enc[pos] ^= 0x40
		if _, _, _, _, err := f.accept(nil, enc); !errors.Is(err, ErrHandshake) {
			t.Errorf("byte %d modified: %v", pos, err)
		}
	}
	for _, enc := range [][]byte{nil, good[:IntroduceLen-1], append(bytes.Clone(good), 0), append([]byte{2}, good[1:]...), append([]byte{0}, good[1:]...)} {
		if _, _, _, _, err := f.accept(nil, enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes, version %v: %v", len(enc), enc[:min(1, len(enc))], err)
		}
	}
	if _, _, _, _, err := f.accept(nil, good); err != nil {
		t.Fatalf("the genuine message no longer works: %v", err)
	}
}

func TestTamperedMsg2(t *testing.T) {
	f := newFixture(t, 6)
	for _, pos := range []int{0, 31, 32, ReplyLen - 1} {
		h, enc, _ := ClientIntroduce(nil, f.target(), testIntro())
		_, _, reply, _, err := f.accept(nil, enc)
		if err != nil {
			t.Fatal(err)
		}
		reply[pos] ^= 1
		if _, err := h.Finish(reply); !errors.Is(err, ErrHandshake) {
			t.Errorf("byte %d modified: %v", pos, err)
		}
	}
	h, enc, _ := ClientIntroduce(nil, f.target(), testIntro())
	_, _, reply, _, _ := f.accept(nil, enc)
	for _, r := range [][]byte{nil, reply[:ReplyLen-1], append(bytes.Clone(reply), 0)} {
		if _, err := h.Finish(r); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d-byte reply: %v", len(r), err)
		}
	}
	// Wrong sizes do not use up the handshake; the genuine reply works.
	if _, err := h.Finish(reply); err != nil {
		t.Fatal(err)
	}
	// Another introduction's reply does not finish this one.
	h2, _, _ := ClientIntroduce(nil, f.target(), testIntro())
	if _, err := h2.Finish(reply); !errors.Is(err, ErrHandshake) {
		t.Fatalf("another handshake's reply accepted: %v", err)
	}
}

// lowOrderPoints are X25519 public keys whose shared secrets are all zero.
var lowOrderPoints = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestLowOrderKeysRefused(t *testing.T) {
	f := newFixture(t, 7)
	for _, h := range lowOrderPoints {
		p, _ := hex.DecodeString(h)
		tg := f.target()
		copy(tg.Enc[:], p)
		if _, _, err := ClientIntroduce(nil, tg, testIntro()); !errors.Is(err, ErrHandshake) {
			t.Errorf("service enc key %s: %v", h[:8], err)
		}
		_, enc, _ := ClientIntroduce(nil, f.target(), testIntro())
		copy(enc[1:], p)
		if _, _, _, _, err := f.accept(nil, enc); !errors.Is(err, ErrHandshake) {
			t.Errorf("client e %s: %v", h[:8], err)
		}
		hc, enc, _ := ClientIntroduce(nil, f.target(), testIntro())
		_, _, reply, _, err := f.accept(nil, enc)
		if err != nil {
			t.Fatal(err)
		}
		copy(reply, p)
		if _, err := hc.Finish(reply); !errors.Is(err, ErrHandshake) {
			t.Errorf("service e %s: %v", h[:8], err)
		}
	}
}

func TestIntroduceErrors(t *testing.T) {
	f := newFixture(t, 8)
	tg := f.target()
	tg.KEM = nil
	if _, _, err := ClientIntroduce(nil, tg, testIntro()); err == nil {
		t.Fatal("no KEM key accepted")
	}
	tg = f.target()
	tg.Network = string(make([]byte, 256))
	if _, _, err := ClientIntroduce(nil, tg, testIntro()); err == nil {
		t.Fatal("256-byte network name accepted")
	}
	tg.Network = string(make([]byte, 255))
	if _, _, err := ClientIntroduce(nil, tg, testIntro()); err != nil {
		t.Fatalf("255-byte network name: %v", err)
	}
	if _, _, err := ClientIntroduce(bytes.NewReader(make([]byte, 40)), f.target(), testIntro()); err == nil {
		t.Fatal("short randomness accepted")
	}
	_, enc, _ := ClientIntroduce(nil, f.target(), testIntro())
	if _, _, _, _, err := ServiceAccept(nil, f.network, f.id.Public(), f.blinded, f.authKey, ServiceSecrets{}, enc); err == nil {
		t.Fatal("accepted without secrets")
	}
}

func TestParseIntro(t *testing.T) {
	in := testIntro()
	p := appendIntro(nil, in)
	if len(p) != IntroPlaintextLen || p[introFixedLen-1] != 0 || !bytes.Equal(p[introFixedLen:], make([]byte, IntroPlaintextLen-introFixedLen)) {
		t.Fatal("plaintext is not fixed-size and zero-padded")
	}
	if got, err := parseIntro(p); err != nil || got != in {
		t.Fatalf("%+v, %v", got, err)
	}
	// Extensions (type, length, body) are skipped; the padding is ignored.
	q := bytes.Clone(p)
	q[introFixedLen-1] = 2
	copy(q[introFixedLen:], []byte{7, 3, 1, 2, 3, 8, 0, 0xff})
	if got, err := parseIntro(q); err != nil || got != in {
		t.Fatalf("with extensions: %+v, %v", got, err)
	}
	// Extensions that overrun the plaintext are malformed.
	q[introFixedLen-1] = 255
	if _, err := parseIntro(q); !errors.Is(err, ErrMalformed) {
		t.Fatalf("overrunning extension count: %v", err)
	}
	q[introFixedLen-1] = 1
	q[IntroPlaintextLen-1] = 0
	q[introFixedLen+1] = 255
	q2 := bytes.Clone(q)
	copy(q2[introFixedLen:], []byte{7, 255})
	q2[IntroPlaintextLen-300] = 1
	if _, err := parseIntro(q2); err != nil {
		t.Fatalf("a 255-byte extension that fits: %v", err)
	}
	q2 = bytes.Clone(p)
	q2[introFixedLen-1] = 2
	copy(q2[introFixedLen:], []byte{7, 255})
	copy(q2[introFixedLen+257:], []byte{7, 255})
	if _, err := parseIntro(q2); !errors.Is(err, ErrMalformed) {
		t.Fatalf("second extension overruns: %v", err)
	}
	if _, err := parseIntro(p[:100]); !errors.Is(err, ErrMalformed) {
		t.Fatal("short plaintext accepted")
	}
}

// A service accepts introductions on several goroutines with one set of
// secrets (run with -race).
func TestServiceAcceptConcurrent(t *testing.T) {
	f := newFixture(t, 9)
	const n = 4
	encs := make([][]byte, n)
	hs := make([]*ClientHandshake, n)
	for i := range encs {
		var err error
		hs[i], encs[i], err = ClientIntroduce(nil, f.target(), testIntro())
		if err != nil {
			t.Fatal(err)
		}
	}
	replies := make([][]byte, n)
	errs := make([]error, n)
	done := make(chan int)
	for i := range n {
		go func() {
			_, _, replies[i], _, errs[i] = f.accept(nil, encs[i])
			done <- i
		}()
	}
	for range n {
		<-done
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if _, err := hs[i].Finish(replies[i]); err != nil {
			t.Fatalf("introduction %d: %v", i, err)
		}
	}
}
