package circuit

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// FuzzEstablishIntro checks the intro point's parsing and signature check
// of ESTABLISH_INTRO: never a panic, and a body is accepted only with the
// exact size and a valid signature by its own auth key over the fields it
// carries, for this intro point and network.
func FuzzEstablishIntro(f *testing.F) {
	auth := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	var self keys.NodeID
	self[0] = 0x5a
	valid := marshalEstablishIntro(auth, "test", self, 25, 200)
	f.Add(valid)
	f.Add(marshalEstablishIntro(auth, "test", self, 0, 0))
	f.Add(marshalEstablishIntro(auth, "other", self, 0, 0))
	f.Add(valid[:EstablishIntroLen-1])
	f.Add(append(append([]byte(nil), valid...), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEstablishIntro(b, "test", self)
		if err != nil {
			return
		}
		if len(b) != EstablishIntroLen || !bytes.Equal(e.authKey[:], b[:32]) || !bytes.Equal(e.sig[:], b[36:]) {
			t.Fatal("accepted a body whose fields differ from its bytes")
		}
		if !ed25519.Verify(ed25519.PublicKey(e.authKey[:]), IntroSignedBytes("test", self, e.authKey, e.rate, e.burst), e.sig[:]) {
			t.Fatal("accepted a body without a valid signature")
		}
	})
}

// FuzzIntroduce1 checks the intro point's split of INTRODUCE1: never a
// panic; an auth key and a non-empty encrypted part that together are the
// body, within MaxData.
func FuzzIntroduce1(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 33))
	f.Add(make([]byte, 32+MaxIntroduceEncrypted))
	f.Add(make([]byte, 33+MaxIntroduceEncrypted))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, enc, ok := parseIntroduce1(b)
		if !ok {
			if len(b) > IntroAuthKeyLen && len(b) <= IntroAuthKeyLen+MaxIntroduceEncrypted {
				t.Fatalf("refused a well-formed body of %d bytes", len(b))
			}
			return
		}
		if len(enc) == 0 || len(enc) > MaxIntroduceEncrypted || !bytes.Equal(append(key[:], enc...), b) {
			t.Fatal("the split is not the body")
		}
	})
}
