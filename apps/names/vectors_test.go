package names

import (
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
	"github.com/darkmatter/darkmatter/overlay/dht"
)

// vectorsFile is the JSON test vector file of spec/names.md.
const vectorsFile = "names.json"

type namesVectors struct {
	Comment string    `json:"comment"`
	Names   []vecName `json:"names"`
	Record  vecRecord `json:"record"`
}

type vecName struct {
	Input     string `json:"input"`
	Canonical string `json:"canonical"` // "" when refused
	Key       string `json:"key"`
}

type vecRecord struct {
	Network     string `json:"network"`
	OwnerSeed   string `json:"owner_seed"`
	ServiceSeed string `json:"service_seed"`
	Name        string `json:"name"`
	Registered  int64  `json:"registered"`
	Expires     int64  `json:"expires"`
	Text        string `json:"text"`
	Difficulty  int    `json:"difficulty"`
	Nonce       string `json:"nonce"`
	Seq         uint64 `json:"seq"`
	Value       string `json:"value"`
	DHTRecord   string `json:"dht_record"`
}

func generateNamesVectors() *namesVectors {
	v := &namesVectors{
		Comment: "darkmatter name vectors (spec/names.md). Hex unless noted. names: canonical is CanonicalName(input) " +
			"(\"\" when refused) and key its DHT key. record: owner_seed and service_seed are Ed25519 seeds; the record maps name " +
			"to the service's address and to text; nonce (8 bytes) is the first nonce from 0 with a proof of work of difficulty bits; value " +
			"is the record value and dht_record the signed DHT record (type 6) for network. Checked by apps/names TestVectors " +
			"(go test ./apps/names -run TestVectors -update rewrites this file).",
		Record: vecRecord{Network: "darkmatter", OwnerSeed: hex.EncodeToString(testvec.Seq(0x30, 32)),
			ServiceSeed: hex.EncodeToString(testvec.Seq(0x50, 32)), Name: "blog.alice",
			Registered: 1767225600, Expires: 1767225600 + 30*86400, Text: "hello", Difficulty: 12, Seq: 1},
	}
	for _, s := range []string{"alice", "Blog.Alice.dark.", "a-1.b.c.d", "a..b", "café", "xn--bcher-kva",
		"pvjmxrppc5cfr3n5ztzqqbjzqvt7t2tzwwffqf3m6ap6yneq2zvf6qid"} {
		v.Names = append(v.Names, vecName{Input: s})
	}
	return v
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateNamesVectors)
	for i := range v.Names {
		n := &v.Names[i]
		c, err := CanonicalName(n.Input)
		testvec.Check(t, "canonical "+n.Input, &n.Canonical, c)
		if err == nil {
			k := Key(c)
			testvec.CheckHex(t, "key", &n.Key, k[:])
		} else if n.Key != "" {
			t.Fatalf("%q refused but the file has a key", n.Input)
		}
	}
	rv := &v.Record
	o := keys.IdentityFromSeed([keys.SeedSize]byte(testvec.Hex(t, rv.OwnerSeed)))
	svc := keys.ServiceFromSeed([keys.SeedSize]byte(testvec.Hex(t, rv.ServiceSeed))).Public()
	reg := time.Unix(rv.Registered, 0)
	nonce, err := solve(t.Context(), rv.Name, o.Public(), rv.Registered, rv.Difficulty, 0)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "nonce", &rv.Nonce, binary.BigEndian.AppendUint64(nil, nonce))
	r := &Record{Name: rv.Name, Registered: reg, Expires: time.Unix(rv.Expires, 0), Nonce: nonce,
		Entries: []Entry{AddressEntry(svc), TextEntry(rv.Text)}}
	val, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "value", &rv.Value, val)
	d, err := r.DHTRecord(rv.Network, o, rv.Seq)
	if err != nil {
		t.Fatal(err)
	}
	testvec.CheckHex(t, "dht record", &rv.DHTRecord, d.Marshal())
	// The file's record verifies under a registry at its difficulty and
	// parses back to the record.
	pd, err := dht.ParseRecord(testvec.Hex(t, rv.DHTRecord))
	if err != nil {
		t.Fatal(err)
	}
	g := dht.NewRegistry()
	if err := Register(g, rv.Difficulty); err != nil {
		t.Fatal(err)
	}
	if err := g.Verify(pd, rv.Network, reg); err != nil {
		t.Fatal(err)
	}
	p, err := FromDHT(pd)
	r.Owner = o.Public()
	if err != nil || !reflect.DeepEqual(p, r) {
		t.Fatalf("the vector record does not parse to the signed one: %v", err)
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}
