package descriptor

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

func familyIDs(n int) []keys.NodeID {
	ids := make([]keys.NodeID, n)
	for i := range ids {
		ids[i] = keys.IdentityFromSeed([32]byte{byte(i), 0xfa}).Public().NodeID()
	}
	return ids
}

// A family declaration survives signing, marshalling and parsing, in
// ascending order, as extension type 1 laid out as spec/descriptor.md
// §1.2 says; the other extensions keep their places.
func TestFamilyRoundTrip(t *testing.T) {
	d, k := testDescriptor() // carries extensions 7 and 0xfff0
	ids := familyIDs(5)
	if err := d.SetFamily(ids); err != nil {
		t.Fatal(err)
	}
	d.Sign(k.Identity)
	b := d.Marshal()
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	slices.SortFunc(want, func(a, b keys.NodeID) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(got.Family(), want) {
		t.Fatalf("Family() = %x, want %x", got.Family(), want)
	}
	var types []uint16
	for _, e := range got.extensions {
		types = append(types, e.typ)
	}
	if !slices.Equal(types, []uint16{ExtFamily, 7, 0xfff0}) {
		t.Fatalf("extension types %v, want [1 7 65520]", types)
	}
	// The wire form: type 0x0001, length 161, count 5, five NodeIDs.
	wire := binary.BigEndian.AppendUint16(nil, ExtFamily)
	wire = binary.BigEndian.AppendUint16(wire, 1+5*32)
	wire = append(wire, 5)
	for _, id := range want {
		wire = append(wire, id[:]...)
	}
	if !bytes.Contains(b, wire) {
		t.Fatal("the family extension is not in the wire form spec/descriptor.md §1.2 gives")
	}
	// A parser that does not know type 1 (every version 2 parser before
	// it was assigned) keeps it as an opaque entry and re-encodes it byte
	// for byte; so does this one.
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("re-marshalling a descriptor with a family changed it")
	}
	old := *got
	old.extensions = slices.Clone(got.extensions) // as an older parser holds them
	if !bytes.Equal(old.Marshal(), b) {
		t.Fatal("the opaque entry does not re-encode byte for byte")
	}

	// Replacing and removing.
	if err := d.SetFamily(ids[:1]); err != nil || len(d.Family()) != 1 {
		t.Fatalf("replace: %v, %d relays", err, len(d.Family()))
	}
	if err := d.SetFamily(nil); err != nil || d.Family() != nil || len(d.extensions) != 2 {
		t.Fatal("SetFamily(nil) did not remove the declaration")
	}
}

func TestSetFamilyLimits(t *testing.T) {
	d, k := testDescriptor()
	if err := d.SetFamily(familyIDs(MaxFamily + 1)); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("65 relays: %v", err)
	}
	ids := familyIDs(3)
	if err := d.SetFamily(append(ids, ids[1])); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a relay twice: %v", err)
	}
	if d.Family() != nil {
		t.Fatal("a refused SetFamily changed the descriptor")
	}
	// The largest family fits a descriptor with room to spare for its
	// other fields (this one has three addresses and a KEM key).
	if err := d.SetFamily(familyIDs(MaxFamily)); err != nil {
		t.Fatal(err)
	}
	d.Sign(k.Identity)
	got, err := Parse(d.Marshal())
	if err != nil {
		t.Fatalf("a descriptor with %d family members: %v", MaxFamily, err)
	}
	if len(got.Family()) != MaxFamily {
		t.Fatalf("%d family members parsed, want %d", len(got.Family()), MaxFamily)
	}
}

// A malformed family value, signed, leaves the descriptor valid and
// declares nobody.
func TestMalformedFamilyIgnored(t *testing.T) {
	id := familyIDs(2)
	lo, hi := id[0], id[1]
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	for name, v := range map[string][]byte{
		"empty":       {},
		"count 65":    append([]byte{65}, make([]byte, 65*32)...),
		"short":       append([]byte{2}, lo[:]...),
		"long":        append(append([]byte{1}, lo[:]...), 0),
		"descending":  append(append([]byte{2}, hi[:]...), lo[:]...),
		"duplicate":   append(append([]byte{2}, lo[:]...), lo[:]...),
		"count 0 ok":  {0},
		"one ok, two": append(append([]byte{1}, lo[:]...), hi[:]...),
	} {
		d, k := testDescriptor()
		d.extensions = []extension{{ExtFamily, v}}
		d.Sign(k.Identity)
		got, err := Parse(d.Marshal())
		if err != nil {
			t.Fatalf("%s: a malformed family made the descriptor invalid: %v", name, err)
		}
		if got.Family() != nil {
			t.Fatalf("%s: Family() = %x, want none", name, got.Family())
		}
		if _, err := parseFamily(v); err == nil && name != "count 0 ok" {
			t.Fatalf("%s: parseFamily accepted it", name)
		} else if err != nil && !strings.HasPrefix(err.Error(), "descriptor: family") {
			t.Fatalf("%s: error %q lacks the prefix", name, err)
		}
	}
}

// FuzzFamily checks that parseFamily never panics and that what it accepts
// SetFamily encodes to the same bytes.
func FuzzFamily(f *testing.F) {
	d, _ := testDescriptor()
	d.SetFamily(familyIDs(3))
	for _, e := range d.extensions {
		if e.typ == ExtFamily {
			f.Add(e.value)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{64})
	f.Fuzz(func(t *testing.T, v []byte) {
		ids, err := parseFamily(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: family") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		var d Descriptor
		if err := d.SetFamily(ids); err != nil {
			t.Fatalf("SetFamily of an accepted value: %v", err)
		}
		if len(ids) == 0 {
			if len(d.extensions) != 0 {
				t.Fatal("an empty family was encoded")
			}
			return
		}
		if len(d.extensions) != 1 || !bytes.Equal(d.extensions[0].value, v) {
			t.Fatal("an accepted family value re-encodes differently")
		}
	})
}
