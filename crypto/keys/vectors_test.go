package keys

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file in spec/vectors shared with
// spec/keys.md.
const vectorsFile = "keys.json"

type keyVectors struct {
	Comment  string `json:"comment"`
	Identity []struct {
		Seed   string `json:"seed"`
		Public string `json:"public"`
		NodeID string `json:"node_id"`
		Msg    string `json:"message"`
		Sig    string `json:"signature"`
	} `json:"identity"`
	Link  []x25519Vector `json:"link"`
	Onion []x25519Vector `json:"onion"`
	KEM   []struct {
		Seed       string `json:"seed"`
		Public     string `json:"public"`
		EncapSeed  string `json:"encapsulation_seed"`
		Ciphertext string `json:"ciphertext"`
		SharedKey  string `json:"shared_key"`
	} `json:"kem"`
	Service []struct {
		Seed    string `json:"seed"`
		Public  string `json:"public"`
		Address string `json:"address"`
	} `json:"service"`
	BadAddresses []struct {
		Address string `json:"address"`
		Error   string `json:"error"`
	} `json:"bad_addresses"`
	KeyFiles []struct {
		Type string `json:"type"`
		Seed string `json:"seed"`
		File string `json:"file"`
	} `json:"key_files"`
}

type x25519Vector struct {
	Private string `json:"private"`
	Public  string `json:"public"`
}

var addressErrors = map[string]error{
	"length": ErrAddressLength, "encoding": ErrAddressEncoding,
	"version": ErrAddressVersion, "checksum": ErrAddressChecksum,
}

// TestVectors checks spec/vectors/keys.json. With -update it recomputes
// every output field from the inputs and rewrites the file.
func TestVectors(t *testing.T) {
	var v keyVectors
	testvec.Load(t, vectorsFile, &v)
	for i := range v.Identity {
		tv := &v.Identity[i]
		k := IdentityFromSeed([32]byte(testvec.Hex(t, tv.Seed)))
		pub := k.Public()
		testvec.CheckHex(t, fmt.Sprintf("identity[%d] public", i), &tv.Public, pub[:])
		testvec.Check(t, fmt.Sprintf("identity[%d] node_id", i), &tv.NodeID, pub.NodeID().String())
		sig := k.Sign(testvec.Hex(t, tv.Msg))
		testvec.CheckHex(t, fmt.Sprintf("identity[%d] signature", i), &tv.Sig, sig[:])
		if !pub.Verify(testvec.Hex(t, tv.Msg), testvec.Hex(t, tv.Sig)) {
			t.Errorf("identity vector %d: signature does not verify", i)
		}
	}
	for _, set := range []struct {
		name string
		vs   []x25519Vector
		pub  func([32]byte) [32]byte
	}{
		{"link", v.Link, func(b [32]byte) [32]byte { return LinkFromBytes(b).Public() }},
		{"onion", v.Onion, func(b [32]byte) [32]byte { return OnionFromBytes(b).Public() }},
	} {
		for i := range set.vs {
			tv := &set.vs[i]
			pub := set.pub([32]byte(testvec.Hex(t, tv.Private)))
			testvec.CheckHex(t, fmt.Sprintf("%s[%d] public", set.name, i), &tv.Public, pub[:])
		}
	}
	for i := range v.KEM {
		tv := &v.KEM[i]
		k := KEMFromSeed([64]byte(testvec.Hex(t, tv.Seed)))
		testvec.CheckHex(t, fmt.Sprintf("kem[%d] public", i), &tv.Public, k.Public()[:])
		ct, ss, err := k.Public().Encapsulate(bytes.NewReader(testvec.Hex(t, tv.EncapSeed)))
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, fmt.Sprintf("kem[%d] ciphertext", i), &tv.Ciphertext, ct[:])
		testvec.CheckHex(t, fmt.Sprintf("kem[%d] shared_key", i), &tv.SharedKey, ss[:])
		if got, _ := k.Decapsulate(ct[:]); got != ss {
			t.Errorf("KEM vector %d: decapsulation differs", i)
		}
	}
	for i := range v.Service {
		tv := &v.Service[i]
		pub := ServiceFromSeed([32]byte(testvec.Hex(t, tv.Seed))).Public()
		testvec.CheckHex(t, fmt.Sprintf("service[%d] public", i), &tv.Public, pub[:])
		testvec.Check(t, fmt.Sprintf("service[%d] address", i), &tv.Address, pub.Address())
		if got, err := ParseAddress(tv.Address); err != nil || got != pub {
			t.Errorf("service vector %d: ParseAddress = %v", i, err)
		}
	}
	for _, tv := range v.BadAddresses {
		want, ok := addressErrors[tv.Error]
		if !ok {
			t.Fatalf("unknown error kind %q", tv.Error)
		}
		if _, err := ParseAddress(tv.Address); !errors.Is(err, want) {
			t.Errorf("ParseAddress(%q) error = %v, want %v", tv.Address, err, want)
		}
	}
	for i := range v.KeyFiles {
		tv := &v.KeyFiles[i]
		seed := testvec.Hex(t, tv.Seed)
		k := keyFromSeed(tv.Type, seed)
		if k == nil {
			t.Fatalf("unknown key file type %q", tv.Type)
		}
		testvec.Check(t, fmt.Sprintf("key_files[%d] file", i), &tv.File, string(EncodeKeyFile(k)))
		got, err := parseKeyFile([]byte(tv.File), tv.Type)
		if err != nil || !bytes.Equal(got, seed) {
			t.Errorf("key file vector %d: parseKeyFile = %x, %v", i, got, err)
		}
	}
	if testvec.Update() {
		testvec.Save(t, vectorsFile, &v)
	}
}
