package descriptor

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/darkmatter/darkmatter/circuit/protover"
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
		Protocols    string   `json:"protocols"`
		Extensions   []struct {
			Type  uint16 `json:"type"`
			Value string `json:"value"`
		} `json:"extensions"`
		Published int64  `json:"published"`
		Encoded   string `json:"encoded"`
		NodeID    string `json:"node_id"`
		Bootstrap string `json:"bootstrap"`
		// Compute is what Compute() returns, absent when it reports
		// false.
		Compute *computeVector `json:"compute,omitempty"`
	} `json:"descriptors"`
	// ComputeValues are values of extension type 2 (spec/descriptor.md
	// §1.3) and what Compute() makes of them: null and the error when
	// the entry is ignored.
	ComputeValues []struct {
		Comment string         `json:"comment"`
		Value   string         `json:"value"`
		Compute *computeVector `json:"compute"`
		Error   string         `json:"error,omitempty"`
	} `json:"compute_values"`
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
		protocols, err := protover.ParseString(tv.Protocols)
		if err != nil {
			t.Fatalf("descriptor vector %d: %v", i, err)
		}
		var exts []extension
		for _, e := range tv.Extensions {
			x := extension{typ: e.Type}
			if e.Value != "" {
				x.value = testvec.Hex(t, e.Value)
			}
			exts = append(exts, x)
		}
		d := &Descriptor{
			Network:      tv.Network,
			Link:         k.Link.Public(),
			Onion:        k.Onion.Public(),
			OnionExpires: time.Unix(tv.OnionExpires, 0).UTC(),
			KEM:          *k.KEM.Public(),
			Addrs:        tv.Addrs,
			ExitPolicy:   tv.ExitPolicy,
			Bandwidth:    tv.Bandwidth,
			Protocols:    protocols,
			Published:    time.Unix(tv.Published, 0).UTC(),
			extensions:   exts,
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
		if !bytes.Equal(got.Marshal(), testvec.Hex(t, tv.Encoded)) {
			t.Errorf("descriptor vector %d re-marshals differently", i)
		}
		checkComputeVector(t, fmt.Sprintf("descriptors[%d] compute", i), &tv.Compute, got)
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
		// signed re-signs the first vector after modify, so that only the
		// structural rule it breaks refuses it.
		signed := func(modify func(d *Descriptor)) []byte {
			d, err := Parse(good)
			if err != nil {
				t.Fatal(err)
			}
			modify(d)
			d.Signature = k.Identity.Sign(signedMessage(d.marshalBody()))
			return d.Marshal()
		}
		add("last signature bit flipped", flip(len(good)-1))
		bw := bytes.Index(good, []byte{0x00, 0x98, 0x96, 0x80}) // bandwidth 10000000
		add("bandwidth changed (signature no longer matches)", flip(bw+3))
		add("version 1 (never deployed)", append(append([]byte(Magic), 1), good[5:]...))
		add("version 3", append(append([]byte(Magic), 3), good[5:]...))
		add("trailing byte", append(bytes.Clone(good), 0))
		add("truncated signature", good[:len(good)-1])
		add("address without a scheme", signed(func(d *Descriptor) { d.Addrs[0] = "192.0.2.1:9001" }))
		add("address scheme in upper case", signed(func(d *Descriptor) { d.Addrs[0] = "TCP://192.0.2.1:9001" }))
		add("extension types out of order", signed(func(d *Descriptor) { d.extensions = []extension{{2, nil}, {1, nil}} }))
		add("extension type twice", signed(func(d *Descriptor) { d.extensions = []extension{{1, nil}, {1, nil}} }))
		// Sets built with package protover are always in order; splice
		// in a hand-made one.
		d, _ := Parse(good)
		body := d.marshalBody()
		at := protocolsOffset(d)
		body = slices.Concat(body[:at], []byte{2, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1}, body[at+d.Protocols.Len():])
		sig := k.Identity.Sign(signedMessage(body))
		add("protocols out of order", append(body, sig[:]...))
	}
	for i := range v.ComputeValues {
		tv := &v.ComputeValues[i]
		name := fmt.Sprintf("compute_values[%d] (%s)", i, tv.Comment)
		_, err := parseCompute(testvec.Hex(t, tv.Value))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		testvec.Check(t, name+" error", &tv.Error, msg)
		// The value inside a signed descriptor: never fatal.
		d, _ := Parse(testvec.Hex(t, v.Descriptors[0].Encoded))
		d.extensions = []extension{{ExtCompute, testvec.Hex(t, tv.Value)}}
		d.Sign(k.Identity)
		got, err := Parse(d.Marshal())
		if err != nil {
			t.Fatalf("%s: the descriptor is invalid: %v", name, err)
		}
		checkComputeVector(t, name, &tv.Compute, got)
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

type computeVector struct {
	Capacity    uint16 `json:"capacity"`
	MemoryPages uint32 `json:"memory_pages"`
	TimeoutMS   uint32 `json:"timeout_ms"`
	MaxDepth    uint8  `json:"max_depth"`
}

// checkComputeVector checks (or with -update writes) what d.Compute()
// returns against *want, nil meaning false.
func checkComputeVector(t *testing.T, name string, want **computeVector, d *Descriptor) {
	t.Helper()
	var got *computeVector
	if c, ok := d.Compute(); ok {
		got = &computeVector{c.Capacity, c.MemoryPages, uint32(c.Timeout / time.Millisecond), c.MaxDepth}
	}
	if testvec.Update() {
		*want = got
		return
	}
	if (got == nil) != (*want == nil) || got != nil && *got != **want {
		t.Errorf("%s: Compute() = %+v, want %+v", name, got, *want)
	}
}

// protocolsOffset returns where the protocols field starts in d's
// encoding: right after the bandwidth.
func protocolsOffset(d *Descriptor) int {
	n := fixedHead + len(d.Network) + fixedKeys + 1
	for _, a := range d.Addrs {
		n += 2 + len(a)
	}
	return n + 2 + len(d.ExitPolicy) + 4
}
