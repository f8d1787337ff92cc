package circuit

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// introVectorsFile holds ESTABLISH_INTRO vectors (spec/circuits.md §9).
const introVectorsFile = "intro.json"

type introVectors struct {
	Comment        string             `json:"comment"`
	EstablishIntro []establishIntroVx `json:"establish_intro"`
	Introduce1     []introduce1Vx     `json:"introduce1"`
}

type establishIntroVx struct {
	Name        string `json:"name"`
	Network     string `json:"network"`
	IntroNodeID string `json:"intro_node_id"`
	AuthSeed    string `json:"auth_key_seed"`
	Rate        uint16 `json:"rate"`
	Burst       uint16 `json:"burst"`
	// Outputs.
	AuthKey     string `json:"auth_key"`
	SignedBytes string `json:"signed_bytes"`
	Body        string `json:"body"`
}

type introduce1Vx struct {
	Name      string `json:"name"`
	AuthKey   string `json:"auth_key"`
	Encrypted string `json:"encrypted"`
	Body      string `json:"body"` // output; also the INTRODUCE2 body
}

func generateIntroVectors() *introVectors {
	hexOf := func(b []byte) string { return hexString(b) }
	v := &introVectors{Comment: "darkmatter introduction point vectors (spec/circuits.md §9). Hex unless noted. " +
		"establish_intro: inputs network (text), intro_node_id, auth_key_seed (RFC 8032 seed of the intro auth key), " +
		"rate, burst; outputs auth_key, signed_bytes (what the auth key signs), body (ESTABLISH_INTRO data, Ed25519 " +
		"signatures are deterministic). introduce1: body = auth_key ‖ encrypted, passed on unchanged as INTRODUCE2. " +
		"Checked by circuit TestIntroVectors (go test -run TestIntroVectors -update rewrites this file)."}
	v.EstablishIntro = []establishIntroVx{
		{Name: "relay defaults (rate 0, burst 0)", Network: "darkmatter", IntroNodeID: hexOf(testvec.Seq(0x40, 32)),
			AuthSeed: hexOf(testvec.Seq(0x01, 32))},
		{Name: "rate 25/s, burst 200, test network", Network: "test", IntroNodeID: hexOf(testvec.Seq(0xa0, 32)),
			AuthSeed: hexOf(testvec.Seq(0x80, 32)), Rate: 25, Burst: 200},
	}
	v.Introduce1 = []introduce1Vx{
		{Name: "one byte encrypted part", AuthKey: hexOf(testvec.Seq(0x10, 32)), Encrypted: "01"},
		{Name: "32 bytes encrypted part", AuthKey: hexOf(testvec.Seq(0x10, 32)), Encrypted: hexOf(testvec.Seq(0xe0, 32))},
	}
	return v
}

// TestIntroVectors checks spec/vectors/intro.json. With -update it
// regenerates the file.
func TestIntroVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, introVectorsFile, generateIntroVectors)
	if len(v.EstablishIntro) == 0 || len(v.Introduce1) == 0 {
		t.Fatal("no vectors")
	}
	for i := range v.EstablishIntro {
		x := &v.EstablishIntro[i]
		auth := ed25519.NewKeyFromSeed(testvec.Hex(t, x.AuthSeed))
		intro := keys.NodeID(testvec.Hex(t, x.IntroNodeID))
		pub := [32]byte(auth.Public().(ed25519.PublicKey))
		testvec.CheckHex(t, x.Name+": auth key", &x.AuthKey, pub[:])
		testvec.CheckHex(t, x.Name+": signed bytes", &x.SignedBytes, IntroSignedBytes(x.Network, intro, pub, x.Rate, x.Burst))
		body := marshalEstablishIntro(auth, x.Network, intro, x.Rate, x.Burst)
		testvec.CheckHex(t, x.Name+": body", &x.Body, body)
		e, err := parseEstablishIntro(testvec.Hex(t, x.Body), x.Network, intro)
		if err != nil || e.authKey != pub || e.rate != x.Rate || e.burst != x.Burst {
			t.Errorf("%s: the relay refuses or misreads the body: %v", x.Name, err)
		}
		other := intro
		other[0] ^= 1
		if _, err := parseEstablishIntro(testvec.Hex(t, x.Body), x.Network, other); err == nil {
			t.Errorf("%s: accepted at another intro point", x.Name)
		}
	}
	for i := range v.Introduce1 {
		x := &v.Introduce1[i]
		body := append(testvec.Hex(t, x.AuthKey), testvec.Hex(t, x.Encrypted)...)
		testvec.CheckHex(t, x.Name+": body", &x.Body, body)
		key, enc, ok := parseIntroduce1(testvec.Hex(t, x.Body))
		if !ok || hexString(key[:]) != x.AuthKey || hexString(enc) != x.Encrypted {
			t.Errorf("%s: misparsed", x.Name)
		}
	}
	if testvec.Update() {
		testvec.Save(t, introVectorsFile, v)
	}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
