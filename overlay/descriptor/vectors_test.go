package descriptor

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file in spec/vectors shared with
// spec/descriptor.md.
const vectorsFile = "descriptor.json"

type descriptorVectors struct {
	Comment          string `json:"comment"`
	SignatureContext string `json:"signature_context"`
	Keys             struct {
		IdentitySeed string `json:"identity_seed"`
		LinkPrivate  string `json:"link_private"`
		OnionPrivate string `json:"onion_private"`
		KEMSeed      string `json:"kem_seed"`
	} `json:"keys"`
	Descriptors []struct {
		Network      string   `json:"network"`
		OnionExpires int64    `json:"onion_expires"`
		Addrs        []string `json:"addrs"`
		ExitPolicy   string   `json:"exit_policy"`
		Bandwidth    uint32   `json:"bandwidth"`
		Published    int64    `json:"published"`
		Encoded      string   `json:"encoded"`
		NodeID       string   `json:"node_id"`
		Bootstrap    string   `json:"bootstrap"`
	} `json:"descriptors"`
	Invalid []struct {
		Comment string `json:"comment"`
		Encoded string `json:"encoded"`
		Error   string `json:"error"`
	} `json:"invalid"`
	BadBootstraps []string `json:"bad_bootstraps"`
}

// TestVectors checks spec/vectors/descriptor.json. With -update it
// recomputes the outputs (encoded, node_id, bootstrap) and rewrites the
// file; the invalid cases are derived from the first descriptor.
func TestVectors(t *testing.T) {
	var v descriptorVectors
	testvec.Load(t, vectorsFile, &v)
	testvec.Check(t, "signature_context", &v.SignatureContext, SignatureContext)
	k := keys.NodeKeys{
		Identity: keys.IdentityFromSeed([32]byte(testvec.Hex(t, v.Keys.IdentitySeed))),
		Link:     keys.LinkFromBytes([32]byte(testvec.Hex(t, v.Keys.LinkPrivate))),
		Onion:    keys.OnionFromBytes([32]byte(testvec.Hex(t, v.Keys.OnionPrivate))),
		KEM:      keys.KEMFromSeed([64]byte(testvec.Hex(t, v.Keys.KEMSeed))),
	}
	for i := range v.Descriptors {
		tv := &v.Descriptors[i]
		d := &Descriptor{
			Network:      tv.Network,
			Link:         k.Link.Public(),
			Onion:        k.Onion.Public(),
			OnionExpires: time.Unix(tv.OnionExpires, 0).UTC(),
			KEM:          *k.KEM.Public(),
			Addrs:        tv.Addrs,
			ExitPolicy:   tv.ExitPolicy,
			Bandwidth:    tv.Bandwidth,
			Published:    time.Unix(tv.Published, 0).UTC(),
		}
		d.Sign(k.Identity)
		testvec.CheckHex(t, fmt.Sprintf("descriptors[%d] encoded", i), &tv.Encoded, d.Marshal())
		testvec.Check(t, fmt.Sprintf("descriptors[%d] node_id", i), &tv.NodeID, d.NodeID().String())
		if len(d.Addrs) > 0 {
			testvec.Check(t, fmt.Sprintf("descriptors[%d] bootstrap", i), &tv.Bootstrap, d.Bootstrap().String())
		}
		got, err := Parse(testvec.Hex(t, tv.Encoded))
		if err != nil {
			t.Fatalf("descriptor vector %d: %v", i, err)
		}
		if !sameFields(got, d) {
			t.Errorf("descriptor vector %d parses to %+v", i, got)
		}
		if tv.Bootstrap != "" {
			b, err := ParseBootstrap(tv.Bootstrap)
			if err != nil || b != d.Bootstrap() {
				t.Errorf("bootstrap vector %d: %+v, %v", i, b, err)
			}
		}
	}
	if testvec.Update() {
		v.Invalid = v.Invalid[:0]
		good := testvec.Hex(t, v.Descriptors[0].Encoded)
		add := func(comment string, b []byte) {
			_, err := Parse(b)
			if err == nil {
				t.Fatalf("invalid vector %q parses", comment)
			}
			v.Invalid = append(v.Invalid, struct {
				Comment string `json:"comment"`
				Encoded string `json:"encoded"`
				Error   string `json:"error"`
			}{comment, hex.EncodeToString(b), err.Error()})
		}
		flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
		add("last signature bit flipped", flip(len(good)-1))
		add("bandwidth changed (signature no longer matches)", flip(len(good)-64-8-1))
		add("version 2", append(append([]byte(Magic), 2), good[5:]...))
		add("trailing byte", append(bytes.Clone(good), 0))
		add("truncated signature", good[:len(good)-1])
	}
	for _, tv := range v.Invalid {
		_, err := Parse(testvec.Hex(t, tv.Encoded))
		if err == nil || err.Error() != tv.Error {
			t.Errorf("invalid vector %q: error %v, want %q", tv.Comment, err, tv.Error)
		}
	}
	for _, s := range v.BadBootstraps {
		if _, err := ParseBootstrap(s); err == nil {
			t.Errorf("bad bootstrap %q parses", s)
		}
	}
	if testvec.Update() {
		testvec.Save(t, vectorsFile, &v)
	}
}
