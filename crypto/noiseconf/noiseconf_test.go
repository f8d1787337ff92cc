package noiseconf

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// The ecdh-based DH must agree with flynn/noise's reference DH25519.
func TestMatchesReference(t *testing.T) {
	for i := 0; i < 20; i++ {
		a, err := DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := noise.DH25519.GenerateKeypair(rand.Reader)
		ref, _ := noise.DH25519.GenerateKeypair(bytes.NewReader(a.Private))
		if !bytes.Equal(ref.Public, a.Public) {
			t.Fatal("public key differs from reference")
		}
		x, err := DH25519.DH(a.Private, b.Public)
		if err != nil {
			t.Fatal(err)
		}
		y, err := noise.DH25519.DH(b.Private, a.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Fatal("shared secret differs from reference")
		}
	}
}

func TestLowOrderRejected(t *testing.T) {
	a, _ := DH25519.GenerateKeypair(rand.Reader)
	if _, err := DH25519.DH(a.Private, make([]byte, 32)); err == nil {
		t.Fatal("all-zero public key accepted")
	}
}

func BenchmarkDH(b *testing.B) {
	x, _ := DH25519.GenerateKeypair(rand.Reader)
	y, _ := DH25519.GenerateKeypair(rand.Reader)
	b.Run("ecdh", func(b *testing.B) {
		for b.Loop() {
			DH25519.DH(x.Private, y.Public)
		}
	})
	b.Run("flynn", func(b *testing.B) {
		for b.Loop() {
			noise.DH25519.DH(x.Private, y.Public)
		}
	})
}
