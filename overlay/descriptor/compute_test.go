package descriptor

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

var testCompute = Compute{Capacity: 8, MemoryPages: 256, Timeout: 30 * time.Second, MaxDepth: 4}

// A compute entry survives signing, marshalling and parsing as extension
// type 2 laid out as spec/descriptor.md §1.3 says, between the family
// declaration and the other extensions.
func TestComputeRoundTrip(t *testing.T) {
	d, k := testDescriptor() // carries extensions 7 and 0xfff0
	if _, ok := d.Compute(); ok {
		t.Fatal("Compute() reports an entry the descriptor lacks")
	}
	if err := d.SetFamily(familyIDs(2)); err != nil {
		t.Fatal(err)
	}
	if err := d.SetCompute(testCompute); err != nil {
		t.Fatal(err)
	}
	d.Sign(k.Identity)
	b := d.Marshal()
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := got.Compute(); !ok || c != testCompute {
		t.Fatalf("Compute() = %+v, %v, want %+v", c, ok, testCompute)
	}
	if len(got.Family()) != 2 {
		t.Fatal("the family declaration was lost")
	}
	var types []uint16
	for _, e := range got.extensions {
		types = append(types, e.typ)
	}
	if !slices.Equal(types, []uint16{ExtFamily, ExtCompute, 7, 0xfff0}) {
		t.Fatalf("extension types %v, want [1 2 7 65520]", types)
	}
	// The wire form: type 0x0002, length 11, then the value.
	wire := []byte{0x00, 0x02, 0x00, 0x0b, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x75, 0x30, 0x04}
	if !bytes.Contains(b, wire) {
		t.Fatal("the compute entry is not in the wire form spec/descriptor.md §1.3 gives")
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("re-marshalling a descriptor with a compute entry changed it")
	}

	// Replacing keeps one entry.
	c2 := Compute{Capacity: 1, MemoryPages: 1, Timeout: time.Millisecond}
	if err := got.SetCompute(c2); err != nil {
		t.Fatal(err)
	}
	if c, ok := got.Compute(); !ok || c != c2 || len(got.extensions) != 4 {
		t.Fatalf("replace: %+v %v, %d extensions", c, ok, len(got.extensions))
	}
}

// SetCompute refuses every field out of its range and leaves the
// descriptor as it was; the bounds themselves are accepted.
func TestSetComputeBounds(t *testing.T) {
	for name, c := range map[string]Compute{
		"capacity 0":        {Capacity: 0, MemoryPages: 1, Timeout: time.Second},
		"0 pages":           {Capacity: 1, MemoryPages: 0, Timeout: time.Second},
		"65537 pages":       {Capacity: 1, MemoryPages: MaxComputeMemoryPages + 1, Timeout: time.Second},
		"timeout 0":         {Capacity: 1, MemoryPages: 1},
		"timeout negative":  {Capacity: 1, MemoryPages: 1, Timeout: -time.Second},
		"timeout 999µs":     {Capacity: 1, MemoryPages: 1, Timeout: 999 * time.Microsecond},
		"timeout 1ms+1ns":   {Capacity: 1, MemoryPages: 1, Timeout: time.Millisecond + 1},
		"timeout 1h+1ms":    {Capacity: 1, MemoryPages: 1, Timeout: time.Hour + time.Millisecond},
		"timeout 100 years": {Capacity: 1, MemoryPages: 1, Timeout: 100 * 365 * 24 * time.Hour},
		"depth 17":          {Capacity: 1, MemoryPages: 1, Timeout: time.Second, MaxDepth: 17},
	} {
		d, _ := testDescriptor()
		before := slices.Clone(d.extensions)
		err := d.SetCompute(c)
		if err == nil || !strings.HasPrefix(err.Error(), "descriptor: compute: ") {
			t.Errorf("%s: SetCompute = %v", name, err)
		}
		if !slices.EqualFunc(d.extensions, before, func(a, b extension) bool { return a.typ == b.typ && bytes.Equal(a.value, b.value) }) {
			t.Errorf("%s: a refused SetCompute changed the descriptor", name)
		}
	}
	for _, c := range []Compute{
		{Capacity: 1, MemoryPages: 1, Timeout: time.Millisecond, MaxDepth: 0},
		{Capacity: 65535, MemoryPages: MaxComputeMemoryPages, Timeout: MaxComputeTimeout, MaxDepth: MaxComputeDepth},
	} {
		d, k := testDescriptor()
		if err := d.SetCompute(c); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		d.Sign(k.Identity)
		got, err := Parse(d.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if g, ok := got.Compute(); !ok || g != c {
			t.Fatalf("Compute() = %+v, %v, want %+v", g, ok, c)
		}
	}
}

// A malformed compute value, signed, leaves the descriptor valid and
// advertises nothing; the family beside it still counts.
func TestMalformedComputeIgnored(t *testing.T) {
	good := appendCompute(nil, testCompute)
	set := func(at int, v ...byte) []byte { b := bytes.Clone(good); copy(b[at:], v); return b }
	for name, v := range map[string][]byte{
		"empty":       {},
		"10 bytes":    good[:10],
		"capacity 0":  set(0, 0, 0),
		"0 pages":     set(2, 0, 0, 0, 0),
		"65537 pages": set(2, 0, 1, 0, 1),
		"huge pages":  set(2, 0xff, 0xff, 0xff, 0xff),
		"timeout 0":   set(6, 0, 0, 0, 0),
		"timeout 1h+": set(6, 0x00, 0x36, 0xee, 0x81), // 3,600,001 ms
		"depth 17":    set(10, 17),
		"depth 255":   set(10, 255),
	} {
		d, k := testDescriptor()
		if err := d.SetFamily(familyIDs(1)); err != nil {
			t.Fatal(err)
		}
		d.extensions = slices.Insert(d.extensions, 1, extension{ExtCompute, v})
		d.Sign(k.Identity)
		b := d.Marshal()
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: a malformed compute entry made the descriptor invalid: %v", name, err)
		}
		if c, ok := got.Compute(); ok {
			t.Fatalf("%s: Compute() = %+v, want none", name, c)
		}
		if len(got.Family()) != 1 {
			t.Fatalf("%s: the family beside it was lost", name)
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Fatalf("%s: the malformed value does not re-encode byte for byte", name)
		}
	}
}

// Bytes after the eleven this version defines are a later version's
// fields: the entry still counts, and re-encoding keeps them.
func TestComputeTrailingBytesAccepted(t *testing.T) {
	for _, extra := range [][]byte{{0}, {0xab, 0xcd}, bytes.Repeat([]byte{0xff}, 200)} {
		d, k := testDescriptor()
		d.extensions = []extension{{ExtCompute, append(appendCompute(nil, testCompute), extra...)}}
		d.Sign(k.Identity)
		b := d.Marshal()
		got, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := got.Compute(); !ok || c != testCompute {
			t.Fatalf("%d trailing bytes: Compute() = %+v, %v", len(extra), c, ok)
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Fatalf("%d trailing bytes: re-encoding dropped them", len(extra))
		}
	}
}

// FuzzCompute checks that parseCompute never panics, that whatever it
// accepts is in range, and that SetCompute writes the accepted fields as
// the value's first eleven bytes.
func FuzzCompute(f *testing.F) {
	f.Add(appendCompute(nil, testCompute))
	f.Add(append(appendCompute(nil, testCompute), 1, 2, 3))
	f.Add([]byte{})
	f.Add(make([]byte, ComputeLen))
	f.Add(bytes.Repeat([]byte{0xff}, ComputeLen))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := parseCompute(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "descriptor: compute: ") {
				t.Fatalf("error %q lacks the prefix", err)
			}
			return
		}
		checkAcceptedCompute(t, c, v)
	})
}

// checkAcceptedCompute checks a Compute that raw decoded to.
func checkAcceptedCompute(t *testing.T, c Compute, raw []byte) {
	t.Helper()
	var d Descriptor
	if err := d.SetCompute(c); err != nil {
		t.Fatalf("SetCompute of an accepted value %+v: %v", c, err)
	}
	if len(d.extensions) != 1 || !bytes.Equal(d.extensions[0].value, raw[:ComputeLen]) {
		t.Fatalf("accepted value %x re-encodes as %x", raw, d.extensions[0].value)
	}
	if got, ok := d.Compute(); !ok || got != c {
		t.Fatalf("Compute() after SetCompute = %+v, %v", got, ok)
	}
}

// checkParsedExtensions runs the typed extension accessors on a descriptor
// that parsed: they never panic, and what they return is consistent with
// the raw entries.
func checkParsedExtensions(t *testing.T, d *Descriptor) {
	t.Helper()
	d.Family()
	c, ok := d.Compute()
	var raw []byte
	found := false
	for _, e := range d.extensions {
		if e.typ == ExtCompute {
			raw, found = e.value, true
		}
	}
	switch {
	case ok && !found:
		t.Fatal("Compute() reports an entry the descriptor lacks")
	case ok:
		checkAcceptedCompute(t, c, raw)
	case c != Compute{}:
		t.Fatalf("Compute() = %+v with false", c)
	}
}

func BenchmarkCompute(b *testing.B) {
	d, _ := testDescriptor()
	d.SetFamily(familyIDs(3))
	d.SetCompute(testCompute)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Compute(); !ok {
			b.Fatal("no compute entry")
		}
	}
}
