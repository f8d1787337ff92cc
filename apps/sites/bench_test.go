package sites

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"testing/fstest"
)

func BenchmarkParseVerify1000(b *testing.B) {
	m := &Manifest{Seq: 1, Created: 1767225600}
	for i := range 1000 {
		p := fmt.Sprintf("/docs/section-%03d/page-%04d.html", i/50, i)
		m.Files = append(m.Files, Entry{Path: p, Hash: sha256.Sum256([]byte(p)), Size: 4096, ContentType: "text/html; charset=utf-8"})
	}
	enc, err := m.Sign(testNet, testKey(1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		p, err := Parse(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Verify(testNet); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildSmall(b *testing.B) {
	fsys := fstest.MapFS{}
	var total int64
	for i := range 20 {
		data := make([]byte, 10_000)
		fsys[fmt.Sprintf("dir%d/page%d.html", i%4, i)] = &fstest.MapFile{Data: data}
		total += int64(len(data))
	}
	b.ReportAllocs()
	b.SetBytes(total)
	for b.Loop() {
		if _, _, err := Build(fsys); err != nil {
			b.Fatal(err)
		}
	}
}
