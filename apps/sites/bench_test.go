package sites

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// BenchmarkHandlerCachedFile serves a cached 16 KiB file through Handler.
func BenchmarkHandlerCachedFile(b *testing.B) {
	env := newTestEnv()
	k := testKey(1)
	site := k.Public()
	env.addHost(site, 10)
	content := strings.Repeat("x", 16<<10)
	env.publish(b, k, 1, map[string]string{"/index.html": content})
	c, _ := newTestClient(b, env, ClientConfig{})
	h := c.Handler(site)
	if code, body := get(b, h, "/", nil); code != 200 || body != content {
		b.Fatalf("GET / = %d", code)
	}
	r := httptest.NewRequest(http.MethodGet, "http://site.dark/", nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
