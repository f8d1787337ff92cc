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

// Both suites, with the circl DH, run the same handshake as flynn/noise's
// reference suites and name the standard protocols.
func TestSuitesMatchReference(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ours, ref noise.CipherSuite
	}{
		{"Noise_IK_25519_ChaChaPoly_BLAKE2s", Suite, noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)},
		{"Noise_IK_25519_AESGCM_BLAKE2s", SuiteAESGCM, noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashBLAKE2s)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := "Noise_IK_" + string(tc.ours.Name()); got != tc.name {
				t.Fatalf("protocol name %q", got)
			}
			run := func(cs noise.CipherSuite) (m1, m2, ct []byte) {
				is, _ := cs.GenerateKeypair(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
				rs, _ := cs.GenerateKeypair(bytes.NewReader(bytes.Repeat([]byte{2}, 32)))
				hi, err := noise.NewHandshakeState(noise.Config{CipherSuite: cs, Pattern: noise.HandshakeIK, Initiator: true,
					Random: bytes.NewReader(bytes.Repeat([]byte{3}, 32)), StaticKeypair: is, PeerStatic: rs.Public})
				if err != nil {
					t.Fatal(err)
				}
				hr, err := noise.NewHandshakeState(noise.Config{CipherSuite: cs, Pattern: noise.HandshakeIK,
					Random: bytes.NewReader(bytes.Repeat([]byte{4}, 32)), StaticKeypair: rs})
				if err != nil {
					t.Fatal(err)
				}
				m1, _, _, err = hi.WriteMessage(nil, []byte("one"))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, _, err = hr.ReadMessage(nil, m1); err != nil {
					t.Fatal(err)
				}
				m2, _, rsend, err := hr.WriteMessage(nil, []byte("two"))
				if err != nil {
					t.Fatal(err)
				}
				_, _, irecv, err := hi.ReadMessage(nil, m2)
				if err != nil {
					t.Fatal(err)
				}
				ct, _ = rsend.Encrypt(nil, nil, []byte("transport"))
				if pt, err := irecv.Decrypt(nil, nil, ct); err != nil || string(pt) != "transport" {
					t.Fatalf("transport message: %q, %v", pt, err)
				}
				return m1, m2, ct
			}
			a1, a2, a3 := run(tc.ours)
			b1, b2, b3 := run(tc.ref)
			if !bytes.Equal(a1, b1) || !bytes.Equal(a2, b2) || !bytes.Equal(a3, b3) {
				t.Fatal("transcript differs from the reference suite")
			}
		})
	}
	// The two suites are different protocols.
	if bytes.Equal(Suite.Name(), SuiteAESGCM.Name()) {
		t.Fatal("suites share a name")
	}
}
