package descriptor

import (
	"bytes"
	"testing"
)

// A reachability entry survives signing, marshalling and parsing as
// extension type 3 (spec/descriptor.md §1.4); replacing keeps one entry; a
// value out of range is refused by SetReach and ignored by Reach, never
// fatal to the descriptor; bytes after the third are ignored.
func TestReachRoundTrip(t *testing.T) {
	d, k := testDescriptor()
	if _, ok := d.Reach(); ok {
		t.Fatal("Reach() reports an entry the descriptor lacks")
	}
	want := Reach{Status: ReachNAT, Mapping: BehaviorEndpointIndependent, Filtering: BehaviorAddressPortDepend}
	if err := d.SetReach(want); err != nil {
		t.Fatal(err)
	}
	if err := d.SetCompute(testCompute); err != nil {
		t.Fatal(err)
	}
	d.Sign(k.Identity)
	b := d.Marshal()
	if !bytes.Contains(b, []byte{0x00, 0x03, 0x00, 0x03, 0x02, 0x01, 0x03}) {
		t.Fatal("the entry is not in the wire form spec/descriptor.md §1.4 gives")
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := got.Reach(); !ok || r != want {
		t.Fatalf("Reach() = %+v, %v", r, ok)
	}
	if err := got.SetReach(Reach{Status: ReachPublic}); err != nil {
		t.Fatal(err)
	}
	if r, _ := got.Reach(); r.Status != ReachPublic || len(got.extensions) != len(d.extensions) {
		t.Fatalf("replace: %+v, %d extensions", r, len(got.extensions))
	}
	if err := got.SetReach(Reach{Status: 3}); err == nil {
		t.Fatal("SetReach accepted status 3")
	}
	for _, v := range [][]byte{{}, {1, 0}, {3, 0, 0}, {1, 4, 0}, {1, 0, 9}} {
		if _, err := parseReach(v); err == nil {
			t.Errorf("parseReach(%x) accepted", v)
		}
	}
	if r, err := parseReach([]byte{1, 0, 0, 0xff}); err != nil || r.Status != ReachPublic {
		t.Errorf("trailing byte: %+v, %v", r, err)
	}
}

func FuzzReach(f *testing.F) {
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{2, 1, 3, 9})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := parseReach(v)
		if err != nil {
			return
		}
		var d Descriptor
		if err := d.SetReach(r); err != nil {
			t.Fatalf("SetReach of an accepted value %+v: %v", r, err)
		}
		if got, ok := d.Reach(); !ok || got != r || !bytes.Equal(d.extensions[0].value, v[:ReachLen]) {
			t.Fatalf("round trip of %x: %+v", v, got)
		}
	})
}
