package hs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/darkmatter/darkmatter/crypto/hsblind"
	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file in spec/vectors shared with
// spec/hidden-services.md §3–§6.
const vectorsFile = "hs.json"

type hsVectors struct {
	Comment string          `json:"comment"`
	Service vecService      `json:"service"`
	Descs   []vecDescriptor `json:"descriptors"`
	Intros  []vecIntro      `json:"introductions"`
	PoW     []vecPoW        `json:"pow"`
}

type vecService struct {
	Network        string `json:"network"`
	IdentitySeed   string `json:"identity_seed"`
	IdentityPublic string `json:"identity_public"`
	PeriodNumber   uint64 `json:"period_number"`
	LengthMinutes  uint64 `json:"period_length_minutes"`
	Blinded        string `json:"blinded_public"`
	Subcredential  string `json:"subcredential"`
	DescriptorKey  string `json:"descriptor_key"`
	EncPrivate     string `json:"enc_private"`
	EncPublic      string `json:"enc_public"`
	KEMSeed        string `json:"kem_seed"`
	KEMPublic      string `json:"kem_public"`
}

type vecIntroPoint struct {
	Relay   string `json:"relay"`
	AuthKey string `json:"auth_key"`
}

type vecDescriptor struct {
	Name           string          `json:"name"`
	PoWEffort      uint32          `json:"pow_effort"`
	PoWSeed        string          `json:"pow_seed"`
	Intros         []vecIntroPoint `json:"intros"`
	ClientPrivate  []string        `json:"client_private"`
	ClientPublic   []string        `json:"client_public"` // base32, as printed
	Random         string          `json:"random"`
	InnerPlaintext string          `json:"inner_plaintext"`
	OuterPlaintext string          `json:"outer_plaintext"`
	Value          string          `json:"value"`
}

type vecIntro struct {
	AuthKey            string `json:"auth_key"`
	Cookie             string `json:"cookie"`
	Rendezvous         string `json:"rendezvous"`
	PoWEffort          uint32 `json:"pow_effort"`
	PoWNonce           string `json:"pow_nonce"`
	ClientRandom       string `json:"client_random"`
	ServiceRandom      string `json:"service_random"`
	Prologue           string `json:"prologue"`
	IntroducePlaintext string `json:"introduce_plaintext"`
	KEMCiphertext      string `json:"kem_ciphertext"`
	KEMShared          string `json:"kem_shared_secret"`
	Encrypted          string `json:"introduce_encrypted"`
	Reply              string `json:"reply"`
	SplitKeys          string `json:"split_keys"`
	ClientMessage      string `json:"client_message"` // plaintext, UTF-8
	ClientSealed       string `json:"client_sealed"`
	ServiceMessage     string `json:"service_message"` // plaintext, UTF-8
	ServiceSealed      string `json:"service_sealed"`
}

type vecPoW struct {
	Seed    string `json:"seed"`
	Blinded string `json:"blinded"`
	Effort  uint32 `json:"effort"`
	Nonce   string `json:"nonce"`
	Hash    string `json:"hash"`
}

func generateVectors() *hsVectors {
	v := &hsVectors{
		Comment: "darkmatter hidden-service vectors (spec/hidden-services.md §3–§6). Hex unless noted. " +
			"service: identity_seed is the Ed25519 seed of the .dark key; blinded_public is §2's key for period_number/period_length_minutes; " +
			"enc_private is the service's X25519 key, kem_seed its ML-KEM-768 seed (d||z). " +
			"descriptors: random is the byte stream SealDescriptor reads: salt (16), then with clients the descriptor cookie (32), the ephemeral " +
			"X25519 private key (32) and each padding entry (56); inner_plaintext and outer_plaintext are the two layers' plaintexts; value is the DHT record value. " +
			"Each client_private key opens its descriptor; other keys get ErrNotAuthorised. " +
			"introductions: client_random = ML-KEM encapsulation seed m (32) || client ephemeral X25519 private key (32); service_random = service " +
			"ephemeral X25519 private key (32); introduce_encrypted is INTRODUCE1's encrypted part (version || Noise message 1), reply the JOIN payload; " +
			"split_keys = k1 || k2 of the Noise Split(); client_sealed is the client's first E2E message (sealed with k1, nonce 0), service_sealed the service's " +
			"(k2, nonce 0). pow: nonce is the first valid one counting up from zero as a 128-bit big-endian integer; hash is its BLAKE2b-256. " +
			"Checked by crypto/hs TestVectors (go test ./crypto/hs -run TestVectors -update rewrites this file).",
		Service: vecService{
			Network:       "darkmatter",
			IdentitySeed:  hex.EncodeToString(testvec.Seq(0x10, 32)),
			PeriodNumber:  20513,
			LengthMinutes: 1440,
			EncPrivate:    hex.EncodeToString(testvec.Seq(0x30, 32)),
			KEMSeed:       hex.EncodeToString(testvec.Seq(0x50, 64)),
		},
	}
	intros := func(n int) []vecIntroPoint {
		var ips []vecIntroPoint
		for i := range n {
			ips = append(ips, vecIntroPoint{Relay: hex.EncodeToString(testvec.Seq(byte(0x60+i), 32)), AuthKey: hex.EncodeToString(testvec.Seq(byte(0x80+i), 32))})
		}
		return ips
	}
	v.Descs = []vecDescriptor{
		{Name: "public", PoWEffort: 0, PoWSeed: hex.EncodeToString(testvec.Seq(0xa0, 32)), Intros: intros(3), Random: hex.EncodeToString(testvec.Seq(0xc0, 16))},
		{Name: "client auth", PoWEffort: 250, PoWSeed: hex.EncodeToString(testvec.Seq(0xa1, 32)), Intros: intros(2),
			ClientPrivate: []string{hex.EncodeToString(testvec.Seq(0xd0, 32)), hex.EncodeToString(testvec.Seq(0xe0, 32))},
			Random:        hex.EncodeToString(testvec.Seq(0x01, 16+32+32+14*clientEntryLen))},
	}
	v.Intros = []vecIntro{{
		AuthKey:        hex.EncodeToString(testvec.Seq(0x80, 32)),
		Cookie:         hex.EncodeToString(testvec.Seq(0xf0, CookieLen)),
		Rendezvous:     hex.EncodeToString(testvec.Seq(0x70, 32)),
		PoWEffort:      250,
		PoWNonce:       "", // filled from the pow vector below
		ClientRandom:   hex.EncodeToString(testvec.Seq(0x40, 64)),
		ServiceRandom:  hex.EncodeToString(testvec.Seq(0x90, 32)),
		ClientMessage:  "hello, service",
		ServiceMessage: "hello, client",
	}}
	v.PoW = []vecPoW{
		{Seed: hex.EncodeToString(testvec.Seq(0xa1, 32)), Effort: 250},
		{Seed: hex.EncodeToString(testvec.Seq(0xa1, 32)), Effort: 1000},
		{Seed: hex.EncodeToString(testvec.Seq(0xa1, 32)), Effort: 0},
	}
	return v
}

// TestVectors checks spec/vectors/hs.json.
func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateVectors)
	sv := &v.Service
	id := keys.ServiceFromSeed([32]byte(testvec.Hex(t, sv.IdentitySeed)))
	idPub := id.Public()
	testvec.CheckHex(t, "identity_public", &sv.IdentityPublic, idPub[:])
	p := hsblind.Period{Number: sv.PeriodNumber, Length: time.Duration(sv.LengthMinutes) * time.Minute}
	blinded, err := hsblind.BlindPublic(idPub, sv.Network, p)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "blinded_public", &sv.Blinded, blinded[:])
	sub, err := Subcredential(sv.Network, idPub, blinded)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "subcredential", &sv.Subcredential, sub[:])
	dk := DescriptorKey(blinded)
	testvec.CheckHex(t, "descriptor_key", &sv.DescriptorKey, dk[:])
	secrets := ServiceSecrets{
		Enc: keys.OnionFromBytes([32]byte(testvec.Hex(t, sv.EncPrivate))),
		KEM: keys.KEMFromSeed([64]byte(testvec.Hex(t, sv.KEMSeed))),
	}
	encPub := secrets.EncPublic()
	testvec.CheckHex(t, "enc_public", &sv.EncPublic, encPub[:])
	testvec.CheckHex(t, "kem_public", &sv.KEMPublic, secrets.KEM.Public()[:])

	for i := range v.Descs {
		dv := &v.Descs[i]
		t.Run("descriptor "+dv.Name, func(t *testing.T) {
			d := &Descriptor{Enc: encPub, KEM: secrets.KEM.Public(), PoWEffort: dv.PoWEffort, PoWSeed: [32]byte(testvec.Hex(t, dv.PoWSeed))}
			for _, ip := range dv.Intros {
				d.Intros = append(d.Intros, IntroPoint{Relay: keys.NodeID(testvec.Hex(t, ip.Relay)), AuthKey: [32]byte(testvec.Hex(t, ip.AuthKey))})
			}
			var clients []*keys.ClientAuthPrivateKey
			var pubs []keys.ClientAuthPublicKey
			if testvec.Update() {
				dv.ClientPublic = make([]string, len(dv.ClientPrivate))
			}
			for j, s := range dv.ClientPrivate {
				k := keys.ClientAuthFromBytes([32]byte(testvec.Hex(t, s)))
				clients = append(clients, k)
				pubs = append(pubs, k.Public())
				testvec.Check(t, "client_public", &dv.ClientPublic[j], k.Public().String())
			}
			val, err := SealDescriptor(bytes.NewReader(testvec.Hex(t, dv.Random)), d, sv.Network, idPub, p, pubs)
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "value", &dv.Value, val)
			val = testvec.Hex(t, dv.Value)
			testvec.CheckHex(t, "inner_plaintext", &dv.InnerPlaintext, appendInner(nil, d))
			f := &fixture{network: sv.Network, id: id, p: p, blinded: blinded}
			testvec.CheckHex(t, "outer_plaintext", &dv.OuterPlaintext, f.openOuter(t, val))

			var reader *keys.ClientAuthPrivateKey
			if len(clients) > 0 {
				reader = clients[len(clients)-1]
			}
			got, err := OpenDescriptor(val, sv.Network, idPub, p, reader)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Fatal("opened descriptor differs")
			}
			for _, k := range clients {
				if _, err := OpenDescriptor(val, sv.Network, idPub, p, k); err != nil {
					t.Fatalf("listed client: %v", err)
				}
			}
			if len(clients) > 0 {
				if _, err := OpenDescriptor(val, sv.Network, idPub, p, keys.ClientAuthFromBytes([32]byte{1})); !errors.Is(err, ErrNotAuthorised) {
					t.Fatalf("unlisted client: %v", err)
				}
			}
		})
	}

	for i := range v.PoW {
		pv := &v.PoW[i]
		if testvec.Update() {
			pv.Blinded = hex.EncodeToString(blinded[:])
		}
		seed := [32]byte(testvec.Hex(t, pv.Seed))
		b := hsblind.BlindedPublicKey(testvec.Hex(t, pv.Blinded))
		n, err := solvePoW(context.Background(), seed, b, pv.Effort, [16]byte{})
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, "pow nonce", &pv.Nonce, n[:])
		n = [16]byte(testvec.Hex(t, pv.Nonce))
		if !CheckPoW(seed, b, pv.Effort, n) {
			t.Fatalf("pow %d: nonce refused", i)
		}
		h := powHash(seed, b, pv.Effort, n)
		testvec.CheckHex(t, "pow hash", &pv.Hash, h[:])
	}

	for i := range v.Intros {
		iv := &v.Intros[i]
		t.Run(fmt.Sprintf("introduction %d", i), func(t *testing.T) {
			if testvec.Update() {
				iv.PoWNonce = v.PoW[0].Nonce
			}
			in := Intro{
				Cookie:     [CookieLen]byte(testvec.Hex(t, iv.Cookie)),
				Rendezvous: keys.NodeID(testvec.Hex(t, iv.Rendezvous)),
				PoWEffort:  iv.PoWEffort,
				PoWNonce:   [16]byte(testvec.Hex(t, iv.PoWNonce)),
			}
			authKey := [32]byte(testvec.Hex(t, iv.AuthKey))
			tg := Target{Network: sv.Network, Identity: idPub, Blinded: blinded, AuthKey: authKey, Enc: encPub, KEM: secrets.KEM.Public()}
			clientRandom, serviceRandom := testvec.Hex(t, iv.ClientRandom), testvec.Hex(t, iv.ServiceRandom)
			h, enc, err := ClientIntroduce(bytes.NewReader(clientRandom), tg, in)
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "introduce_encrypted", &iv.Encrypted, enc)
			enc = testvec.Hex(t, iv.Encrypted)
			got, replay, reply, sl, err := ServiceAccept(bytes.NewReader(serviceRandom), sv.Network, idPub, blinded, authKey, secrets, enc)
			if err != nil {
				t.Fatal(err)
			}
			if got != in || !bytes.Equal(replay[:], enc[1:33]) {
				t.Fatal("service read another intro")
			}
			testvec.CheckHex(t, "reply", &iv.Reply, reply)
			cl, err := h.Finish(testvec.Hex(t, iv.Reply))
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "client_sealed", &iv.ClientSealed, cl.Seal(nil, []byte(iv.ClientMessage)))
			if pt, err := sl.Open(nil, testvec.Hex(t, iv.ClientSealed)); err != nil || string(pt) != iv.ClientMessage {
				t.Fatalf("service opens client_sealed: %v", err)
			}
			testvec.CheckHex(t, "service_sealed", &iv.ServiceSealed, sl.Seal(nil, []byte(iv.ServiceMessage)))
			if pt, err := cl.Open(nil, testvec.Hex(t, iv.ServiceSealed)); err != nil || string(pt) != iv.ServiceMessage {
				t.Fatalf("client opens service_sealed: %v", err)
			}

			// The same handshake with plain flynn/noise and the standard
			// DH, from the spec's description.
			pro := []byte("darkmatter hs v1\x00")
			pro = append(pro, byte(len(sv.Network)))
			pro = append(append(append(append(pro, sv.Network...), idPub[:]...), blinded[:]...), authKey[:]...)
			testvec.CheckHex(t, "prologue", &iv.Prologue, pro)
			pt := append(append(append(append([]byte{}, in.Cookie[:]...), in.Rendezvous[:]...), binary.BigEndian.AppendUint32(nil, in.PoWEffort)...), in.PoWNonce[:]...)
			pt = append(pt, make([]byte, IntroPlaintextLen-len(pt))...)
			testvec.CheckHex(t, "introduce_plaintext", &iv.IntroducePlaintext, pt)
			ct, ss, err := secrets.KEM.Public().Encapsulate(bytes.NewReader(clientRandom[:32]))
			if err != nil {
				t.Fatal(err)
			}
			testvec.CheckHex(t, "kem_ciphertext", &iv.KEMCiphertext, ct[:])
			testvec.CheckHex(t, "kem_shared_secret", &iv.KEMShared, ss[:])
			suite := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
			ini, err := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: bytes.NewReader(clientRandom[32:]), Pattern: noise.HandshakeNK,
				Initiator: true, Prologue: pro, PeerStatic: encPub[:], PresharedKey: ss[:], PresharedKeyPlacement: 2})
			if err != nil {
				t.Fatal(err)
			}
			encPriv := secrets.Enc.Bytes()
			res, err := noise.NewHandshakeState(noise.Config{CipherSuite: suite, Random: bytes.NewReader(serviceRandom), Pattern: noise.HandshakeNK,
				Prologue: pro, StaticKeypair: noise.DHKey{Private: encPriv[:], Public: encPub[:]}, PresharedKey: ss[:], PresharedKeyPlacement: 2})
			if err != nil {
				t.Fatal(err)
			}
			m1, _, _, err := ini.WriteMessage([]byte{1}, append(ct[:], pt...))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m1, enc) {
				t.Error("plain Noise message 1 differs from ClientIntroduce's")
			}
			if _, _, _, err := res.ReadMessage(nil, m1[1:]); err != nil {
				t.Fatal(err)
			}
			m2, _, _, err := res.WriteMessage(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m2, reply) {
				t.Error("plain Noise message 2 differs from ServiceAccept's")
			}
			_, cs1, cs2, err := ini.ReadMessage(nil, m2)
			if err != nil {
				t.Fatal(err)
			}
			k1, k2 := cs1.UnsafeKey(), cs2.UnsafeKey()
			testvec.CheckHex(t, "split_keys", &iv.SplitKeys, append(k1[:], k2[:]...))
			if c, _ := cs1.Encrypt(nil, nil, []byte(iv.ClientMessage)); !bytes.Equal(c, testvec.Hex(t, iv.ClientSealed)) {
				t.Error("client_sealed is not k1's first Noise transport message")
			}
		})
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}
