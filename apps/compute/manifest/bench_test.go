package manifest

import "testing"

func BenchmarkSplit1MiB(b *testing.B) {
	content := pattern(1 << 20)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := Split(content); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAssemble1MiB(b *testing.B) {
	content := pattern(1 << 20)
	bm, s := split(b, content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bm.Assemble(s.get); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManifestVerify(b *testing.B) {
	enc, err := testManifest().Sign(testNet, testKey(1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Verify(testNet); err != nil {
			b.Fatal(err)
		}
	}
}
