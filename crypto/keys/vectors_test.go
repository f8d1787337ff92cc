package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
)

// vectorsPath is the JSON test vector file shared with spec/keys.md.
const vectorsPath = "../../spec/vectors/keys.json"

var update = flag.Bool("update", false, "rewrite "+vectorsPath+" from this implementation")

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

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

var addressErrors = map[string]error{
	"length": ErrAddressLength, "encoding": ErrAddressEncoding,
	"version": ErrAddressVersion, "checksum": ErrAddressChecksum,
}

// TestVectors checks spec/vectors/keys.json. With -update it recomputes
// every output field from the inputs and rewrites the file.
func TestVectors(t *testing.T) {
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v keyVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	check := func(field *string, got string) {
		t.Helper()
		if *update {
			*field = got
		} else if *field != got {
			t.Errorf("vector mismatch: file has %s, computed %s", *field, got)
		}
	}
	for i := range v.Identity {
		tv := &v.Identity[i]
		k := IdentityFromSeed([32]byte(unhex(t, tv.Seed)))
		pub := k.Public()
		check(&tv.Public, hex.EncodeToString(pub[:]))
		check(&tv.NodeID, pub.NodeID().String())
		sig := k.Sign(unhex(t, tv.Msg))
		check(&tv.Sig, hex.EncodeToString(sig[:]))
		if !pub.Verify(unhex(t, tv.Msg), unhex(t, tv.Sig)) {
			t.Errorf("identity vector %d: signature does not verify", i)
		}
	}
	for _, set := range []struct {
		vs  []x25519Vector
		pub func([32]byte) [32]byte
	}{
		{v.Link, func(b [32]byte) [32]byte { return LinkFromBytes(b).Public() }},
		{v.Onion, func(b [32]byte) [32]byte { return OnionFromBytes(b).Public() }},
	} {
		for i := range set.vs {
			tv := &set.vs[i]
			pub := set.pub([32]byte(unhex(t, tv.Private)))
			check(&tv.Public, hex.EncodeToString(pub[:]))
		}
	}
	for i := range v.KEM {
		tv := &v.KEM[i]
		k := KEMFromSeed([64]byte(unhex(t, tv.Seed)))
		check(&tv.Public, hex.EncodeToString(k.Public()[:]))
		ct, ss, err := k.Public().Encapsulate(bytes.NewReader(unhex(t, tv.EncapSeed)))
		if err != nil {
			t.Fatal(err)
		}
		check(&tv.Ciphertext, hex.EncodeToString(ct[:]))
		check(&tv.SharedKey, hex.EncodeToString(ss[:]))
		if got, _ := k.Decapsulate(ct[:]); got != ss {
			t.Errorf("KEM vector %d: decapsulation differs", i)
		}
	}
	for i := range v.Service {
		tv := &v.Service[i]
		pub := ServiceFromSeed([32]byte(unhex(t, tv.Seed))).Public()
		check(&tv.Public, hex.EncodeToString(pub[:]))
		check(&tv.Address, pub.Address())
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
		seed := unhex(t, tv.Seed)
		var k PrivateKey
		switch tv.Type {
		case IdentityKeyType:
			k = IdentityFromSeed([32]byte(seed))
		case LinkKeyType:
			k = LinkFromBytes([32]byte(seed))
		case OnionKeyType:
			k = OnionFromBytes([32]byte(seed))
		case KEMKeyType:
			k = KEMFromSeed([64]byte(seed))
		case ServiceKeyType:
			k = ServiceFromSeed([32]byte(seed))
		default:
			t.Fatalf("unknown key file type %q", tv.Type)
		}
		check(&tv.File, string(EncodeKeyFile(k)))
		got, err := parseKeyFile([]byte(tv.File), tv.Type)
		if err != nil || !bytes.Equal(got, seed) {
			t.Errorf("key file vector %d: parseKeyFile = %x, %v", i, got, err)
		}
	}
	if *update {
		out, err := json.MarshalIndent(&v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", vectorsPath)
	}
}
