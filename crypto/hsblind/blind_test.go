package hsblind

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// testKey is a deterministic service key for index i.
func testKey(i int) *keys.ServicePrivateKey {
	return keys.ServiceFromSeed(sha256.Sum256(fmt.Appendf(nil, "hsblind test key %d", i)))
}

var (
	testNetworks = []string{"darkmatter", "testnet", "", "a"}
	testPeriods  = []Period{
		{Number: 0, Length: DefaultPeriodLength},
		{Number: 16903, Length: DefaultPeriodLength},
		{Number: 16904, Length: DefaultPeriodLength},
		{Number: 16903, Length: time.Hour},
		{Number: 1<<64 - 1, Length: time.Minute},
	}
)

func TestBlindPublicMatchesPrivate(t *testing.T) {
	for i := range 8 {
		k := testKey(i)
		for _, n := range testNetworks {
			for _, p := range testPeriods {
				want := BlindPrivate(k, n, p).Public()
				got, err := BlindPublic(k.Public(), n, p)
				if err != nil {
					t.Fatalf("key %d %q %v: %v", i, n, p, err)
				}
				if got != want {
					t.Fatalf("key %d %q %v: BlindPublic %x != BlindPrivate().Public() %x", i, n, p, got, want)
				}
			}
		}
	}
}

func TestBlindedSignatures(t *testing.T) {
	k := testKey(1)
	p := testPeriods[1]
	msg := []byte("descriptor body")
	bk := BlindPrivate(k, "darkmatter", p)
	sig := bk.Sign(msg)
	if len(sig) != SignatureSize {
		t.Fatalf("signature has %d bytes", len(sig))
	}
	pub := bk.Public()
	if !ed25519.Verify(ed25519.PublicKey(pub[:]), msg, sig) || !pub.Verify(msg, sig) {
		t.Fatal("crypto/ed25519 rejects the blinded signature")
	}
	// Signing is deterministic, as Ed25519 is.
	if !bytes.Equal(sig, bk.Sign(msg)) {
		t.Error("two signatures of one message differ")
	}
	others := map[string]BlindedPublicKey{}
	for name, op := range map[string]Period{"next period": p.Next(), "other length": {Number: p.Number, Length: time.Hour}} {
		others[name] = BlindPrivate(k, "darkmatter", op).Public()
	}
	others["other network"] = BlindPrivate(k, "testnet", p).Public()
	others["other key"] = BlindPrivate(testKey(2), "darkmatter", p).Public()
	others["unblinded key"] = BlindedPublicKey(k.Public())
	for name, o := range others {
		if o.Verify(msg, sig) {
			t.Errorf("signature verifies under the %s", name)
		}
	}
	bad := bytes.Clone(sig)
	bad[10] ^= 1
	if pub.Verify(msg, bad) || pub.Verify([]byte("descriptor bodz"), sig) || pub.Verify(msg, sig[:63]) || pub.Verify(msg, nil) {
		t.Error("a tampered signature, message or short signature verifies")
	}
}

// TestBlindedKeysDiffer checks that every period, length, network and key
// gives its own blinded key, none equal to the service key. That a blinded
// key cannot be linked to another period's, or to the address, without A is
// the discrete-logarithm assumption: A'₂ = (h₂/h₁)·A'₁, and h₁, h₂ are
// hashes of A, so linking needs A (or log_B A'₁). No test can show that; this
// one shows there is no trivial link (equal or related outputs).
func TestBlindedKeysDiffer(t *testing.T) {
	seen := map[BlindedPublicKey]string{}
	for i := range 4 {
		k := testKey(i)
		pub := k.Public()
		for _, n := range testNetworks {
			for _, p := range testPeriods {
				b, err := BlindPublic(pub, n, p)
				if err != nil {
					t.Fatal(err)
				}
				what := fmt.Sprintf("key %d network %q %v", i, n, p)
				if prev, dup := seen[b]; dup {
					t.Fatalf("%s and %s have the same blinded key", what, prev)
				}
				if b == BlindedPublicKey(pub) {
					t.Fatalf("%s: blinded key equals the service key", what)
				}
				seen[b] = what
			}
		}
	}
}

// TestNonceBindsPeriod: prefix' depends on h, so one message signed in two
// periods does not reuse R (Tor's prefix' would, linking the two periods'
// signatures).
func TestNonceBindsPeriod(t *testing.T) {
	k := testKey(3)
	msg := []byte("same message")
	s1 := BlindPrivate(k, "darkmatter", testPeriods[1]).Sign(msg)
	s2 := BlindPrivate(k, "darkmatter", testPeriods[2]).Sign(msg)
	s3 := BlindPrivate(k, "testnet", testPeriods[1]).Sign(msg)
	if bytes.Equal(s1[:32], s2[:32]) || bytes.Equal(s1[:32], s3[:32]) {
		t.Fatal("the nonce point R repeats across periods or networks")
	}
}

// smallOrderEncodings are encodings of the eight points of small order.
func smallOrderEncodings(t testing.TB) [][32]byte {
	t.Helper()
	var out [][32]byte
	// The order-8 points have y = ±sqrt((1 ± sqrt(d+1))/d)...; rather than
	// hard-code them, take multiples of a known order-8 point.
	t8 := mustHex(t, "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	p, err := new(edwards25519.Point).SetBytes(t8)
	if err != nil {
		t.Fatal(err)
	}
	q := edwards25519.NewIdentityPoint()
	seen := map[[32]byte]bool{}
	for range 8 {
		enc := [32]byte(q.Bytes())
		if seen[enc] {
			t.Fatal("the torsion point has order below 8")
		}
		seen[enc] = true
		out = append(out, enc)
		q.Add(q, p)
	}
	if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		t.Fatal("the torsion point does not have order 8")
	}
	return out
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBlindPublicRejects(t *testing.T) {
	p := testPeriods[1]
	for i, enc := range smallOrderEncodings(t) {
		if _, err := BlindPublic(keys.ServicePublicKey(enc), "darkmatter", p); !errors.Is(err, ErrSmallOrder) {
			t.Errorf("small-order point %d (%x): err = %v, want ErrSmallOrder", i, enc, err)
		}
	}
	// y = 2 is not the y of any curve point.
	notPoint := keys.ServicePublicKey{2}
	if _, err := BlindPublic(notPoint, "darkmatter", p); !errors.Is(err, ErrNotPoint) {
		t.Errorf("y = 2: err = %v, want ErrNotPoint", err)
	}
	// A non-canonical encoding: y + p for a valid y < 19.
	nc, ok := nonCanonical()
	if !ok {
		t.Fatal("no non-canonical encoding found")
	}
	if _, err := BlindPublic(nc, "darkmatter", p); !errors.Is(err, ErrNonCanon) {
		t.Errorf("non-canonical %x: err = %v, want ErrNonCanon", nc, err)
	}
}

// nonCanonical returns an encoding y+p (y < 19) that filippo.io/edwards25519
// decodes, so BlindPublic must catch it itself.
func nonCanonical() (keys.ServicePublicKey, bool) {
	for y := int64(0); y < 19; y++ {
		v := new(big.Int).Add(refP, big.NewInt(y))
		var enc [32]byte
		v.FillBytes(enc[:])
		for i, j := 0, 31; i < j; i, j = i+1, j-1 {
			enc[i], enc[j] = enc[j], enc[i]
		}
		if _, err := new(edwards25519.Point).SetBytes(enc[:]); err == nil {
			return keys.ServicePublicKey(enc), true
		}
	}
	return keys.ServicePublicKey{}, false
}

// TestBlindPublicClearsTorsion: a key with a small-order component (A + T)
// is accepted, and its blinded key is h·(A+T) = h·A' computed with the full
// integer h (a multiple of 8), so it lies in the prime-order subgroup; the
// reference implementation agrees.
func TestBlindPublicClearsTorsion(t *testing.T) {
	A, err := new(edwards25519.Point).SetBytes(func() []byte { p := testKey(0).Public(); return p[:] }())
	if err != nil {
		t.Fatal(err)
	}
	T, _ := new(edwards25519.Point).SetBytes(smallOrderEncodings(t)[1][:])
	mixed := keys.ServicePublicKey(new(edwards25519.Point).Add(A, T).Bytes())
	p := testPeriods[1]
	got, err := BlindPublic(mixed, "darkmatter", p)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := refBlindPublic(mixed, "darkmatter", p.Number, lengthMinutes(p.Length))
	if !ok || BlindedPublicKey(want) != got {
		t.Fatalf("mixed-order key: BlindPublic %x, reference %x", got, want)
	}
	G, _ := new(edwards25519.Point).SetBytes(got[:])
	lMinus1, _ := new(edwards25519.Scalar).SetCanonicalBytes(mustHex(t, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"))
	// (ℓ−1)·G + G is the identity exactly when G has order dividing ℓ.
	if new(edwards25519.Point).Add(new(edwards25519.Point).ScalarMult(lMinus1, G), G).Equal(edwards25519.NewIdentityPoint()) != 1 {
		t.Fatal("blinded key of a mixed-order key has a torsion component")
	}
}

// TestReferenceCrossCheck compares BlindPublic, BlindPrivate and Sign with
// the math/big reference in ref_test.go, for many keys, networks and periods.
func TestReferenceCrossCheck(t *testing.T) {
	// First, the reference against RFC 8032 test 1, so it is known good.
	seed1 := [32]byte(mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	pub1 := [32]byte(mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
	sig1 := mustHex(t, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
	if !refVerify(pub1, nil, sig1) || refVerify(pub1, []byte{0}, sig1) {
		t.Fatal("the reference Ed25519 verifier disagrees with RFC 8032 test 1")
	}
	if got := refPublicOfSeed(seed1); got != pub1 {
		t.Fatalf("reference public key of RFC 8032 test 1 = %x", got)
	}
	n := 6
	if testing.Short() {
		n = 2
	}
	for i := range n {
		k := testKey(100 + i)
		pub := k.Public()
		network := testNetworks[i%len(testNetworks)]
		p := testPeriods[i%len(testPeriods)]
		got, err := BlindPublic(pub, network, p)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := refBlindPublic(pub, network, p.Number, lengthMinutes(p.Length))
		if !ok || BlindedPublicKey(want) != got {
			t.Fatalf("vector %d: BlindPublic %x, reference h·A %x", i, got, want)
		}
		bk := BlindPrivate(k, network, p)
		if ref := refBlindSecretPublic(k.Seed(), pub, network, p.Number, lengthMinutes(p.Length)); BlindedPublicKey(ref) != bk.Public() {
			t.Fatalf("vector %d: BlindPrivate().Public() %x, reference (h·a mod ℓ)·B %x", i, bk.Public(), ref)
		}
		msg := fmt.Appendf(nil, "message %d", i)
		if !refVerify([32]byte(got), msg, bk.Sign(msg)) {
			t.Fatalf("vector %d: the reference verifier rejects the blinded signature", i)
		}
	}
}

// refPublicOfSeed is the RFC 8032 public key of seed, by the reference.
func refPublicOfSeed(seed [32]byte) [32]byte {
	h := sha512Sum(seed[:])
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	return refCompress(refScalarMult(refLE(h[:32]), refBase))
}
