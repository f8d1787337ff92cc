package hsblind

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// FuzzBlind feeds arbitrary 32-byte public keys, networks and periods to
// BlindPublic. It must never panic; it must return one of its sentinel
// errors exactly when the key is not a canonical point of large order; and
// an accepted key's blinded key must decode and match the math/big
// reference.
func FuzzBlind(f *testing.F) {
	var v blindingVectors
	if err := testvec.Read(vectorsFile, &v); err == nil {
		for _, tv := range v.Blinding {
			f.Add([]byte(mustHexF(tv.Public)), tv.Network, tv.PeriodNumber, tv.LengthMinutes)
		}
		for _, tv := range v.BadKeys {
			f.Add([]byte(mustHexF(tv.Public)), "darkmatter", uint64(1), uint64(1440))
		}
	}
	f.Add(make([]byte, 32), "", uint64(0), uint64(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "x", ^uint64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, raw []byte, network string, number, lengthMin uint64) {
		if len(raw) != 32 {
			return
		}
		pub := keys.ServicePublicKey(raw)
		p := Period{Number: number, Length: durationMinutes(lengthMin)}
		b, err := BlindPublic(pub, network, p)
		pt, decodeErr := new(edwards25519.Point).SetBytes(raw)
		valid := decodeErr == nil && [32]byte(pt.Bytes()) == [32]byte(raw) &&
			new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) == 0
		if valid != (err == nil) {
			t.Fatalf("key %x: valid=%v but err=%v", raw, valid, err)
		}
		if err != nil {
			if !errors.Is(err, ErrNotPoint) && !errors.Is(err, ErrNonCanon) && !errors.Is(err, ErrSmallOrder) {
				t.Fatalf("key %x: unexpected error %v", raw, err)
			}
			return
		}
		if _, err := new(edwards25519.Point).SetBytes(b[:]); err != nil {
			t.Fatalf("blinded key %x does not decode: %v", b, err)
		}
		if ref, ok := refBlindPublic([32]byte(raw), network, p.Number, lengthMinutes(p.Length)); !ok || BlindedPublicKey(ref) != b {
			t.Fatalf("key %x: BlindPublic %x, reference %x", raw, b, ref)
		}
	})
}

// durationMinutes is n minutes, capped so the Duration does not overflow.
func durationMinutes(n uint64) time.Duration {
	const maxMin = uint64(1<<63-1) / uint64(time.Minute)
	return time.Duration(min(n, maxMin)) * time.Minute
}

func mustHexF(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
