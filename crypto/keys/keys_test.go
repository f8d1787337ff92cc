package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// testRand returns a deterministic reader for tests.
func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

func TestNodeID(t *testing.T) {
	k := IdentityFromSeed([32]byte{1})
	pub := k.Public()
	id := pub.NodeID()
	if id != NodeID(sha256.Sum256(pub[:])) {
		t.Fatal("NodeID is not SHA-256 of the identity key")
	}
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String() = %q, want 64 lowercase hex characters", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		got, err := ParseNodeID(in)
		if err != nil || got != id {
			t.Fatalf("ParseNodeID(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:63], s + "0", "g" + s[1:], " " + s[1:]} {
		if _, err := ParseNodeID(bad); err == nil || !strings.HasPrefix(err.Error(), "keys: ") {
			t.Errorf("ParseNodeID(%q) error = %v, want a keys: error", bad, err)
		}
	}
	text, _ := id.MarshalText()
	var back NodeID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("text round trip: %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("zz")); err == nil {
		t.Fatal("UnmarshalText accepted garbage")
	}
}

func TestIdentitySignVerify(t *testing.T) {
	k, err := GenerateIdentity(testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello darkmatter")
	sig := k.Sign(msg)
	pub := k.Public()
	if !pub.Verify(msg, sig[:]) {
		t.Fatal("valid signature rejected")
	}
	if !ed25519.Verify(ed25519.PublicKey(pub[:]), msg, sig[:]) {
		t.Fatal("signature is not plain Ed25519")
	}
	if pub.Verify([]byte("hello darkmatteR"), sig[:]) {
		t.Fatal("signature over another message accepted")
	}
	bad := sig
	bad[10] ^= 1
	if pub.Verify(msg, bad[:]) {
		t.Fatal("tampered signature accepted")
	}
	if pub.Verify(msg, sig[:63]) || pub.Verify(msg, append(sig[:], 0)) || pub.Verify(msg, nil) {
		t.Fatal("signature of the wrong length accepted")
	}
	other := IdentityFromSeed([32]byte{2}).Public()
	if other.Verify(msg, sig[:]) {
		t.Fatal("signature verified under another key")
	}
	if k.Seed() != IdentityFromSeed(k.Seed()).Seed() || IdentityFromSeed(k.Seed()).Public() != pub {
		t.Fatal("IdentityFromSeed(Seed()) differs")
	}
}

func TestServiceSignVerify(t *testing.T) {
	k := ServiceFromSeed([32]byte{7})
	sig := k.Sign([]byte("m"))
	if !k.Public().Verify([]byte("m"), sig[:]) || k.Public().Verify([]byte("n"), sig[:]) {
		t.Fatal("service signature check wrong")
	}
	if ServiceFromSeed(k.Seed()).Public() != k.Public() {
		t.Fatal("ServiceFromSeed(Seed()) differs")
	}
}

func TestGenerationIsDeterministic(t *testing.T) {
	a, err := GenerateNodeKeys(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateNodeKeys(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity.Public() != b.Identity.Public() || a.Link.Public() != b.Link.Public() ||
		a.Onion.Public() != b.Onion.Public() || *a.KEM.Public() != *b.KEM.Public() {
		t.Fatal("same reader gave different keys")
	}
	c, _ := GenerateNodeKeys(testRand(4))
	if a.Identity.Public() == c.Identity.Public() || a.Link.Public() == c.Link.Public() {
		t.Fatal("different readers gave the same keys")
	}
	if a.NodeID() != a.Identity.Public().NodeID() {
		t.Fatal("NodeKeys.NodeID wrong")
	}
	// Seeds are read in the documented order: identity, link, onion, KEM.
	r := testRand(3)
	var seed [32]byte
	io.ReadFull(r, seed[:])
	if IdentityFromSeed(seed).Public() != a.Identity.Public() {
		t.Fatal("identity seed is not the first 32 bytes")
	}
	io.ReadFull(r, seed[:])
	if LinkFromBytes(seed).Public() != a.Link.Public() {
		t.Fatal("link key is not the next 32 bytes")
	}
	io.ReadFull(r, seed[:])
	if OnionFromBytes(seed).Public() != a.Onion.Public() {
		t.Fatal("onion key is not the next 32 bytes")
	}
	var kseed [64]byte
	io.ReadFull(r, kseed[:])
	if *KEMFromSeed(kseed).Public() != *a.KEM.Public() {
		t.Fatal("KEM seed is not the next 64 bytes")
	}
}

func TestGenerateShortRead(t *testing.T) {
	short := func() io.Reader { return bytes.NewReader(make([]byte, 31)) }
	checks := map[string]func() error{
		"identity": func() error { _, err := GenerateIdentity(short()); return err },
		"link":     func() error { _, err := GenerateLink(short()); return err },
		"onion":    func() error { _, err := GenerateOnion(short()); return err },
		"kem":      func() error { _, err := GenerateKEM(bytes.NewReader(make([]byte, 63))); return err },
		"service":  func() error { _, err := GenerateService(short()); return err },
		"node":     func() error { _, err := GenerateNodeKeys(bytes.NewReader(make([]byte, 159))); return err },
		"encap": func() error {
			_, _, err := KEMFromSeed([64]byte{}).Public().Encapsulate(short())
			return err
		},
	}
	for name, f := range checks {
		if err := f(); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "keys: ") {
			t.Errorf("%s: error = %v, want a keys: error wrapping io.ErrUnexpectedEOF", name, err)
		}
	}
}

func TestNilRandUsesCryptoRand(t *testing.T) {
	a, err := GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateNodeKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity.Public() == b.Identity.Public() {
		t.Fatal("two nil-rand generations gave the same identity")
	}
	if _, err := GenerateService(nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.KEM.Public().Encapsulate(nil); err != nil {
		t.Fatal(err)
	}
}

func TestX25519Agreement(t *testing.T) {
	link, _ := GenerateLink(testRand(5))
	onion, _ := GenerateOnion(testRand(6))
	if link.Bytes() == onion.Bytes() {
		t.Fatal("different readers gave equal keys")
	}
	if LinkFromBytes(link.Bytes()).Public() != link.Public() || OnionFromBytes(onion.Bytes()).Public() != onion.Public() {
		t.Fatal("FromBytes(Bytes()) differs")
	}
	lp, err := link.Public().ECDH()
	if err != nil {
		t.Fatal(err)
	}
	op, err := onion.Public().ECDH()
	if err != nil {
		t.Fatal(err)
	}
	s1, err := link.ECDH().ECDH(op)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := onion.ECDH().ECDH(lp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1, s2) {
		t.Fatal("X25519 shared secrets differ")
	}
	if !bytes.Equal(lp.Bytes(), link.ECDH().PublicKey().Bytes()) {
		t.Fatal("Public() differs from crypto/ecdh")
	}
}

func TestKEM(t *testing.T) {
	k, err := GenerateKEM(testRand(8))
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	if err := pub.Validate(); err != nil {
		t.Fatal(err)
	}
	ct, ss, err := pub.Encapsulate(testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	ct2, ss2, _ := pub.Encapsulate(testRand(9))
	if ct != ct2 || ss != ss2 {
		t.Fatal("encapsulation with the same reader differs")
	}
	got, err := k.Decapsulate(ct[:])
	if err != nil || got != ss {
		t.Fatalf("Decapsulate = %x, %v; want %x", got, err, ss)
	}
	ct[0] ^= 1
	got, err = k.Decapsulate(ct[:])
	if err != nil || got == ss {
		t.Fatal("corrupted ciphertext gave the same key (or an error)")
	}
	for _, n := range []int{0, KEMCiphertextSize - 1, KEMCiphertextSize + 1} {
		if _, err := k.Decapsulate(make([]byte, n)); err == nil || !strings.HasPrefix(err.Error(), "keys: ") {
			t.Errorf("Decapsulate(%d bytes) error = %v", n, err)
		}
	}
	// Public returns a copy.
	pub[0] ^= 1
	if *k.Public() == *pub {
		t.Fatal("Public returned the key's own array")
	}
	if KEMFromSeed(k.Seed()).Public() == nil || *KEMFromSeed(k.Seed()).Public() != *k.Public() {
		t.Fatal("KEMFromSeed(Seed()) differs")
	}
	// A coefficient >= q makes the key malformed (FIPS 203 modulus check).
	var bad KEMPublicKey
	for i := range 384 {
		bad[i] = 0xff
	}
	if err := bad.Validate(); err == nil {
		t.Fatal("malformed KEM public key accepted")
	}
	if _, _, err := bad.Encapsulate(testRand(1)); err == nil {
		t.Fatal("Encapsulate to a malformed key succeeded")
	}
}

func TestPrivateKeysRedacted(t *testing.T) {
	n, _ := GenerateNodeKeys(testRand(10))
	s := ServiceFromSeed([32]byte{0xab, 0xcd})
	for _, k := range []any{n.Identity, n.Link, n.Onion, n.KEM, s} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, k)
			if !strings.Contains(out, "redacted") {
				t.Errorf("%s of %T = %q, want it redacted", verb, k, out)
			}
		}
	}
}

// AppendSigned lays out context ‖ len(network) ‖ network ‖ body, and
// CheckNetwork takes 1..255-byte names only.
func TestAppendSigned(t *testing.T) {
	got := AppendSigned([]byte{9}, "ctx\x00", "net", []byte{1, 2})
	if want := []byte{9, 'c', 't', 'x', 0, 3, 'n', 'e', 't', 1, 2}; !bytes.Equal(got, want) {
		t.Fatalf("AppendSigned = %x, want %x", got, want)
	}
	for n, ok := range map[int]bool{0: false, 1: true, 255: true, 256: false} {
		if err := CheckNetwork(strings.Repeat("n", n)); (err == nil) != ok {
			t.Errorf("CheckNetwork(%d bytes) = %v", n, err)
		}
	}
}
