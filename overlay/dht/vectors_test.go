package dht

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is shared with spec/dht.md.
const vectorsFile = "dht.json"

type dhtVectors struct {
	Comment          string `json:"comment"`
	SignatureContext string `json:"signature_context"`
	Records          []struct {
		OwnerSeed string `json:"owner_seed"`
		Network   string `json:"network"`
		Name      string `json:"name"`
		Data      string `json:"data"`
		Seq       uint64 `json:"seq"`
		Expires   int64  `json:"expires"`
		Key       string `json:"key"`
		Encoded   string `json:"encoded"`
	} `json:"records"`
	Messages []struct {
		Kind    uint8  `json:"kind"`
		Encoded string `json:"encoded"`
	} `json:"messages"`
	Invalid []struct {
		Comment string `json:"comment"`
		Message string `json:"message"`
	} `json:"invalid"`
}

func generateVectors() *dhtVectors {
	v := &dhtVectors{Comment: "darkmatter DHT vectors (spec/dht.md). records: TypeSigned records built from owner_seed (Ed25519 seed), network, name, data (hex), seq, expires (unix seconds); key = SHA-256(\"darkmatter dht signed\\x00\" || owner || name); encoded is the full record. messages: one of each kind (spec/dht.md §3), the VALUE and STORE ones carrying the first record. invalid: messages a parser must refuse. Checked by overlay/dht TestVectors."}
	for i, name := range []string{"hello", "x"} {
		v.Records = append(v.Records, struct {
			OwnerSeed string `json:"owner_seed"`
			Network   string `json:"network"`
			Name      string `json:"name"`
			Data      string `json:"data"`
			Seq       uint64 `json:"seq"`
			Expires   int64  `json:"expires"`
			Key       string `json:"key"`
			Encoded   string `json:"encoded"`
		}{OwnerSeed: hex.EncodeToString(testvec.Seq(byte(i*32), 32)), Network: "darkmatter", Name: name,
			Data: hex.EncodeToString([]byte("value " + name)), Seq: uint64(i + 1), Expires: 1750003600})
	}
	for range 8 {
		v.Messages = append(v.Messages, struct {
			Kind    uint8  `json:"kind"`
			Encoded string `json:"encoded"`
		}{})
	}
	v.Invalid = []struct {
		Comment string `json:"comment"`
		Message string `json:"message"`
	}{
		{"version 2", "0201000000000000000001"},
		{"unknown kind 9", "0109000000000000000001"},
		{"unknown flag bit", "0101020000000000000001"},
		{"PING with a trailing byte", "010100000000000000000100"},
		{"NODES count over 64", "01040000000000000000014100"},
		{"STORED status out of range", "01080000000000000000010d"},
		{"FIND_NODE short target", "01030000000000000000010102"},
	}
	return v
}

func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateVectors)
	testvec.Check(t, "signature_context", &v.SignatureContext, SignatureContext)
	var first *Record
	for i := range v.Records {
		tv := &v.Records[i]
		k := keys.IdentityFromSeed([32]byte(testvec.Hex(t, tv.OwnerSeed)))
		r, err := NewSigned(tv.Network, k, tv.Name, testvec.Hex(t, tv.Data), tv.Seq, time.Unix(tv.Expires, 0))
		if err != nil {
			t.Fatal(err)
		}
		testvec.CheckHex(t, "record key", &tv.Key, r.Key[:])
		testvec.CheckHex(t, "record", &tv.Encoded, r.Marshal())
		p, err := ParseRecord(testvec.Hex(t, tv.Encoded))
		if err != nil {
			t.Fatal(err)
		}
		if !p.VerifySignature(tv.Network) || p.VerifySignature(tv.Network+"x") {
			t.Fatal("vector signature does not bind the network")
		}
		if first == nil {
			first = r
		}
	}
	msgs := vectorMessages(first)
	for i := range v.Messages {
		b, err := msgs[i].Marshal()
		if err != nil {
			t.Fatal(err)
		}
		v.Messages[i].Kind = uint8(msgs[i].Kind)
		testvec.CheckHex(t, "message "+msgs[i].Kind.name(), &v.Messages[i].Encoded, b)
		if _, err := ParseMessage(testvec.Hex(t, v.Messages[i].Encoded)); err != nil {
			t.Errorf("message vector %d: %v", i, err)
		}
	}
	for _, tv := range v.Invalid {
		if _, err := ParseMessage(testvec.Hex(t, tv.Message)); err == nil {
			t.Errorf("invalid vector %q parsed", tv.Comment)
		}
	}
	if testvec.Update() {
		testvec.Save(t, vectorsFile, v)
	}
}

func vectorMessages(r *Record) []*Message {
	var key Key
	copy(key[:], testvec.Seq(0x40, 32))
	cs := []Contact{{ID: keys.NodeID(testvec.Seq(0x60, 32)), Addr: "tcp://192.0.2.1:9001"}, {ID: keys.NodeID(testvec.Seq(0x80, 32))}}
	return []*Message{
		{Kind: KindPing, Flags: FlagServer, ID: 0x0102030405060708},
		{Kind: KindPong, Flags: FlagServer, ID: 0x0102030405060708},
		{Kind: KindFindNode, ID: 2, Target: key},
		{Kind: KindNodes, Flags: FlagServer, ID: 2, Contacts: cs},
		{Kind: KindFindValue, ID: 3, Type: TypeSigned, Target: r.Key},
		{Kind: KindValue, Flags: FlagServer, ID: 3, Records: []*Record{r}, Contacts: cs[:1]},
		{Kind: KindStore, Flags: FlagServer, ID: 4, Records: []*Record{r}},
		{Kind: KindStored, Flags: FlagServer, ID: 4, Status: Stored},
	}
}
