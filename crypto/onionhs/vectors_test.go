package onionhs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/crypto/layer"
	"github.com/darkmatter/darkmatter/internal/testvec"
	"github.com/flynn/noise"
)

// hsVectorsFile is the JSON test vector file in spec/vectors shared with
// spec/circuits.md §3.
const hsVectorsFile = "onionhs.json"

type hsVectors struct {
	Comment        string     `json:"comment"`
	ProtocolName   string     `json:"protocol_name"`
	ProloguePrefix string     `json:"prologue_prefix"`
	Vectors        []hsVector `json:"vectors"`
}

type hsVector struct {
	Network      string `json:"network"`
	OnionPrivate string `json:"onion_private"`
	OnionPublic  string `json:"onion_public"`
	KEMSeed      string `json:"kem_seed"`
	KEMPublic    string `json:"kem_public"`
	ClientRandom string `json:"client_random"`
	RelayRandom  string `json:"relay_random"`
	// Intermediate values, for implementers.
	KEMCiphertext string `json:"kem_ciphertext"`
	KEMShared     string `json:"kem_shared_secret"`
	ClientMessage string `json:"client_message"`
	RelayMessage  string `json:"relay_message"`
	SplitKeys     string `json:"split_keys"`
	ForwardKey    string `json:"forward_key"`
	BackwardKey   string `json:"backward_key"`
}

func generateHSVectors() *hsVectors {
	v := &hsVectors{
		Comment: "darkmatter circuit handshake vectors (spec/circuits.md §3). Hex unless noted. " +
			"Inputs: network (UTF-8), onion_private (X25519), kem_seed (ML-KEM-768 d||z), client_random = " +
			"ML-KEM encapsulation seed m (32) || client ephemeral X25519 private key (32), relay_random = relay " +
			"ephemeral X25519 private key (32). kem_ciphertext is the payload of the client's Noise message; " +
			"kem_shared_secret is the PSK; split_keys is k1 || k2 from the Noise Split(); forward_key || " +
			"backward_key = HKDF-SHA256(split_keys, no salt, info \"darkmatter layer keys v1\", 64). The onion " +
			"and KEM keys are onion[0] and kem[0] of spec/vectors/keys.json. Checked by crypto/onionhs " +
			"TestHandshakeVectors (go test -run TestHandshakeVectors -update rewrites this file).",
		ProtocolName:   "Noise_NKpsk2_25519_ChaChaPoly_BLAKE2s",
		ProloguePrefix: prologuePrefix,
	}
	for _, tc := range []struct {
		network      string
		clientRandom []byte
		relayRandom  []byte
	}{
		{"darkmatter", testvec.Seq(0x40, 64), testvec.Seq(0x80, 32)},
		{"darkmatter-test", testvec.Seq(0xa0, 64), testvec.Seq(0xe0, 32)},
	} {
		v.Vectors = append(v.Vectors, hsVector{
			Network:      tc.network,
			OnionPrivate: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			KEMSeed:      hex.EncodeToString(testvec.Seq(0, 64)),
			ClientRandom: hex.EncodeToString(tc.clientRandom),
			RelayRandom:  hex.EncodeToString(tc.relayRandom),
		})
	}
	return v
}

// TestHandshakeVectors checks spec/vectors/onionhs.json: ClientStart,
// Respond and Finish must reproduce every message and key, and a plain
// flynn/noise handshake with its own Curve25519 (not crypto/noiseconf) must
// produce the same transcript, so the wire format is standard Noise.
func TestHandshakeVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, hsVectorsFile, generateHSVectors)
	testvec.Check(t, "prologue_prefix", &v.ProloguePrefix, prologuePrefix)
	for i := range v.Vectors {
		tv := &v.Vectors[i]
		t.Run(fmt.Sprintf("%d-%s", i, tv.Network), func(t *testing.T) {
			onion, err := keys.GenerateOnion(bytes.NewReader(testvec.Hex(t, tv.OnionPrivate)))
			if err != nil {
				t.Fatal(err)
			}
			kem, err := keys.GenerateKEM(bytes.NewReader(testvec.Hex(t, tv.KEMSeed)))
			if err != nil {
				t.Fatal(err)
			}
			onionPub := onion.Public()
			testvec.CheckHex(t, "onion_public", &tv.OnionPublic, onionPub[:])
			testvec.CheckHex(t, "kem_public", &tv.KEMPublic, kem.Public()[:])
			clientRandom := testvec.Hex(t, tv.ClientRandom)
			relayRandom := testvec.Hex(t, tv.RelayRandom)
			if len(clientRandom) != 64 || len(relayRandom) != 32 {
				t.Fatalf("client_random %d bytes, relay_random %d bytes", len(clientRandom), len(relayRandom))
			}

			// The package, end to end.
			pub := RelayKeys{Onion: onionPub, KEM: kem.Public()}
			st, msg, err := ClientStart(bytes.NewReader(clientRandom), tv.Network, pub)
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "client_message", &tv.ClientMessage, msg)
			priv := RelayPrivate{Onion: onion, KEM: kem}
			reply, relayKeys, err := Respond(bytes.NewReader(relayRandom), tv.Network, priv, testvec.Hex(t, tv.ClientMessage))
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "relay_message", &tv.RelayMessage, reply)
			clientKeys, err := st.Finish(testvec.Hex(t, tv.RelayMessage))
			if err != nil {
				t.Fatal(err)
			}
			if clientKeys != relayKeys {
				t.Fatal("client and relay derive different keys")
			}
			testvec.CheckHex(t, "forward_key", &tv.ForwardKey, clientKeys.Forward[:])
			testvec.CheckHex(t, "backward_key", &tv.BackwardKey, clientKeys.Backward[:])

			// The same handshake spelled out with flynn/noise and the
			// standard DH, from spec/circuits.md §3.
			ct, ss, err := kem.Public().Encapsulate(bytes.NewReader(clientRandom[:32]))
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "kem_ciphertext", &tv.KEMCiphertext, ct[:])
			testvec.CheckHex(t, "kem_shared_secret", &tv.KEMShared, ss[:])
			suite := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
			prologue := []byte(v.ProloguePrefix + tv.Network)
			ini, err := noise.NewHandshakeState(noise.Config{
				CipherSuite: suite, Random: bytes.NewReader(clientRandom[32:]), Pattern: noise.HandshakeNK,
				Initiator: true, Prologue: prologue, PeerStatic: onionPub[:],
				PresharedKey: ss[:], PresharedKeyPlacement: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			onionPriv := onion.Bytes()
			res, err := noise.NewHandshakeState(noise.Config{
				CipherSuite: suite, Random: bytes.NewReader(relayRandom), Pattern: noise.HandshakeNK,
				Prologue: prologue, StaticKeypair: noise.DHKey{Private: onionPriv[:], Public: onionPub[:]},
				PresharedKey: ss[:], PresharedKeyPlacement: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			m1, _, _, err := ini.WriteMessage(nil, ct[:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m1, msg) {
				t.Error("plain Noise message 1 differs from ClientStart's")
			}
			if p, _, _, err := res.ReadMessage(nil, m1); err != nil || !bytes.Equal(p, ct[:]) {
				t.Fatalf("plain Noise: responder reads message 1: %v", err)
			}
			m2, rcs1, rcs2, err := res.WriteMessage(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m2, reply) {
				t.Error("plain Noise message 2 differs from Respond's")
			}
			_, cs1, cs2, err := ini.ReadMessage(nil, m2)
			if err != nil {
				t.Fatal(err)
			}
			k1, k2 := cs1.UnsafeKey(), cs2.UnsafeKey()
			if rk1, rk2 := rcs1.UnsafeKey(), rcs2.UnsafeKey(); k1 != rk1 || k2 != rk2 {
				t.Fatal("plain Noise: split keys differ between the sides")
			}
			split := append(k1[:], k2[:]...)
			testvec.CheckHex(t, "split_keys", &tv.SplitKeys, split)
			if lk, err := layer.DeriveKeys(split); err != nil || lk != clientKeys {
				t.Errorf("layer.DeriveKeys(split_keys) differs from the handshake's keys: %v", err)
			}
			if got := fmt.Sprintf("Noise_%spsk2_%s", noise.HandshakeNK.Name, suite.Name()); got != v.ProtocolName {
				t.Errorf("protocol name %q, file has %q", got, v.ProtocolName)
			}

			// Another network's relay rejects the same message.
			if _, _, err := Respond(bytes.NewReader(relayRandom), tv.Network+"x", priv, msg); !errors.Is(err, ErrHandshake) {
				t.Errorf("other network: %v, want ErrHandshake", err)
			}
		})
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, hsVectorsFile, v)
	}
}
