package descriptor

import "testing"

func BenchmarkMarshal(b *testing.B) {
	d, _ := testDescriptor()
	b.ReportAllocs()
	for b.Loop() {
		d.Marshal()
	}
}

func BenchmarkParse(b *testing.B) {
	d, _ := testDescriptor()
	enc := d.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(enc); err != nil {
			b.Fatal(err)
		}
	}
}
