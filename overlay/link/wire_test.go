package link

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/flynn/noise"
)

func TestParsePreamble(t *testing.T) {
	good := preamble{version: PreambleVersion, netID: NetworkID("x"), suite: SuiteAESGCM}
	gb := good.bytes()
	if got := hex.EncodeToString(gb[:4]); got != "444d4b02" {
		t.Errorf("preamble starts %s", got)
	}
	p, err := parsePreamble(gb[:])
	if err != nil || p != good {
		t.Fatalf("parsePreamble(good) = %+v, %v", p, err)
	}
	if r, err := checkMagic(gb[:4]); r != 0 || err != nil {
		t.Errorf("checkMagic(good) = %d, %v", r, err)
	}
	id := NetworkID("x")
	chacha := preamble{version: PreambleVersion, netID: id, suite: SuiteChaChaPoly}
	retry := chacha
	retry.flags = FlagSuiteRetry
	for _, tc := range []struct {
		name   string
		p      preamble
		hwAES  bool
		reason byte
		err    error
	}{
		{"AESGCM at an AES responder", good, true, 0, nil},
		{"AESGCM without hardware AES", good, false, RejectSuite, ErrSuiteRejected},
		{"ChaChaPoly at an AES responder", chacha, true, 0, nil},
		{"ChaChaPoly without hardware AES", chacha, false, 0, nil},
		{"retry without hardware AES", retry, false, 0, nil},
		{"retry at an AES responder", retry, true, RejectHandshake, ErrDowngrade},
		{"other network", preamble{version: PreambleVersion, netID: NetworkID("y"), suite: SuiteChaChaPoly}, true, RejectNetwork, ErrNetworkMismatch},
		{"version 1", preamble{version: 1, netID: id, suite: SuiteChaChaPoly}, true, RejectVersion, ErrVersion},
		{"version 3", preamble{version: 3, netID: id, suite: SuiteChaChaPoly}, true, RejectVersion, ErrVersion},
		{"suite 0", preamble{version: PreambleVersion, netID: id}, true, RejectVersion, ErrVersion},
		{"suite 3", preamble{version: PreambleVersion, netID: id, suite: 3}, true, RejectVersion, ErrVersion},
		{"unknown flag", preamble{version: PreambleVersion, netID: id, suite: SuiteChaChaPoly, flags: 2}, true, RejectVersion, ErrVersion},
		{"retry with AESGCM", preamble{version: PreambleVersion, netID: id, suite: SuiteAESGCM, flags: FlagSuiteRetry}, true, RejectVersion, ErrVersion},
	} {
		r, err := tc.p.check(id, tc.hwAES)
		if r != tc.reason || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: check = %d, %v; want %d, %v", tc.name, r, err, tc.reason, tc.err)
		}
	}
	for _, bad := range [][]byte{nil, gb[:13], append(gb[:], 0), []byte("DMX\x02..........")} {
		if _, err := parsePreamble(bad); err == nil {
			t.Errorf("parsePreamble(%q) accepted", bad)
		}
	}
	if r, err := checkMagic([]byte("DMK\x01")); r != RejectVersion || !errors.Is(err, ErrVersion) {
		t.Errorf("checkMagic(version 1) = %d, %v", r, err)
	}
	if r, err := checkMagic([]byte("GET ")); r != 0 || !errors.Is(err, ErrProtocol) {
		t.Errorf("checkMagic(GET) = %d, %v", r, err)
	}
}

// transportCipher must produce exactly what flynn/noise's CipherState
// produces for the same key and nonces, in both suites, read it back, and
// rekey as Noise's Rekey does.
func TestTransportCipherMatchesNoise(t *testing.T) {
	for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		t.Run(suite.String(), func(t *testing.T) {
			var k [32]byte
			k[0] = 42
			ref := noise.UnsafeNewCipherState(suite.noiseSuite(), k, 0)
			ours, err := newTransportCipher(suite, k, 0)
			if err != nil {
				t.Fatal(err)
			}
			back, _ := newTransportCipher(suite, k, 0)
			for i := range 9 {
				if i == 5 {
					// Rekey all three between messages 4 and 5.
					ref.Rekey()
					if ours.rekey() != nil || back.rekey() != nil {
						t.Fatal("rekey failed")
					}
				}
				pt := bytes.Repeat([]byte{byte(i)}, 100+i)
				want, err := ref.Encrypt(nil, nil, pt)
				if err != nil {
					t.Fatal(err)
				}
				buf := append(make([]byte, 0, 3+len(pt)+TagLen), 1, 2, 3)
				buf = append(buf, pt...)
				got, err := ours.seal(buf, 3)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[:3], []byte{1, 2, 3}) || !bytes.Equal(got[3:], want) {
					t.Fatalf("message %d differs from flynn/noise", i)
				}
				opened, err := back.open(got[3:])
				if err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("open message %d: %v", i, err)
				}
			}
			// A tampered message fails.
			msg, _ := ours.seal(make([]byte, 10, 10+TagLen), 0)
			msg[0] ^= 1
			if _, err := back.open(msg); err == nil {
				t.Fatal("tampered message opened")
			}
			// The other suite's nonce format does not open it.
			other := SuiteAESGCM
			if suite == SuiteAESGCM {
				other = SuiteChaChaPoly
			}
			x, _ := newTransportCipher(suite, k, 1)
			y, _ := newTransportCipher(suite, k, 1)
			y.suite = other // the same AEAD with the other nonce layout
			if _, err := y.open(must(x.seal(make([]byte, 10, 10+TagLen), 0))); err == nil {
				t.Fatal("nonce byte order does not matter")
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Sealing and opening at steady state do not allocate, in either suite.
func TestTransportCipherAllocs(t *testing.T) {
	for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		a, _ := newTransportCipher(suite, [32]byte{1}, 0)
		b, _ := newTransportCipher(suite, [32]byte{1}, 0)
		buf := make([]byte, 0, MaxMessageLen)
		allocs := testing.AllocsPerRun(100, func() {
			m, err := a.seal(buf[:MaxMessageLen-TagLen], 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.open(m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per seal+open", suite, allocs)
		}
	}
}

// The message sizes follow from the Noise pattern, in both suites.
func TestHandshakeSizes(t *testing.T) {
	for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		t.Run(suite.String(), func(t *testing.T) {
			s, err := (&Config{Static: newKey(t)}).settings()
			if err != nil {
				t.Fatal(err)
			}
			cs, err := (&Config{Suite: suite}).settings()
			if err != nil {
				t.Fatal(err)
			}
			p := cs.preamble()
			ini, msg1, err := startInitiator(cs, p, s.static.Public())
			if err != nil {
				t.Fatal(err)
			}
			if len(msg1) != Msg1Len {
				t.Errorf("msg1 is %d bytes, want %d", len(msg1), Msg1Len)
			}
			// The responder must use the preamble that was sent.
			other := p
			other.flags = FlagSuiteRetry
			if _, _, err := respond(s, other, msg1); !errors.Is(err, ErrHandshake) {
				t.Errorf("msg1 under another preamble: %v", err)
			}
			sess, msg2, err := respond(s, p, msg1)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg2) != Msg2Len {
				t.Errorf("msg2 is %d bytes, want %d", len(msg2), Msg2Len)
			}
			isess, err := ini.finish(msg2, s.static.Public())
			if err != nil {
				t.Fatal(err)
			}
			if isess.suite != suite || sess.suite != suite {
				t.Errorf("suites %v, %v", isess.suite, sess.suite)
			}
			// Each side's send key is the other's receive key.
			buf := append(make([]byte, 0, 5+TagLen), "hello"...)
			m, _ := isess.send.seal(buf, 0)
			if pt, err := sess.recv.open(m); err != nil || string(pt) != "hello" {
				t.Fatalf("initiator to responder: %q, %v", pt, err)
			}
			buf = append(make([]byte, 0, 5+TagLen), "world"...)
			m, _ = sess.send.seal(buf, 0)
			if pt, err := isess.recv.open(m); err != nil || string(pt) != "world" {
				t.Fatalf("responder to initiator: %q, %v", pt, err)
			}
		})
	}
	if MaxMessageLen > 65535 {
		t.Errorf("MaxMessageLen %d exceeds the Noise limit", MaxMessageLen)
	}
}
